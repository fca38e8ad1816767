//! The relay program against a direct pipe transfer, side by side in one run:
//!
//! - `relay-stdin`: 64 MiB written to `pipe-relay connect PIPE`'s stdin
//!   reach a pipe server here;
//! - `relay-tcp`: 64 MiB written by a pipe client here reach a TCP server
//!   here through `pipe-relay listen PIPE --tcp ADDR`;
//! - `direct`: the same 64 MiB from a pipe client to a pipe server, both
//!   this crate's `NamedPipe` in this process (the figure each relay
//!   workload is compared with).
//!
//! Every byte received is checked. Time runs from the first byte written to
//! the last byte received, so the relay's process start is not counted.
//! `--relay PATH` names the relay executable (`cargo xtask bench` builds it);
//! `--rounds N` (default 5) interleaves the three in each round; `--quick`
//! moves 8 MiB; `--trace relay|direct` runs each workload once, marked for
//! the request count of `cargo xtask bench` (the marks enclose the transfer
//! alone, after the relay has started; the relay's requests count as its
//! parent's). Under Wine only the ratios of one run mean anything.

#[cfg(windows)]
#[path = "../mark.rs"]
mod mark;

#[cfg(windows)]
fn main() {
    imp::main();
}

#[cfg(not(windows))]
fn main() {
    eprintln!("the benchmarks run on Windows, or under Wine with `cargo xtask bench`");
}

#[cfg(windows)]
mod imp {
    use std::io::{self, Read, Write};
    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use mio06::{Events, Poll, PollOpt, Ready, Token};
    use mio_named_pipes::{ClientOptions, NamedPipe, ServerOptions};

    const CHUNK: usize = 64 << 10;
    const PATIENCE: Duration = Duration::from_secs(120);

    fn name() -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        format!(
            r"\\.\pipe\mnp-relay-bench-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The byte at `i` of every stream.
    fn byte(i: usize) -> u8 {
        (i.wrapping_mul(2_654_435_761) >> 13) as u8
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(byte).collect()
    }

    /// Checks bytes received at offset `at` of the stream.
    fn check(at: usize, got: &[u8]) {
        for (k, b) in got.iter().enumerate() {
            assert_eq!(*b, byte(at + k), "byte {} differs", at + k);
        }
    }

    /// A pipe driven by a Poll of its own.
    struct Driven {
        pipe: NamedPipe,
        poll: Poll,
        events: Events,
    }

    impl Driven {
        fn new(pipe: NamedPipe) -> Driven {
            let poll = Poll::new().unwrap();
            poll.register(&pipe, Token(0), Ready::all(), PollOpt::edge())
                .unwrap();
            Driven {
                pipe,
                poll,
                events: Events::with_capacity(4),
            }
        }

        fn wait(&mut self) {
            self.poll
                .poll(&mut self.events, Some(Duration::from_secs(1)))
                .unwrap();
        }

        fn connect(&mut self) {
            loop {
                match self.pipe.connect() {
                    Ok(()) => return,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(),
                    Err(e) => panic!("connect: {e}"),
                }
            }
        }

        fn send(&mut self, data: &[u8]) {
            for chunk in data.chunks(CHUNK) {
                let mut rest = chunk;
                while !rest.is_empty() {
                    match (&self.pipe).write(rest) {
                        Ok(n) => rest = &rest[n..],
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(),
                        Err(e) => panic!("write: {e}"),
                    }
                }
            }
            while let Err(e) = (&self.pipe).flush() {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "flush: {e}");
                self.wait();
            }
        }

        /// Reads `len` bytes, checking them; returns when the last arrived.
        fn receive(&mut self, len: usize) -> Instant {
            let mut at = 0;
            let mut buf = vec![0u8; CHUNK];
            while at < len {
                match (&self.pipe).read(&mut buf) {
                    Ok(0) => panic!("end of stream after {at} of {len} bytes"),
                    Ok(n) => {
                        check(at, &buf[..n]);
                        at += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(),
                    Err(e) => panic!("read: {e}"),
                }
            }
            Instant::now()
        }
    }

    /// A pipe server of a new name, connected to its first client on a
    /// thread that then reads `len` bytes; says when it is connected, and
    /// when the last byte arrived.
    fn reading_server(len: usize) -> (String, mpsc::Receiver<()>, thread::JoinHandle<Instant>) {
        let name = name();
        let mut d = Driven::new(ServerOptions::new().create(&name).unwrap());
        let (tx, rx) = mpsc::channel();
        let t = thread::spawn(move || {
            d.connect();
            tx.send(()).unwrap();
            d.receive(len)
        });
        (name, rx, t)
    }

    fn mbps(len: usize, secs: f64) -> f64 {
        len as f64 / secs / 1e6
    }

    /// Marks a traced section (see `mark.rs`), when tracing.
    fn begin(trace: Option<(&str, &str)>, len: usize) {
        if let Some((peer, work)) = trace {
            crate::mark::mark(peer, work, len >> 20);
        }
    }

    fn end(trace: Option<(&str, &str)>) {
        if trace.is_some() {
            crate::mark::mark_end();
        }
    }

    /// One client of this crate writes `len` bytes to one server of it.
    fn direct(len: usize, data: &[u8], trace: Option<(&str, &str)>) -> f64 {
        let (name, connected, server) = reading_server(len);
        let mut client = Driven::new(ClientOptions::new().open(&name).unwrap());
        connected.recv_timeout(PATIENCE).unwrap();
        begin(trace, len);
        let t0 = Instant::now();
        client.send(&data[..len]);
        let t1 = server.join().unwrap();
        end(trace);
        mbps(len, (t1 - t0).as_secs_f64())
    }

    struct Relay(Child);

    impl Drop for Relay {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// `len` bytes into the relay's stdin, out of its pipe.
    fn relay_stdin(relay: &str, len: usize, data: &[u8], trace: Option<(&str, &str)>) -> f64 {
        let (name, connected, server) = reading_server(len);
        let mut child = Relay(
            Command::new(relay)
                .args(["connect", &name])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("starting the relay"),
        );
        connected.recv_timeout(PATIENCE).unwrap();
        let mut stdin = child.0.stdin.take().unwrap();
        begin(trace, len);
        let t0 = Instant::now();
        for chunk in data[..len].chunks(CHUNK) {
            stdin.write_all(chunk).unwrap();
        }
        let t1 = server.join().unwrap();
        end(trace);
        drop(stdin);
        mbps(len, (t1 - t0).as_secs_f64())
    }

    /// `len` bytes into a pipe the relay serves, out of its TCP connection.
    fn relay_tcp(relay: &str, len: usize, data: &[u8], trace: Option<(&str, &str)>) -> f64 {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap().to_string();
        let reader = thread::spawn(move || {
            let (mut s, _) = tcp.accept().unwrap();
            let mut at = 0;
            let mut buf = vec![0u8; CHUNK];
            while at < len {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "end of stream after {at} of {len} bytes");
                check(at, &buf[..n]);
                at += n;
            }
            Instant::now()
        });
        let name = name();
        let _child = Relay(
            Command::new(relay)
                .args(["listen", &name, "--tcp", &addr])
                .stdin(Stdio::null())
                .spawn()
                .expect("starting the relay"),
        );
        let deadline = Instant::now() + PATIENCE;
        let pipe = loop {
            match ClientOptions::new()
                .busy_timeout(Some(PATIENCE))
                .open(&name)
            {
                Ok(p) => break p,
                Err(e) if e.kind() == io::ErrorKind::NotFound && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("opening the relay's pipe: {e}"),
            }
        };
        let mut client = Driven::new(pipe);
        begin(trace, len);
        let t0 = Instant::now();
        client.send(&data[..len]);
        let t1 = reader.join().unwrap();
        end(trace);
        mbps(len, (t1 - t0).as_secs_f64())
    }

    fn median_min_max(v: &mut [f64]) -> (f64, f64, f64) {
        v.sort_by(|a, b| a.total_cmp(b));
        (v[v.len() / 2], v[0], v[v.len() - 1])
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut relay = None;
        let mut rounds = 5;
        let mut len = 64 << 20;
        let mut trace: Option<String> = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--relay" => relay = it.next().cloned(),
                "--rounds" => rounds = it.next().and_then(|n| n.parse().ok()).unwrap_or(5),
                "--quick" => len = 8 << 20,
                "--trace" => trace = it.next().cloned(),
                _ => {}
            }
        }
        let Some(relay) = relay else {
            eprintln!("relay benchmark: --relay PATH names the pipe-relay executable");
            std::process::exit(2);
        };
        let data = data(len);
        match trace.as_deref() {
            Some("relay") => {
                let s = relay_stdin(&relay, len, &data, Some(("relay", "relay-stdin")));
                let t = relay_tcp(&relay, len, &data, Some(("relay", "relay-tcp")));
                println!("relay (traced): relay-stdin {s:.1} MB/s, relay-tcp {t:.1} MB/s");
                return;
            }
            Some("direct") => {
                // The one baseline of both workloads, traced under each name.
                let a = direct(len, &data, Some(("direct", "relay-stdin")));
                let b = direct(len, &data, Some(("direct", "relay-tcp")));
                println!("direct (traced): {a:.1} and {b:.1} MB/s");
                return;
            }
            Some(other) => {
                eprintln!("relay benchmark: --trace takes relay or direct, not `{other}`");
                std::process::exit(2);
            }
            None => {}
        }
        let mut d = Vec::new();
        let mut s = Vec::new();
        let mut t = Vec::new();
        for round in 0..rounds {
            // Rotate the order, so that no figure always runs first.
            for k in 0..3 {
                match (round + k) % 3 {
                    0 => d.push(direct(len, &data, None)),
                    1 => s.push(relay_stdin(&relay, len, &data, None)),
                    _ => t.push(relay_tcp(&relay, len, &data, None)),
                }
            }
        }
        let (dm, dl, dh) = median_min_max(&mut d);
        let (sm, sl, sh) = median_min_max(&mut s);
        let (tm, tl, th) = median_min_max(&mut t);
        println!(
            "\nRelay: {} MiB one way in 64 KiB writes, MB/s, median (min-max) of {rounds} rounds\n",
            len >> 20
        );
        println!("| workload | relay | direct | relay vs direct |");
        println!("|---|---:|---:|---:|");
        println!(
            "| relay-stdin: stdin -> relay -> pipe | {sm:.1} ({sl:.1}-{sh:.1}) | {dm:.1} ({dl:.1}-{dh:.1}) | {:.2}x |",
            sm / dm
        );
        println!(
            "| relay-tcp: pipe -> relay -> TCP | {tm:.1} ({tl:.1}-{th:.1}) | {dm:.1} ({dl:.1}-{dh:.1}) | {:.2}x |",
            tm / dm
        );
        println!();
        for (work, relay) in [("relay-stdin", sm), ("relay-tcp", tm)] {
            println!("figure relay {work} time {relay:.1} MB/s");
            println!("figure direct {work} time {dm:.1} MB/s");
        }
    }
}
