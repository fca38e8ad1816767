//! Request latency through the relay from Linux: small HTTP-style
//! request/response exchanges, one connection each (as curl and the docker
//! CLI make them), against the Docker-like server of the relay's tests
//! (`relay/examples/http_pipe_server.rs`) under Wine, for three relays:
//!
//! - `relay-socat`: `socat UNIX-LISTEN:SOCK,fork EXEC:"wine pipe-relay.exe -ep -s PIPE"`,
//!   a new Windows process per connection;
//! - `relay-tcp`: `pipe-relay.exe tcp-listen --any-tcp-peer` (one Windows
//!   process), over TCP (a Linux client's user is not one Windows can tell);
//! - `relay-unix`: `pipe-relay unix-listen` (Linux) and its one Windows process.
//!
//! `rpc-seq`: `--requests N` (default 200) one after the other; `rpc-par8`:
//! N more from 8 threads. Each latency runs from the connect to the last
//! byte of the response; the figures are the median and the 95th
//! percentile. A request that fails is counted, never retried.
//!
//! Run by `cargo xtask bench` natively on Linux (it is the one benchmark
//! whose clients are Linux programs): `--relay-native PATH --relay-exe PATH
//! --server-exe PATH [--wine CMD] [--requests N]`.

#[cfg(unix)]
fn main() {
    imp::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("relay_rpc measures the relay from Linux: `cargo xtask bench` runs it natively");
}

#[cfg(unix)]
mod imp {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    const REQUEST: &[u8] = b"GET /ping HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong";
    /// How long a start, or one workload, may take.
    const PATIENCE: Duration = Duration::from_secs(180);
    /// Issue 18's targets.
    const UNIX_VS_TCP: f64 = 1.5;
    const SOCAT_VS_UNIX: f64 = 5.0;

    struct Opts {
        native: String,
        exe: String,
        server: String,
        wine: Vec<String>,
        requests: usize,
    }

    fn opts() -> Opts {
        let mut o = Opts {
            native: String::new(),
            exe: String::new(),
            server: String::new(),
            wine: vec!["wine".into()],
            requests: 200,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut v = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
            match a.as_str() {
                "--relay-native" => o.native = v(),
                "--relay-exe" => o.exe = v(),
                "--server-exe" => o.server = v(),
                "--wine" => o.wine = v().split_whitespace().map(str::to_string).collect(),
                "--requests" => o.requests = v().parse().expect("--requests N"),
                // The arguments every benchmark gets (--quick, --rounds...).
                "--quick" => o.requests = 50,
                _ => {}
            }
        }
        assert!(
            !o.native.is_empty() && !o.exe.is_empty() && !o.server.is_empty(),
            "give --relay-native, --relay-exe and --server-exe"
        );
        o
    }

    /// A child killed at the end.
    struct Kill(Child);

    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Where a client connects.
    #[derive(Clone)]
    enum To {
        Unix(PathBuf),
        Tcp(String),
    }

    /// One exchange: its latency, or what failed.
    fn exchange(to: &To) -> Result<Duration, String> {
        let t = Instant::now();
        let mut got = Vec::with_capacity(RESPONSE.len());
        let mut buf = [0u8; 256];
        macro_rules! go {
            ($s:expr) => {{
                let mut s = $s.map_err(|e| format!("connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(30)))
                    .map_err(|e| e.to_string())?;
                s.write_all(REQUEST).map_err(|e| format!("write: {e}"))?;
                while got.len() < RESPONSE.len() {
                    let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Err(format!("the response ended after {} bytes", got.len()));
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }};
        }
        match to {
            To::Unix(p) => go!(UnixStream::connect(p)),
            To::Tcp(a) => go!(TcpStream::connect(a.as_str())),
        }
        if got != RESPONSE {
            return Err(format!(
                "a wrong response: {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
        Ok(t.elapsed())
    }

    /// The median and 95th percentile in ms, and the failures.
    fn run(to: &To, n: usize, threads: usize) -> (f64, f64, Vec<String>) {
        let (tx, rx) = mpsc::channel();
        let per = n.div_ceil(threads);
        let ts: Vec<_> = (0..threads)
            .map(|_| {
                let (to, tx) = (to.clone(), tx.clone());
                thread::spawn(move || {
                    let deadline = Instant::now() + PATIENCE;
                    for _ in 0..per {
                        let r = if Instant::now() < deadline {
                            exchange(&to)
                        } else {
                            Err(format!("not started: the workload took over {PATIENCE:?}"))
                        };
                        let _ = tx.send(r);
                    }
                })
            })
            .collect();
        drop(tx);
        let mut times = Vec::new();
        let mut failures = Vec::new();
        for r in rx.iter().take(n) {
            match r {
                Ok(d) => times.push(d.as_secs_f64() * 1e3),
                Err(e) => failures.push(e),
            }
        }
        for t in ts {
            let _ = t.join();
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if times.is_empty() {
                f64::NAN
            } else {
                times[((times.len() - 1) as f64 * q).round() as usize]
            }
        };
        (at(0.5), at(0.95), failures)
    }

    fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
        let t = Instant::now();
        while !ok() {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "{what} did not start"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn main() {
        let o = opts();
        let dir = std::env::temp_dir().join(format!("relay-rpc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pipe = format!("//./pipe/relay-rpc-{}", std::process::id());
        let wine = |exe: &str| {
            let mut c = Command::new(&o.wine[0]);
            c.args(&o.wine[1..]).arg(exe);
            c
        };
        let mut server = wine(&o.server)
            .arg(&pipe)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the test server");
        let out = server.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let _server = Kill(server);
        match rx.recv_timeout(PATIENCE) {
            Ok(l) if l.trim() == "ready" => {}
            other => {
                eprintln!("relay_rpc: the test server did not start: {other:?}");
                std::process::exit(1);
            }
        }

        println!("Request latency through the relay from Linux: {} requests sequentially, {} from 8 threads,", o.requests, o.requests);
        println!("one connection each, to a Docker-like HTTP server on a message pipe under Wine.");
        println!("Under Wine only the ratios of one run mean anything.\n");

        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let tcp_addr = format!("127.0.0.1:{port}");
        let socat_sock = dir.join("socat.sock");
        let unix_sock = dir.join("unix.sock");
        let wine_line = format!("{} {}", o.wine.join(" "), o.exe);
        let mut results = Vec::new();
        for peer in ["relay-socat", "relay-tcp", "relay-unix"] {
            let (child, to) = match peer {
                "relay-socat" => {
                    let c = Command::new("socat")
                        .arg(format!("UNIX-LISTEN:{},fork", socat_sock.display()))
                        .arg(format!("EXEC:{wine_line} -ep -s {pipe}"))
                        .spawn()
                        .expect("start socat (cargo xtask setup installs it)");
                    (c, To::Unix(socat_sock.clone()))
                }
                "relay-tcp" => {
                    let c = wine(&o.exe)
                        .args(["tcp-listen", &tcp_addr, &pipe])
                        // The clients are Linux processes, whose user
                        // Windows cannot tell.
                        .arg("--any-tcp-peer")
                        .spawn()
                        .expect("start tcp-listen");
                    (c, To::Tcp(tcp_addr.clone()))
                }
                _ => {
                    let c = Command::new(&o.native)
                        .arg("unix-listen")
                        .arg(&unix_sock)
                        .arg(&pipe)
                        .args(["--windows-relay", &wine_line])
                        .spawn()
                        .expect("start unix-listen");
                    (c, To::Unix(unix_sock.clone()))
                }
            };
            let _child = Kill(child);
            wait_until(peer, || match &to {
                To::Unix(p) => UnixStream::connect(p).is_ok(),
                To::Tcp(a) => TcpStream::connect(a.as_str()).is_ok(),
            });
            // A warm-up exchange: the first start of a Windows process is not counted.
            let _ = exchange(&to);
            for (work, threads) in [("rpc-seq", 1), ("rpc-par8", 8)] {
                let (median, p95, failures) = run(&to, o.requests, threads);
                println!(
                    "{peer:12} {work:9} median {median:7.2} ms  p95 {p95:7.2} ms  failures {}",
                    failures.len()
                );
                if let Some(f) = failures.first() {
                    println!("             first failure: {f}");
                }
                results.push((peer, work, median, p95, failures.len()));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);

        println!();
        let get = |peer: &str, work: &str| {
            results
                .iter()
                .find(|r| r.0 == peer && r.1 == work)
                .map_or(f64::NAN, |r| r.2)
        };
        let mut all_met = true;
        for work in ["rpc-seq", "rpc-par8"] {
            let (unix, tcp, socat) = (
                get("relay-unix", work),
                get("relay-tcp", work),
                get("relay-socat", work),
            );
            let (a, b) = (unix / tcp, socat / unix);
            let met_a = a <= UNIX_VS_TCP;
            let met_b = b >= SOCAT_VS_UNIX;
            all_met &= met_a && met_b;
            println!(
                "  target {work}: unix <= {UNIX_VS_TCP}x tcp-listen: {a:.2}x -> {}; socat+fork >= {SOCAT_VS_UNIX}x unix: {b:.1}x -> {}",
                if met_a { "met" } else { "NOT met" },
                if met_b { "met" } else { "NOT met" }
            );
        }
        let failed: usize = results.iter().map(|r| r.4).sum();
        println!(
            "  failures: {failed}; targets {}",
            if all_met { "all met" } else { "NOT all met" }
        );
        println!();
        println!("Figures (for scripts):");
        for (peer, work, median, p95, fails) in &results {
            println!("figure {peer} {work} time {median:.2} ms-median");
            println!("figure {peer} {work} time {p95:.2} ms-p95");
            println!("figure {peer} {work} failures {fails}");
        }
        if failed > 0 {
            std::process::exit(1);
        }
    }
}
