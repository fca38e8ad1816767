//! What the benchmark prints: the header, the results table with ratios and
//! targets, and a markdown version for the README.

use std::ffi::{c_char, c_void, CStr};

use crate::common::Sizes;
use crate::run::{Cell, Opts, Peer, Work, PEERS};

/// Bulk: ours must move at least this many times what mio 1.x moves.
const BULK_TARGET: f64 = 2.5;
/// Ping-pong: ours must be no slower than mio 1.x.
const PING_TARGET: f64 = 1.0;

#[link(name = "kernel32")]
extern "system" {
    fn GetModuleHandleA(name: *const u8) -> *mut c_void;
    fn GetProcAddress(module: *mut c_void, name: *const u8) -> Option<unsafe extern "C" fn()>;
}

/// Wine's version, if this runs under Wine (ntdll exports `wine_get_version`).
fn wine_version() -> Option<String> {
    // SAFETY: NUL-terminated names; ntdll is always loaded; the export, when
    // present, is `const char *wine_get_version(void)`.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
        if ntdll.is_null() {
            return None;
        }
        let f = GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast())?;
        let f: unsafe extern "C" fn() -> *const c_char = std::mem::transmute(f);
        let v = f();
        (!v.is_null()).then(|| CStr::from_ptr(v).to_string_lossy().into_owned())
    }
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// `12345` as `12,345`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn describe(work: Work, s: Sizes) -> String {
    match work {
        Work::Bulk => format!("{} one way in {} writes", size(s.bulk), size(s.chunk)),
        Work::PingPong => format!(
            "{} round trips of {} (after {} untimed)",
            thousands(s.rounds),
            size(s.msg),
            s.warmup
        ),
        Work::Many => format!(
            "{} pipes x {} one way, {} writes; one Poll per side",
            s.pipes,
            size(s.per_pipe),
            size(s.chunk)
        ),
    }
}

fn unit(work: Work) -> &'static str {
    match work {
        Work::Bulk | Work::Many => "MB/s",
        Work::PingPong => "us/trip",
    }
}

/// The figure of `secs` for `work`: MB/s (10^6 bytes), or microseconds per
/// round trip.
fn value(work: Work, s: Sizes, secs: f64) -> f64 {
    match work {
        Work::Bulk => s.bulk as f64 / 1e6 / secs,
        Work::PingPong => secs * 1e6 / s.rounds as f64,
        Work::Many => (s.pipes * s.per_pipe) as f64 / 1e6 / secs,
    }
}

/// One run's figure with its unit, for the progress lines.
pub fn figure(work: Work, s: Sizes, secs: f64) -> String {
    match work {
        Work::Many => format!(
            "{:.1} {} ({:.0} ms)",
            value(work, s, secs),
            unit(work),
            secs * 1e3
        ),
        _ => format!("{:.1} {}", value(work, s, secs), unit(work)),
    }
}

fn peer_long(p: Peer) -> &'static str {
    match p {
        Peer::Ours => "mio-named-pipes 0.1.8 (this tree), on mio 0.6",
        Peer::Mio1 => "mio::windows::NamedPipe of mio 1.x",
        Peer::Old => "mio-named-pipes 0.1.7 (crates.io), on mio 0.6",
        Peer::Blocking => "two plain threads, blocking ReadFile/WriteFile via std::fs::File",
    }
}

fn peer_md(p: Peer) -> &'static str {
    match p {
        Peer::Ours => "ours",
        Peer::Mio1 => "mio 1.x",
        Peer::Old => "0.1.7",
        Peer::Blocking => "blocking threads",
    }
}

fn platform() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    match wine_version() {
        Some(v) => format!("Wine {v}, {cpus} CPUs"),
        None => format!("Windows, {cpus} CPUs"),
    }
}

pub fn header(o: &Opts) {
    let s = o.sizes;
    println!(
        "mio-named-pipes throughput benchmark{}",
        if o.quick { " (--quick)" } else { "" }
    );
    println!("Running on {}.", platform());
    println!("NOTE: under Wine every pipe operation goes through wineserver, so absolute");
    println!("      timings mean little. Compare the peers only as ratios between figures");
    println!("      of this same run.");
    println!();
    println!("Peers:");
    for p in PEERS {
        println!("  {:<9} {}", p.tag(), peer_long(p));
    }
    println!("The event-loop peers run the writer and the reader each on its own thread with");
    println!("its own Poll, edge-triggered, reading/writing until WouldBlock before polling.");
    println!("Workloads:");
    for w in [Work::Bulk, Work::PingPong, Work::Many] {
        println!("  {:<10} {}", w.tag(), describe(w, s));
    }
    println!(
        "Readers read into a {} buffer. Every received byte is compared with what was",
        size(s.read_buf)
    );
    println!("sent, and the counts must match.");
    println!(
        "Each figure is the median of {} run(s); the order of the peers rotates from run to run.",
        o.reps
    );
    println!();
}

/// How many times better ours is than `peer` (> 1: ours is better): for
/// throughput ours/peer, for latency peer_us/ours_us. Both are peer_secs/ours_secs.
fn ratio(cells: &[Cell], peer: usize) -> Option<f64> {
    Some(cells[peer].median()? / cells[0].median()?)
}

fn ratio_name(work: Work, p: Peer) -> String {
    match work {
        Work::PingPong => format!("{}_us/ours_us", p.tag()),
        _ => format!("ours/{}", p.tag()),
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.2}x"))
}

fn cell_text(work: Work, s: Sizes, c: &Cell) -> String {
    match (c.median(), &c.error) {
        (Some(m), _) => format!("{:.1}", value(work, s, m)),
        (None, Some(e)) if e.starts_with("HUNG") => "HUNG".into(),
        _ => "FAILED".into(),
    }
}

pub fn results(o: &Opts, results: &[(Work, Vec<Cell>)]) {
    let s = o.sizes;
    println!(
        "Results: median of {} run(s); a ratio above 1.00x means ours is better",
        o.reps
    );
    println!("(throughput: ours/peer; latency: peer_us/ours_us, the speedup).");
    println!();
    print!("{:<22}", "workload");
    for p in PEERS {
        print!("{:>11}", p.tag());
    }
    println!();
    for (work, cells) in results {
        print!("{:<22}", format!("{} [{}]", work.tag(), unit(*work)));
        for c in cells {
            print!("{:>11}", cell_text(*work, s, c));
        }
        println!();
        if *work == Work::Many {
            print!("{:<22}", "many total [ms]");
            for c in cells {
                print!(
                    "{:>11}",
                    c.median().map_or("-".into(), |m| format!("{:.0}", m * 1e3))
                );
            }
            println!();
        }
    }
    println!();
    for (work, cells) in results {
        let mut line = format!("{:<11}", format!("{}:", work.tag()));
        for (i, &p) in PEERS.iter().enumerate().skip(1) {
            let r = format!("{} = {}", ratio_name(*work, p), fmt_ratio(ratio(cells, i)));
            line.push_str(&format!("  {r:<26}"));
        }
        println!("{}", line.trim_end());
    }
    println!();
    println!("Targets:");
    for (work, cells) in results {
        let (goal, target) = match work {
            Work::Bulk => (format!("ours/mio1 >= {BULK_TARGET:.2}x"), BULK_TARGET),
            Work::PingPong => (
                format!("no slower than mio1, mio1_us/ours_us >= {PING_TARGET:.2}x"),
                PING_TARGET,
            ),
            Work::Many => continue,
        };
        let r = ratio(cells, 1);
        let verdict = match r {
            Some(r) if r >= target => "MET",
            Some(_) => "NOT MET",
            None => "UNKNOWN (a peer failed)",
        };
        println!("  {:<10} {goal}: {} -> {verdict}", work.tag(), fmt_ratio(r));
    }

    let mut notes = Vec::new();
    for (work, cells) in results {
        for (c, p) in cells.iter().zip(PEERS) {
            if let Some(e) = &c.error {
                notes.push(format!("{} / {}: {e}", p.tag(), work.tag()));
            }
            if c.stalls > 0 {
                notes.push(format!(
                    "{} / {}: {} poll(s) waited a full second with no event while the pipe would block (missed wakeups?)",
                    p.tag(),
                    work.tag(),
                    c.stalls
                ));
            }
        }
    }
    if !notes.is_empty() {
        println!();
        println!("Problems:");
        for n in notes {
            println!("  {n}");
        }
    }

    let empty: Vec<String> = results
        .iter()
        .flat_map(|(work, cells)| {
            cells
                .iter()
                .zip(PEERS)
                .filter(|(c, _)| c.empty > 0)
                .map(move |(c, p)| format!("{}/{} {}", p.tag(), work.tag(), c.empty))
        })
        .collect();
    if !empty.is_empty() {
        println!();
        println!("Polls that woke early with no event while the pipe would block, over all runs");
        println!("(harmless, for information): {}", empty.join(", "));
    }

    println!();
    println!("Markdown:");
    println!();
    print!("| Workload |");
    for p in PEERS {
        print!(" {} |", peer_md(p));
    }
    for &p in &PEERS[1..] {
        print!(" ours vs {} |", peer_md(p));
    }
    println!();
    println!("|---|{}", "---:|".repeat(2 * PEERS.len() - 1));
    for (work, cells) in results {
        let what = match work {
            Work::Bulk => format!("bulk: {}, MB/s", describe(*work, s)),
            Work::PingPong => format!("ping-pong: {}, µs per round trip", describe(*work, s)),
            Work::Many => format!("many: {}, aggregate MB/s (total time)", describe(*work, s)),
        };
        print!("| {what} |");
        for c in cells {
            match (work, c.median()) {
                (Work::Many, Some(m)) => {
                    print!(" {:.1} ({:.0} ms) |", value(*work, s, m), m * 1e3)
                }
                _ => print!(" {} |", cell_text(*work, s, c)),
            }
        }
        for i in 1..PEERS.len() {
            print!(" {} |", fmt_ratio(ratio(cells, i)));
        }
        println!();
    }
    println!();
    println!(
        "Median of {} run(s) each, all peers in one process, on {}; only the ratios are",
        o.reps,
        platform()
    );
    println!(
        "meaningful. A ratio above 1x favours ours (throughput: ours/peer; latency: peer µs / ours µs)."
    );
    println!("Targets: bulk >= {BULK_TARGET}x mio 1.x; ping-pong no slower than mio 1.x.");
}
