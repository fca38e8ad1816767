//! `cargo xtask bench`: the time figures of the benchmark binaries, and the
//! number of wineserver requests of every peer and workload.
//!
//! Under Wine every pipe operation that is a kernel transition on Windows is
//! a request to wineserver, and their count per unit of work barely moves
//! from run to run, while timings move by 30-50 %. A wineserver started with
//! `-d1` prints every request on its standard error; the benchmark binaries,
//! run with `--trace PEER`, run one round of each workload for one peer in a
//! process of its own, and open a pipe name no one serves before and after
//! each workload (`bench-mark@PEER@WORKLOAD@UNITS`, then `bench-mark@end`).
//! The trace is read as it is written (it never touches the disk): each
//! request of a thread of the marked process, between the marks, is counted
//! by kind.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::thread;

use super::{run_tee, setup, wine_cmd, Result, WinEnv, BENCH, BENCHES, GNU, RELAY};

/// The peers every benchmark binary traces, in the order of the tables.
const PEERS: [&str; 4] = ["ours", "mio1", "old", "blocking"];
/// The workloads, in the order of the tables, with the unit of their request counts.
const WORKS: [(&str, &str); 5] = [
    ("bulk", "per-MiB"),
    ("pingpong", "per-trip"),
    ("many", "per-MiB"),
    ("accept2", "per-conn"),
    ("accept8", "per-conn"),
];
/// The relay benchmark binary, its peers, and its workloads.
const RELAY_BENCH: &str = "relay";
const RELAY_PEERS: [&str; 2] = ["relay", "direct"];
const RELAY_WORKS: [&str; 2] = ["relay-stdin", "relay-tcp"];
/// The relay's request latency from Linux (run natively: its clients are
/// Linux programs; it runs the Windows relay and server under Wine).
const RPC_BENCH: &str = "relay_rpc";
/// The async fronts' benchmark binary (async-named-pipes against tokio's and
/// interprocess's named pipes, all on tokio).
const ASYNC_BENCH: &str = "async_fronts";
/// Its peers: the async front on tokio, tokio's own named pipes, and
/// interprocess's tokio named pipes.
const ASYNC_PEERS: [&str; 3] = ["ours-tokio", "tokio", "interprocess"];
/// Its workloads, with the unit of their request counts.
const ASYNC_WORKS: [(&str, &str); 6] = [
    ("bulk", "per-MiB"),
    ("pingpong", "per-trip"),
    // ours-tokio and tokio only: interprocess has no readiness API.
    ("pingpong-ready", "per-trip"),
    ("many", "per-MiB"),
    ("accept2", "per-conn"),
    ("accept8", "per-conn"),
];
/// Issue 12's request target: the relay at most this many times the direct transfer's.
const RELAY_VS_DIRECT: f64 = 2.0;
/// How many request kinds the breakdown shows per peer and workload.
const TOP_KINDS: usize = 5;
/// Part 3 of issue 9: request targets for ours.
const BULK_VS_MIO1: f64 = 0.35;
const PINGPONG_PER_TRIP: f64 = 28.0;
const ACCEPT_PER_CONN: f64 = 18.0;

const USAGE: &str = "\
cargo xtask bench [--requests-only] [--bins B,...] [ARGS...]
  Counts the wineserver requests of one traced round per peer and workload,
  then runs the timed rounds. ARGS go to every benchmark binary (throughput,
  accept, relay, async_fronts, relay_rpc): --quick, --rounds N, --only W (throughput,
  async_fronts), --clients N (accept).
  --requests-only   only the request counts (a quick run)
  --bins B,...      only these benchmark binaries (e.g. --bins async_fronts)
";

/// Requests counted in one marked section.
#[derive(Debug, Default)]
struct Section {
    units: u64,
    kinds: HashMap<String, u64>,
    /// Of all requests, those of the marked process's children (the relay).
    children: u64,
}

impl Section {
    fn total(&self) -> u64 {
        self.kinds.values().sum()
    }

    fn per_unit(&self, n: u64) -> f64 {
        n as f64 / self.units.max(1) as f64
    }

    /// The most frequent request kinds, each per unit of work: `read 16.0, ...`.
    fn top_kinds(&self) -> String {
        let mut kinds: Vec<(&String, &u64)> = self.kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        kinds
            .iter()
            .take(TOP_KINDS)
            .map(|(k, &n)| format!("{k} {:.1}", self.per_unit(n)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads a `wineserver -d1` trace and counts the requests of marked sections.
#[derive(Debug, Default)]
struct Counter {
    /// Thread id -> process id, from `init_first_thread` and `new_thread` replies.
    process_of: HashMap<u32, u32>,
    /// Process id -> the process that started it, from `new_process` replies:
    /// a marked process's children (the relay) count as its own requests.
    parent_of: HashMap<u32, u32>,
    /// The section being counted: its process, peer and workload.
    open: Option<(u32, String, String)>,
    sections: HashMap<(String, String), Section>,
    /// Requests counted, all sections together (a sanity check).
    lines: u64,
}

/// `key=HEX` in `s`.
fn hex_field(s: &str, key: &str) -> Option<u32> {
    let at = s.find(key)? + key.len();
    let end = s[at..]
        .find(|c: char| !c.is_ascii_hexdigit())
        .map_or(s.len(), |e| at + e);
    u32::from_str_radix(&s[at..end], 16).ok()
}

impl Counter {
    fn line(&mut self, line: &str) {
        // `TTTT: name( args )`, `TTTT: name() = STATUS { reply }`, or
        // `TTTT: *event* ...` (not a request).
        let Some((tid, rest)) = line.split_once(": ") else {
            return;
        };
        let Ok(tid) = u32::from_str_radix(tid, 16) else {
            return;
        };
        let Some(open) = rest.find('(') else { return };
        let name = &rest[..open];
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
        {
            return;
        }
        let after = &rest[open + 1..];
        if after.starts_with(") = ") {
            // A reply.
            match name {
                "init_first_thread" => {
                    if let (Some(pid), Some(t)) =
                        (hex_field(after, "pid="), hex_field(after, "tid="))
                    {
                        self.process_of.insert(t, pid);
                    }
                }
                "new_thread" => {
                    if let (Some(t), Some(&pid)) =
                        (hex_field(after, "tid="), self.process_of.get(&tid))
                    {
                        self.process_of.insert(t, pid);
                    }
                }
                "new_process" => {
                    if let (Some(child), Some(&pid)) =
                        (hex_field(after, "pid="), self.process_of.get(&tid))
                    {
                        self.parent_of.insert(child, pid);
                    }
                }
                _ => {}
            }
            return;
        }
        if name == "open_file_object" {
            if let Some(at) = after.find("bench-mark@") {
                let mark = &after[at + "bench-mark@".len()..];
                let mark = &mark[..mark.find('"').unwrap_or(mark.len())];
                let mut parts = mark.split('@');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("end"), _, _) => self.open = None,
                    (Some(peer), Some(work), Some(units)) => {
                        let pid = self.process_of.get(&tid).copied().unwrap_or(u32::MAX);
                        let key = (peer.to_string(), work.to_string());
                        let s = self.sections.entry(key).or_default();
                        *s = Section {
                            units: units.parse().unwrap_or(1),
                            kinds: HashMap::new(),
                            children: 0,
                        };
                        self.open = Some((pid, peer.to_string(), work.to_string()));
                    }
                    _ => {}
                }
                return;
            }
        }
        let Some((pid, peer, work)) = &self.open else {
            return;
        };
        let Some(p) = self.process_of.get(&tid) else {
            return;
        };
        if p != pid && self.parent_of.get(p) != Some(pid) {
            return;
        }
        let child = p != pid;
        let key = (peer.clone(), work.clone());
        if let Some(s) = self.sections.get_mut(&key) {
            *s.kinds.entry(name.to_string()).or_default() += 1;
            s.children += u64::from(child);
            self.lines += 1;
        }
    }

    /// Counts the trace read from `r` until its end.
    fn read(mut self, r: impl Read) -> Counter {
        let mut r = BufReader::with_capacity(1 << 16, r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return self,
                Ok(_) => self.line(&String::from_utf8_lossy(&buf)),
            }
        }
    }
}

/// A wineserver tracing every request, its trace counted by a thread.
struct TracedServer {
    child: Child,
    counter: thread::JoinHandle<Counter>,
}

fn stop_server(w: &WinEnv) {
    let _ = wine_cmd(&w.prefix, "wineserver")
        .arg("-k")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = wine_cmd(&w.prefix, "wineserver")
        .arg("-w")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl TracedServer {
    fn start(w: &WinEnv) -> Result<TracedServer> {
        // One server per prefix: stop whatever runs there now.
        stop_server(w);
        let mut child = wine_cmd(&w.prefix, "wineserver")
            .args(["-f", "-p", "-d1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting a tracing wineserver: {e}"))?;
        let err = child.stderr.take().expect("piped stderr");
        let counter = thread::spawn(move || Counter::default().read(err));
        Ok(TracedServer { child, counter })
    }

    fn finish(mut self, w: &WinEnv) -> Result<Counter> {
        stop_server(w);
        let _ = self.child.wait();
        self.counter
            .join()
            .map_err(|_| "the trace counter panicked".to_string())
    }
}

/// `cargo xtask bench`.
pub(crate) fn bench(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return Ok(());
    }
    let requests_only = args.iter().any(|a| a == "--requests-only");
    let mut bins: Option<Vec<String>> = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--requests-only" => {}
            "--bins" => {
                let list: Vec<String> = it
                    .next()
                    .map(|l| l.split(',').map(str::to_string).collect())
                    .unwrap_or_default();
                let known = BENCHES
                    .into_iter()
                    .chain([RELAY_BENCH, ASYNC_BENCH, RPC_BENCH]);
                if list.is_empty() || list.iter().any(|b| !known.clone().any(|k| k == b)) {
                    return Err(format!(
                        "--bins takes a comma-separated list of {}, not {list:?}",
                        known.collect::<Vec<_>>().join(", ")
                    ));
                }
                bins = Some(list);
            }
            _ => rest.push(a.clone()),
        }
    }
    let args = rest;
    let runs = |bin: &str| bins.as_ref().is_none_or(|b| b.iter().any(|x| x == bin));
    let w = setup(false)?;
    let mut build = w.cargo("build", GNU);
    build.args(["-p", BENCH, "-p", RELAY, "--release", "--bins"]);
    let status = build.status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building the benchmarks failed ({status})"));
    }

    println!("==== wineserver requests: one traced round per peer, each in a process of its own");
    let traced = TracedServer::start(&w)?;
    let mut failures = Vec::new();
    for bin in BENCHES.into_iter().filter(|b| runs(b)) {
        for peer in PEERS {
            let mut c = run_bin(&w, bin, &args);
            c.args(["--trace", peer]);
            match run_tee(c) {
                Ok((s, _)) if s.success() => {}
                Ok((s, _)) => failures.push(format!("{bin} --trace {peer} exited with {s}")),
                Err(e) => failures.push(format!("{bin} --trace {peer}: {e}")),
            }
        }
    }
    let relay_exe = relay_exe(&w);
    for peer in RELAY_PEERS.into_iter().filter(|_| runs(RELAY_BENCH)) {
        let mut c = run_bin(&w, RELAY_BENCH, &args);
        c.arg("--relay").arg(&relay_exe).args(["--trace", peer]);
        match run_tee(c) {
            Ok((s, _)) if s.success() => {}
            Ok((s, _)) => failures.push(format!("relay --trace {peer} exited with {s}")),
            Err(e) => failures.push(format!("relay --trace {peer}: {e}")),
        }
    }
    for peer in ASYNC_PEERS.into_iter().filter(|_| runs(ASYNC_BENCH)) {
        let mut c = run_bin(&w, ASYNC_BENCH, &args);
        c.args(["--trace", peer]);
        match run_tee(c) {
            Ok((s, _)) if s.success() => {}
            Ok((s, _)) => failures.push(format!("{ASYNC_BENCH} --trace {peer} exited with {s}")),
            Err(e) => failures.push(format!("{ASYNC_BENCH} --trace {peer}: {e}")),
        }
    }
    let counter = traced.finish(&w)?;
    let (report, mut figures) = requests_report(&counter);

    if !requests_only {
        let _server = w.wineserver();
        for bin in BENCHES
            .into_iter()
            .chain([RELAY_BENCH, ASYNC_BENCH])
            .filter(|b| runs(b))
        {
            println!("\n==== {bin}: time");
            let mut c = run_bin(&w, bin, &args);
            if bin == RELAY_BENCH {
                c.arg("--relay").arg(&relay_exe);
            }
            let (status, out) = run_tee(c)?;
            if !status.success() {
                failures.push(format!("the `{bin}` benchmark exited with {status}"));
            }
            figures.extend(
                out.lines()
                    .filter(|l| l.starts_with("figure "))
                    .map(str::to_string),
            );
        }
    }

    if !requests_only && runs(RPC_BENCH) {
        println!("\n==== {RPC_BENCH}: time (natively, from Linux)");
        match rpc_bench(&w, &args) {
            Ok((status, out)) => {
                if !status.success() {
                    failures.push(format!("the `{RPC_BENCH}` benchmark exited with {status}"));
                }
                figures.extend(
                    out.lines()
                        .filter(|l| l.starts_with("figure "))
                        .map(str::to_string),
                );
            }
            Err(e) => failures.push(format!("{RPC_BENCH}: {e}")),
        }
    }

    println!("\n==== wineserver requests");
    print!("{report}");
    println!("\n==== all figures");
    for f in &figures {
        println!("{f}");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Builds and runs the request-latency benchmark natively: the Linux
/// relay, the Windows relay and the Docker-like test server, in release mode.
fn rpc_bench(w: &WinEnv, args: &[String]) -> Result<(std::process::ExitStatus, String)> {
    let mut c = w.cargo("build", GNU);
    c.args(["-p", RELAY, "--release", "--example", "http_pipe_server"]);
    let status = c.status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building the test server failed ({status})"));
    }
    let mut c = super::native(&["build", "--release", "-p", RELAY, "-p", BENCH]);
    c.args(["--bin", RELAY, "--bin", RPC_BENCH]);
    let status = c.status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building {RPC_BENCH} natively failed ({status})"));
    }
    let native = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| w.root.join("target"), std::path::PathBuf::from)
        .join("release");
    let _server = w.wineserver();
    let mut c = std::process::Command::new(native.join(RPC_BENCH));
    c.arg("--relay-native")
        .arg(native.join(RELAY))
        .arg("--relay-exe")
        .arg(relay_exe(w))
        .arg("--server-exe")
        .arg(
            w.target_dir()
                .join(GNU)
                .join("release")
                .join("examples")
                .join("http_pipe_server.exe"),
        )
        .args(args)
        .env("WINEPREFIX", &w.prefix)
        .env("WINEDEBUG", "-all");
    run_tee(c)
}

/// The relay program built for the benchmark, as the path Wine runs.
fn relay_exe(w: &WinEnv) -> std::path::PathBuf {
    w.target_dir()
        .join(GNU)
        .join("release")
        .join(format!("{RELAY}.exe"))
}

/// `cargo run` of one benchmark binary under Wine, with `args`.
fn run_bin(w: &WinEnv, bin: &str, args: &[String]) -> std::process::Command {
    let mut c = w.cargo("run", GNU);
    c.args(["-q", "-p", BENCH, "--release", "--bin", bin, "--"])
        .args(args);
    // A benchmark may legitimately run longer than a test binary.
    c.env(
        "XTASK_WINE_TIMEOUT",
        std::env::var("XTASK_WINE_TIMEOUT").unwrap_or_else(|_| "3600".into()),
    );
    c
}

/// The most frequent request kinds of each peer's round of each workload,
/// after a request table.
fn top_kinds_block<'a>(
    out: &mut String,
    on: &str,
    works: &[(&str, &str)],
    peers: &[&str],
    get: impl Fn(&str, &str) -> Option<&'a Section>,
) {
    let width = peers.iter().map(|p| p.len()).max().unwrap_or(0) + 1;
    let _ = writeln!(
        out,
        "\nThe most frequent request kinds{on} (per unit of work; total requests of the round in brackets):"
    );
    for &(work, unit) in works {
        let _ = writeln!(out, "{work} ({unit})");
        for p in peers {
            let Some(s) = get(p, work) else { continue };
            let _ = writeln!(out, "  {p:<width$} [{}] {}", s.total(), s.top_kinds());
        }
    }
}

/// The request tables (plain and markdown) and the `figure` lines.
fn requests_report(c: &Counter) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut figures = Vec::new();
    let get = |peer: &str, work: &str| c.sections.get(&(peer.to_string(), work.to_string()));
    let per_unit = |peer: &str, work: &str| get(peer, work).map(|s| s.per_unit(s.total()));
    let works: Vec<(&str, &str)> = WORKS
        .into_iter()
        .filter(|(w, _)| PEERS.iter().any(|p| get(p, w).is_some()))
        .collect();

    if !works.is_empty() {
        let _ = writeln!(
            out,
            "Requests per unit of work (one traced round of each peer, every request of its process"
        );
        let _ = writeln!(out, "between the workload's marks, setup included):\n");
        let _ = write!(out, "{:<10}{:<10}", "workload", "unit");
        for p in PEERS {
            let _ = write!(out, "{p:>11}");
        }
        let _ = writeln!(out, "{:>14}", "ours/mio1");
        for &(work, unit) in &works {
            let _ = write!(out, "{work:<10}{unit:<10}");
            for p in PEERS {
                let t = per_unit(p, work).map_or("-".into(), |v| format!("{v:.1}"));
                let _ = write!(out, "{t:>11}");
            }
            let r = per_unit("ours", work)
                .zip(per_unit("mio1", work))
                .map_or("-".into(), |(o, m)| format!("{:.2}x", o / m));
            let _ = writeln!(out, "{r:>14}");
            for p in PEERS {
                if let Some(v) = per_unit(p, work) {
                    figures.push(format!("figure {p} {work} requests {v:.1} {unit}"));
                }
            }
        }

        top_kinds_block(&mut out, "", &works, &PEERS, get);
    }

    let relay_works: Vec<&str> = RELAY_WORKS
        .into_iter()
        .filter(|w| RELAY_PEERS.iter().any(|p| get(p, w).is_some()))
        .collect();
    if !relay_works.is_empty() {
        let _ = writeln!(
            out,
            "\nRelay: requests per MiB of the transfer (the relay process's included), against a direct pipe transfer:\n"
        );
        let _ = writeln!(
            out,
            "| workload | relay | of which the relay process | direct | relay vs direct | top kinds (relay) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
        for work in relay_works {
            let (r, d) = (per_unit("relay", work), per_unit("direct", work));
            let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
            let ratio = r
                .zip(d)
                .map_or("-".into(), |(r, d)| format!("{:.2}x", r / d));
            let top = get("relay", work).map_or(String::new(), Section::top_kinds);
            let own = get("relay", work).map(|s| s.per_unit(s.children));
            let _ = writeln!(
                out,
                "| {work} | {} | {} | {} | {ratio} | {top} |",
                fmt(r),
                fmt(own),
                fmt(d)
            );
            for (p, v) in [("relay", r), ("direct", d)] {
                if let Some(v) = v {
                    figures.push(format!("figure {p} {work} requests {v:.1} per-MiB"));
                }
            }
            if let Some((r, d)) = r.zip(d) {
                let _ = writeln!(
                    out,
                    "  target: relay <= {RELAY_VS_DIRECT}x direct: {:.2}x -> {}",
                    r / d,
                    if r / d <= RELAY_VS_DIRECT {
                        "MET"
                    } else {
                        "NOT MET"
                    }
                );
            }
        }
    }

    let async_works: Vec<(&str, &str)> = ASYNC_WORKS
        .into_iter()
        .filter(|(w, _)| ASYNC_PEERS.iter().any(|p| get(p, w).is_some()))
        .collect();
    if !async_works.is_empty() {
        let _ = writeln!(
            out,
            "\nAsync fronts on tokio: requests per unit of work (set-up included):\n"
        );
        let _ = writeln!(
            out,
            "| workload | unit | ours-tokio | tokio | interprocess | ours-tokio vs tokio | ours-tokio vs interprocess |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
        let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        let ratio = |a: Option<f64>, b: Option<f64>| {
            a.zip(b)
                .map_or("-".into(), |(a, b)| format!("{:.2}x", a / b))
        };
        for &(work, unit) in &async_works {
            let [o, t, i] = ASYNC_PEERS.map(|p| per_unit(p, work));
            let _ = writeln!(
                out,
                "| {work} | {unit} | {} | {} | {} | {} | {} |",
                fmt(o),
                fmt(t),
                fmt(i),
                ratio(o, t),
                ratio(o, i)
            );
            for p in ASYNC_PEERS {
                if let Some(v) = per_unit(p, work) {
                    figures.push(format!("figure {p} {work} requests {v:.1} {unit}"));
                }
            }
        }
        top_kinds_block(&mut out, " on tokio", &async_works, &ASYNC_PEERS, get);
    }

    if !works.is_empty() {
        let _ = writeln!(out, "\nTargets (requests):");
        let verdict = |ok: Option<bool>| match ok {
            Some(true) => "MET",
            Some(false) => "NOT MET",
            None => "UNKNOWN",
        };
        if let Some((o, m)) = per_unit("ours", "bulk").zip(per_unit("mio1", "bulk")) {
            let _ = writeln!(
                out,
                "  bulk      ours <= {BULK_VS_MIO1}x mio1: {:.2}x -> {}",
                o / m,
                verdict(Some(o / m <= BULK_VS_MIO1))
            );
        }
        if let Some(o) = per_unit("ours", "pingpong") {
            let _ = writeln!(
                out,
                "  pingpong  ours <= {PINGPONG_PER_TRIP} per round trip: {o:.1} -> {}",
                verdict(Some(o <= PINGPONG_PER_TRIP))
            );
        }
        for work in ["accept2", "accept8"] {
            if let Some(o) = per_unit("ours", work) {
                let _ = writeln!(
                    out,
                    "  {work:<9} ours <= {ACCEPT_PER_CONN} per connection: {o:.1} -> {}",
                    verdict(Some(o <= ACCEPT_PER_CONN))
                );
            }
        }

        let _ = writeln!(out, "\nMarkdown:\n");
        let _ = writeln!(
            out,
            "| Workload | unit | ours | mio 1.x | 0.1.7 | blocking threads | ours vs mio 1.x |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
        for &(work, unit) in &works {
            let _ = write!(out, "| {work} | {unit} |");
            for p in PEERS {
                let t = per_unit(p, work).map_or("-".into(), |v| format!("{v:.1}"));
                let _ = write!(out, " {t} |");
            }
            let r = per_unit("ours", work)
                .zip(per_unit("mio1", work))
                .map_or("-".into(), |(o, m)| format!("{:.2}x", o / m));
            let _ = writeln!(out, " {r} |");
        }
    }
    if c.lines == 0 {
        let _ = writeln!(
            out,
            "\nNO REQUEST WAS COUNTED: the trace had no marked section (is this Wine's wineserver?)"
        );
    }
    (out, figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_marked_process_only() {
        let trace = r#"wineserver: starting (pid=1)
0024: init_first_thread( unix_pid=15576 )
0024: init_first_thread() = 0 { pid=0020, tid=0024, server_start=1 }
0034: init_first_thread() = 0 { pid=0030, tid=0034, server_start=1 }
0024: new_thread( process=ffffffff )
0024: new_thread() = 0 { tid=0028, handle=0018 }
0024: open_file_object( access=c0100080, filename=L"\\??\\pipe\\bench-mark@ours@bulk@4" )
0024: open_file_object() = OBJECT_NAME_NOT_FOUND { handle=0000 }
0028: read( async={handle=0004}, pos=0 )
0028: read() = PENDING { wait=0000 }
0034: read( async={handle=0004}, pos=0 )
0028: *wakeup* signaled=256
0024: get_system_info()
0028: read( async={handle=0004}, pos=0 )
0024: open_file_object( access=c0100080, filename=L"\\??\\pipe\\bench-mark@end" )
0028: read( async={handle=0004}, pos=0 )
"#;
        let mut c = Counter::default();
        for l in trace.lines() {
            c.line(l);
        }
        let s = &c.sections[&("ours".to_string(), "bulk".to_string())];
        assert_eq!(s.units, 4);
        assert_eq!(s.kinds["read"], 2, "{:?}", s.kinds);
        assert_eq!(s.kinds["get_system_info"], 1);
        assert_eq!(
            s.total(),
            3,
            "the other process, replies and the marks do not count"
        );
        assert_eq!(s.per_unit(s.total()), 0.75);
    }

    #[test]
    fn a_marked_process_counts_its_children() {
        let trace = r#"0024: init_first_thread() = 0 { pid=0020, tid=0024, server_start=1 }
0024: new_process( token=0000 )
0024: new_process() = 0 { info=0010, pid=0028, handle=0014 }
002c: init_first_thread() = 0 { pid=0028, tid=002c, server_start=1 }
0034: init_first_thread() = 0 { pid=0030, tid=0034, server_start=1 }
0024: open_file_object( access=c0100080, filename=L"\\??\\pipe\\bench-mark@relay@relay-stdin@2" )
002c: read( async={handle=0004}, pos=0 )
0024: write( async={handle=0008}, pos=0 )
0034: read( async={handle=0004}, pos=0 )
0024: open_file_object( access=c0100080, filename=L"\\??\\pipe\\bench-mark@end" )
"#;
        let mut c = Counter::default();
        for l in trace.lines() {
            c.line(l);
        }
        let s = &c.sections[&("relay".to_string(), "relay-stdin".to_string())];
        assert_eq!(s.kinds["read"], 1, "the child's read, not the stranger's");
        assert_eq!(s.kinds["write"], 1);
        assert_eq!(s.total(), 2);
        assert_eq!(s.children, 1);
    }
}
