//! The command line, the peers and workloads, and the trials: each one runs
//! on its own threads under a watchdog, so a peer that fails or hangs is
//! reported as such and the others are still measured.

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{
    init_stream, install_panic_hook, panic_message, private_bytes, Ctx, Sizes, READ_BUF,
};
use crate::mark::{mark, mark_end};
use crate::{blocking, event, report};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Ours,
    Mio1,
    Old,
    Blocking,
}

pub const PEERS: [Peer; 4] = [Peer::Ours, Peer::Mio1, Peer::Old, Peer::Blocking];

impl Peer {
    pub fn tag(self) -> &'static str {
        match self {
            Peer::Ours => "ours",
            Peer::Mio1 => "mio1",
            Peer::Old => "old",
            Peer::Blocking => "blocking",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    Bulk,
    PingPong,
    Many,
}

pub const WORKS: [Work; 3] = [Work::Bulk, Work::PingPong, Work::Many];

impl Work {
    pub fn tag(self) -> &'static str {
        match self {
            Work::Bulk => "bulk",
            Work::PingPong => "pingpong",
            Work::Many => "many",
        }
    }
}

/// Runs one trial of `work` for `peer` on the calling thread's children;
/// returns seconds (see each workload for what is timed).
fn measure(peer: Peer, work: Work, ctx: &'static Ctx, s: Sizes) -> f64 {
    let tag = peer.tag();
    match (peer, work) {
        (Peer::Ours, Work::Bulk) => event::bulk::<event::Ours>(ctx, tag, s),
        (Peer::Ours, Work::PingPong) => event::ping_pong::<event::Ours>(ctx, tag, s),
        (Peer::Ours, Work::Many) => event::many::<event::Ours>(ctx, tag, s),
        (Peer::Mio1, Work::Bulk) => event::bulk::<event::Mio1>(ctx, tag, s),
        (Peer::Mio1, Work::PingPong) => event::ping_pong::<event::Mio1>(ctx, tag, s),
        (Peer::Mio1, Work::Many) => event::many::<event::Mio1>(ctx, tag, s),
        (Peer::Old, Work::Bulk) => event::bulk::<event::Old>(ctx, tag, s),
        (Peer::Old, Work::PingPong) => event::ping_pong::<event::Old>(ctx, tag, s),
        (Peer::Old, Work::Many) => event::many::<event::Old>(ctx, tag, s),
        (Peer::Blocking, Work::Bulk) => blocking::bulk(ctx, tag, s),
        (Peer::Blocking, Work::PingPong) => blocking::ping_pong(ctx, tag, s),
        (Peer::Blocking, Work::Many) => blocking::many(ctx, tag, s),
    }
}

/// How one trial ended.
#[derive(Debug)]
pub enum Outcome {
    /// Seconds.
    Done(f64),
    Failed(String),
    Hung(String),
}

/// Runs one trial under a watchdog of `limit`.
fn trial(peer: Peer, work: Work, s: Sizes, limit: Duration) -> (Outcome, &'static Ctx) {
    // A trial's threads may outlive it (a hung one), so its context does too.
    let ctx: &'static Ctx = Box::leak(Box::default());
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("{}-{}", peer.tag(), work.tag()))
        .spawn(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(|| measure(peer, work, ctx, s)));
            let _ = tx.send(r.map_err(|p| panic_message(&*p)));
        })
        .expect("spawning a trial");
    let deadline = Instant::now() + limit;
    let mut failed_at: Option<Instant> = None;
    let outcome = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(secs)) => break Outcome::Done(secs),
            Ok(Err(msg)) => break Outcome::Failed(ctx.failure().unwrap_or(msg)),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Outcome::Failed("the trial thread vanished".into())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        // A thread failed; its sibling may be stuck in a blocking call.
        if let Some(msg) = ctx.failure() {
            let at = *failed_at.get_or_insert_with(Instant::now);
            if at.elapsed() > Duration::from_secs(3) {
                break Outcome::Failed(msg);
            }
        }
        if Instant::now() > deadline {
            break Outcome::Hung(format!(
                "no result after {} s; by then the writer side had sent {} bytes and the reader side had received {}",
                limit.as_secs(),
                ctx.sent.load(Ordering::Relaxed),
                ctx.received.load(Ordering::Relaxed),
            ));
        }
    };
    if !matches!(outcome, Outcome::Done(_)) {
        ctx.abort();
    }
    (outcome, ctx)
}

/// Everything measured of one peer in one workload.
#[derive(Debug, Default)]
pub struct Cell {
    /// Seconds of each successful run.
    pub secs: Vec<f64>,
    /// Why it stopped, if it did: "FAILED: ..." or "HUNG: ...".
    pub error: Option<String>,
    /// Polls that waited a full second for nothing while the pipe would block.
    pub stalls: usize,
    /// Polls that returned early with no event while the pipe would block.
    pub empty: usize,
    /// "many" only: the peak private bytes of a process running it once,
    /// and its private bytes just before (see [`memory_of`]).
    pub memory: Option<Result<(usize, usize), String>>,
}

impl Cell {
    /// The median of the runs, if all of them succeeded.
    pub fn median(&self) -> Option<f64> {
        self.spread().map(|(_, m, _)| m)
    }

    /// Fewest, median and most seconds, if all runs succeeded.
    pub fn spread(&self) -> Option<(f64, f64, f64)> {
        if self.error.is_some() || self.secs.is_empty() {
            return None;
        }
        let mut v = self.secs.clone();
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        };
        Some((v[0], median, v[v.len() - 1]))
    }
}

/// What this process was asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Rounds of every peer, timed.
    Time,
    /// One round of every workload for one peer, each marked for the
    /// request count of `cargo xtask bench` (see `common::MARK`).
    Trace(Peer),
    /// "many" once for one peer, then its peak private bytes.
    Memory(Peer),
}

/// The options of the command line.
#[derive(Debug)]
pub struct Opts {
    pub sizes: Sizes,
    pub quick: bool,
    pub reps: usize,
    pub works: Vec<Work>,
    pub limit: Duration,
    pub mode: Mode,
    /// Arguments that choose sizes, passed on to child processes.
    pub size_args: Vec<String>,
}

const USAGE: &str = "\
usage: throughput [--quick] [--rounds N] [--only bulk,pingpong,many] [--read-buf BYTES]
                  [--trace PEER | --memory PEER]
  --quick           a short smoke run with small sizes (1 round unless --rounds)
  --rounds N        rounds, each running every peer once (order rotating); the
                    median and the spread of the rounds are reported (default 5)
  --only W          only these workloads (comma-separated)
  --read-buf BYTES  the readers' buffer in bulk and many (default 65536)
  --trace PEER      one round of each workload for PEER only, each marked for a
                    wineserver request trace (what `cargo xtask bench` counts)
  --memory PEER     run many once for PEER, then print the process's peak private bytes
PEER is one of ours, mio1, old, blocking.
";

fn peer_arg(tag: Option<String>) -> Peer {
    let tag = tag.unwrap_or_default();
    PEERS
        .into_iter()
        .find(|p| p.tag() == tag)
        .unwrap_or_else(|| usage_error(&format!("unknown peer `{tag}`")))
}

fn parse_args() -> Opts {
    let mut quick = false;
    let mut reps = None;
    let mut works = WORKS.to_vec();
    let mut read_buf = None;
    let mut mode = Mode::Time;
    let mut size_args = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => {
                quick = true;
                size_args.push(a);
            }
            "--rounds" | "--reps" => {
                let n = args.next().and_then(|n| n.parse::<usize>().ok());
                match n {
                    Some(n) if n > 0 => reps = Some(n),
                    _ => usage_error("--rounds takes a whole number of rounds, at least 1"),
                }
            }
            "--read-buf" => {
                let n = args.next().and_then(|n| n.parse::<usize>().ok());
                match n {
                    Some(n) if (1..=READ_BUF).contains(&n) => read_buf = Some(n),
                    _ => usage_error(&format!("--read-buf takes 1 to {READ_BUF} bytes")),
                }
                size_args.extend(["--read-buf".to_string(), read_buf.unwrap().to_string()]);
            }
            "--only" => {
                let list = args.next().unwrap_or_default();
                works = list
                    .split(',')
                    .map(|w| {
                        WORKS
                            .into_iter()
                            .find(|k| k.tag() == w.trim().replace('-', ""))
                            .unwrap_or_else(|| usage_error(&format!("unknown workload `{w}`")))
                    })
                    .collect();
            }
            "--trace" => mode = Mode::Trace(peer_arg(args.next())),
            "--memory" => mode = Mode::Memory(peer_arg(args.next())),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            // `cargo xtask bench` passes its arguments to every benchmark
            // binary, so one meant for another is not an error here.
            other => eprintln!("throughput: ignoring unknown argument `{other}`"),
        }
    }
    let sizes = if quick { Sizes::QUICK } else { Sizes::FULL };
    Opts {
        sizes: Sizes {
            read_buf: read_buf.unwrap_or(sizes.read_buf),
            ..sizes
        },
        quick,
        reps: reps.unwrap_or(if quick { 1 } else { 5 }),
        works,
        limit: Duration::from_secs(if quick { 30 } else { 60 }),
        mode,
        size_args,
    }
}

fn usage_error(msg: &str) -> ! {
    eprint!("throughput: {msg}\n{USAGE}");
    std::process::exit(2)
}

/// The units of work of one round of `work`: MiB moved, or round trips.
pub fn units(work: Work, s: Sizes) -> usize {
    match work {
        Work::Bulk => (s.bulk >> 20).max(1),
        Work::PingPong => s.warmup + s.rounds,
        Work::Many => ((s.pipes * s.per_pipe) >> 20).max(1),
    }
}

/// `--trace PEER`: one marked round of each workload.
fn trace(opts: &Opts, peer: Peer) -> i32 {
    let mut code = 0;
    for &work in &opts.works {
        mark(peer.tag(), work.tag(), units(work, opts.sizes));
        let (outcome, _) = trial(peer, work, opts.sizes, opts.limit);
        mark_end();
        match outcome {
            Outcome::Done(secs) => println!(
                "{} {}: {} (traced)",
                peer.tag(),
                work.tag(),
                report::figure(work, opts.sizes, secs)
            ),
            Outcome::Failed(m) | Outcome::Hung(m) => {
                println!("{} {}: FAILED: {m}", peer.tag(), work.tag());
                code = 1;
            }
        }
    }
    code
}

/// The line `--memory` prints: `memory PEAK BEFORE` (bytes).
const MEMORY_LINE: &str = "memory";

/// `--memory PEER`: "many" once, then the peak of this process's private
/// bytes: the larger of `PeakPagefileUsage` and what a thread sampling the
/// private bytes every millisecond saw (under Wine only the samples count,
/// see [`private_bytes`]).
fn memory(opts: &Opts, peer: Peer) -> i32 {
    let (before, _) = private_bytes();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(private_bytes().0);
                thread::sleep(Duration::from_millis(1));
            }
            peak
        })
    };
    let (outcome, _) = trial(peer, Work::Many, opts.sizes, opts.limit);
    stop.store(true, Ordering::Relaxed);
    let sampled = sampler.join().unwrap_or(0);
    let (_, peak) = private_bytes();
    match outcome {
        Outcome::Done(_) => {
            println!("{MEMORY_LINE} {} {before}", peak.max(sampled));
            0
        }
        Outcome::Failed(m) | Outcome::Hung(m) => {
            println!("FAILED: {m}");
            1
        }
    }
}

/// Runs `--memory PEER` in a process of its own (the peak of a process
/// covers its whole life, so each peer needs a fresh one): (peak, before).
fn memory_of(opts: &Opts, peer: Peer) -> Result<(usize, usize), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .args(&opts.size_args)
        .args(["--memory", peer.tag()])
        .output()
        .map_err(|e| format!("starting the memory run: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(MEMORY_LINE)).then(|| {
                let peak = w.next()?.parse().ok()?;
                let before = w.next()?.parse().ok()?;
                Some((peak, before))
            })?
        })
        .ok_or_else(|| format!("the memory run printed no result: {}", text.trim()))
}

pub fn main() {
    let opts = parse_args();
    install_panic_hook();
    init_stream();
    match opts.mode {
        Mode::Trace(peer) => {
            let _ = std::io::stdout().flush();
            std::process::exit(trace(&opts, peer));
        }
        Mode::Memory(peer) => {
            let _ = std::io::stdout().flush();
            std::process::exit(memory(&opts, peer));
        }
        Mode::Time => {}
    }
    report::header(&opts);
    let mut results: Vec<(Work, Vec<Cell>)> = Vec::new();
    for &work in &opts.works {
        println!("{}", work.tag());
        let mut cells: Vec<Cell> = PEERS.iter().map(|_| Cell::default()).collect();
        for rep in 0..opts.reps {
            print!("  round {}/{}:", rep + 1, opts.reps);
            // Rotate the order, so no peer always runs first (or last).
            for k in 0..PEERS.len() {
                let i = (k + rep) % PEERS.len();
                let peer = PEERS[i];
                let cell = &mut cells[i];
                if cell.error.is_some() {
                    continue;
                }
                let _ = std::io::stdout().flush();
                let (outcome, ctx) = trial(peer, work, opts.sizes, opts.limit);
                cell.stalls += ctx.stalls.load(Ordering::Relaxed);
                cell.empty += ctx.empty.load(Ordering::Relaxed);
                match outcome {
                    Outcome::Done(secs) => {
                        cell.secs.push(secs);
                        print!(
                            "  {} {}",
                            peer.tag(),
                            report::figure(work, opts.sizes, secs)
                        );
                    }
                    Outcome::Failed(msg) => {
                        print!("  {} FAILED", peer.tag());
                        cell.error = Some(format!("FAILED: {msg}"));
                    }
                    Outcome::Hung(msg) => {
                        print!("  {} HUNG", peer.tag());
                        cell.error = Some(format!("HUNG: {msg}"));
                    }
                }
            }
            println!();
        }
        if work == Work::Many {
            print!("  peak private bytes, each peer in a process of its own:");
            for (cell, peer) in cells.iter_mut().zip(PEERS) {
                let _ = std::io::stdout().flush();
                let m = memory_of(&opts, peer);
                match &m {
                    Ok((peak, _)) => print!("  {} {:.1} MiB", peer.tag(), *peak as f64 / MIB),
                    Err(_) => print!("  {} FAILED", peer.tag()),
                }
                cell.memory = Some(m);
            }
            println!();
        }
        results.push((work, cells));
    }
    println!();
    report::results(&opts, &results);
    let ours_broke = results.iter().any(|(_, c)| c[0].error.is_some());
    // Threads of a hung trial may still exist; do not wait for them.
    let _ = std::io::stdout().flush();
    std::process::exit(if ours_broke { 1 } else { 0 });
}

/// Bytes in a MiB.
pub const MIB: f64 = (1 << 20) as f64;
