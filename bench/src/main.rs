//! Throughput and latency of mio-named-pipes against its peers, side by side
//! in one process and one run:
//!
//! - `ours`: this crate's `NamedPipe` on mio 0.6;
//! - `mio1`: `mio::windows::NamedPipe` of mio 1.x;
//! - `old`: mio-named-pipes 0.1.7 on mio 0.6;
//! - `blocking`: two threads doing blocking `ReadFile`/`WriteFile`.
//!
//! Workloads: bulk (64 MiB one way in 64 KiB writes), ping-pong (2,000
//! round trips of 100 bytes), many (256 pipes in one Poll, 1 MiB each).
//! Each figure is the median of `--reps` runs (default 3); `--quick` shrinks
//! everything for a smoke run. Run under Wine with `cargo xtask bench`.

#[cfg(windows)]
mod peers;

#[cfg(windows)]
fn main() {
    peers::main();
}

#[cfg(not(windows))]
fn main() {
    eprintln!("the benchmarks run on Windows, or under Wine with `cargo xtask bench`");
}
