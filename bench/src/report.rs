//! What the benchmark prints: the header, the results table with ratios and
//! targets, and a markdown version for the README.

use std::ffi::{c_char, c_void, CStr};

use crate::common::Sizes;
use crate::run::{Cell, Opts, Peer, Work, MIB, PEERS};

/// Bulk and many: ours must move at least this many times what mio 1.x moves.
const BULK_TARGET: f64 = 1.0;
/// Ping-pong: ours must be no slower than mio 1.x.
const PING_TARGET: f64 = 1.0;
/// Many: ours must keep the peak private bytes of its process below this (MiB).
const MEMORY_TARGET: f64 = 64.0;

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
        Work::PingPong => "us",
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
        "{} round(s); each runs every peer once, in an order rotating from round to round.",
        o.reps
    );
    println!();
}

/// How many times better ours is than `peer` (> 1: ours is better): for
/// throughput ours/peer, for latency peer_us/ours_us. Both are peer_secs/ours_secs.
fn ratio(cells: &[Cell], peer: usize) -> Option<f64> {
    Some(cells[peer].median()? / cells[0].median()?)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.2}x"))
}

fn precision(v: f64) -> usize {
    if v >= 100.0 {
        0
    } else {
        1
    }
}

/// "median (min-max)" of a cell, in the unit of `work`.
fn cell_text(work: Work, s: Sizes, c: &Cell) -> String {
    match (c.spread(), &c.error) {
        (Some((fast, m, slow)), _) => {
            // Fewer seconds is the higher throughput and the lower latency.
            let (a, b) = match work {
                Work::PingPong => (value(work, s, fast), value(work, s, slow)),
                _ => (value(work, s, slow), value(work, s, fast)),
            };
            let v = value(work, s, m);
            let p = precision(v);
            if c.secs.len() > 1 {
                format!("{v:.p$} ({a:.p$}-{b:.p$})")
            } else {
                format!("{v:.p$}")
            }
        }
        (None, Some(e)) if e.starts_with("HUNG") => "HUNG".into(),
        _ => "FAILED".into(),
    }
}

fn memory_mib(c: &Cell) -> Option<f64> {
    match &c.memory {
        Some(Ok((peak, _))) => Some(*peak as f64 / MIB),
        _ => None,
    }
}

pub fn results(o: &Opts, results: &[(Work, Vec<Cell>)]) {
    let s = o.sizes;
    println!(
        "Time: median (min-max) of {} round(s); ratios compare medians, above 1.00x ours is better",
        o.reps
    );
    println!("(throughput: ours/peer; latency: peer_us/ours_us, the speedup).");
    println!();
    print!("{:<18}", "workload");
    for p in PEERS {
        print!("{:>22}", p.tag());
    }
    println!();
    for (work, cells) in results {
        print!("{:<18}", format!("{} [{}]", work.tag(), unit(*work)));
        for c in cells {
            print!("{:>22}", cell_text(*work, s, c));
        }
        println!();
    }
    if let Some((_, cells)) = results.iter().find(|(w, _)| *w == Work::Many) {
        print!("{:<18}", "many peak [MiB]");
        for c in cells {
            let t = match (&c.memory, memory_mib(c)) {
                (_, Some(m)) => format!("{m:.1}"),
                (Some(Err(_)), _) => "FAILED".into(),
                _ => "-".into(),
            };
            print!("{t:>22}");
        }
        println!();
        if let Some(Some(Ok((_, before)))) = cells.first().map(|c| &c.memory) {
            println!(
                "  (private bytes of the whole process, which held {:.1} MiB before the pipes were made)",
                *before as f64 / MIB
            );
        }
    }
    println!();
    for (work, cells) in results {
        let mut line = format!("{:<10}", format!("{}:", work.tag()));
        for (i, &p) in PEERS.iter().enumerate().skip(1) {
            let r = format!("vs {} {}", p.tag(), fmt_ratio(ratio(cells, i)));
            line.push_str(&format!("  {r:<20}"));
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
            Work::Many => (format!("ours/mio1 >= {BULK_TARGET:.2}x"), BULK_TARGET),
        };
        let r = ratio(cells, 1);
        let verdict = match r {
            Some(r) if r >= target => "MET",
            Some(_) => "NOT MET",
            None => "UNKNOWN (a peer failed)",
        };
        println!("  {:<10} {goal}: {} -> {verdict}", work.tag(), fmt_ratio(r));
        if *work == Work::Many {
            let m = memory_mib(&cells[0]);
            let verdict = match m {
                Some(m) if m <= MEMORY_TARGET => "MET",
                Some(_) => "NOT MET",
                None => "UNKNOWN",
            };
            println!(
                "  {:<10} ours peak private bytes <= {MEMORY_TARGET} MiB: {} -> {verdict}",
                work.tag(),
                m.map_or("n/a".into(), |m| format!("{m:.1} MiB")),
            );
        }
    }

    let mut notes = Vec::new();
    for (work, cells) in results {
        for (c, p) in cells.iter().zip(PEERS) {
            if let Some(e) = &c.error {
                notes.push(format!("{} / {}: {e}", p.tag(), work.tag()));
            }
            if let Some(Err(e)) = &c.memory {
                notes.push(format!("{} / {} memory: {e}", p.tag(), work.tag()));
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
    println!("Figures (for scripts):");
    for (work, cells) in results {
        for (c, p) in cells.iter().zip(PEERS) {
            if let Some(m) = c.median() {
                println!(
                    "figure {} {} time {:.1} {}",
                    p.tag(),
                    work.tag(),
                    value(*work, s, m),
                    unit(*work)
                );
            }
            if let Some(m) = memory_mib(c) {
                println!("figure {} {} memory {m:.1} MiB", p.tag(), work.tag());
            }
        }
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
            Work::Many => format!("many: {}, aggregate MB/s", describe(*work, s)),
        };
        print!("| {what} |");
        for c in cells {
            print!(" {} |", cell_text(*work, s, c));
        }
        for i in 1..PEERS.len() {
            print!(" {} |", fmt_ratio(ratio(cells, i)));
        }
        println!();
        if *work == Work::Many && cells.iter().any(|c| c.memory.is_some()) {
            print!("| many: peak private bytes of the process, MiB |");
            for c in cells {
                print!(
                    " {} |",
                    memory_mib(c).map_or("-".into(), |m| format!("{m:.1}"))
                );
            }
            println!("{}", " |".repeat(PEERS.len() - 1));
        }
    }
    println!();
    println!(
        "Median (min-max) of {} round(s), all peers in one process, on {}; only the ratios",
        o.reps,
        platform()
    );
    println!(
        "between peers mean something. A ratio above 1x favours ours (throughput: ours/peer; latency: peer µs / ours µs)."
    );
}
