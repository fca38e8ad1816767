//! Throughput and latency of mio-named-pipes against its peers, side by side
//! in one process and one run:
//!
//! - `ours`: this crate's `NamedPipe` on mio 0.6;
//! - `mio1`: `mio::windows::NamedPipe` of mio 1.x;
//! - `old`: mio-named-pipes 0.1.7 on mio 0.6;
//! - `blocking`: two threads doing blocking `ReadFile`/`WriteFile`.
//!
//! Workloads: bulk (64 MiB one way in 64 KiB writes, MB/s), pingpong (2,000
//! round trips of 100 bytes, µs per round trip), many (256 pipes in one Poll,
//! 1 MiB through each, aggregate MB/s and total time). The event-loop peers
//! run writer and reader each on its own thread with its own Poll,
//! edge-triggered. Every byte received is checked against what was sent.
//!
//! Each figure is the median, with the spread, of `--rounds N` rounds
//! (default 5), each running every peer once in a rotating order; "many" also
//! reports the peak private bytes of a process running it once per peer.
//! `--quick` shrinks everything for a smoke run; `--only bulk,pingpong,many`
//! picks workloads; `--trace PEER` runs one marked round of one peer for the
//! request count of `cargo xtask bench`. Run under Wine with `cargo xtask
//! bench`, where only the ratios between peers of one run mean anything.

#[cfg(windows)]
mod blocking;
#[cfg(windows)]
mod common;
#[cfg(windows)]
mod event;
#[cfg(windows)]
mod mark;
#[cfg(windows)]
mod report;
#[cfg(windows)]
mod run;

#[cfg(windows)]
fn main() {
    run::main();
}

#[cfg(not(windows))]
fn main() {
    println!(
        "The mio-named-pipes benchmarks run on Windows, or under Wine via `cargo xtask bench`."
    );
}
