//! Accept rate: clients connecting as fast as they can, against a
//! `PipeListener` with 4 pending instances (`ours`; also 1 and 16 for
//! information), and against the usual loop with one instance at a time
//! (create, connect, answer, hand off, repeat) on mio 1.x (`mio1`), on
//! mio-named-pipes 0.1.7 (`old`), and with a plain thread doing blocking
//! `ConnectNamedPipe` and `WriteFile` (`blocking`).
//!
//! Each client thread opens the pipe (waiting with `WaitNamedPipeW` while
//! every instance is busy, retrying at once on `NotFound` — the gap between
//! two instances of the mio 1.x loop), reads the server's one-byte greeting
//! and closes, as fast as it can. The default run measures 2 client threads,
//! then 8 (`--clients N` for one load, `--quick`, `--rounds N`), in rounds
//! that run every server once in a rotating order; `--trace PEER` runs one
//! marked round of one server for the request count of `cargo xtask bench`.
//! Timings under Wine mean something only as ratios within one table of one run.

#[cfg(windows)]
#[path = "../mark.rs"]
mod mark;

#[cfg(windows)]
#[path = "../clients.rs"]
mod clients;

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
    use std::fs::File;
    use std::io::{self, Write};
    use std::os::windows::ffi::OsStrExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    /// Client threads by default (`--clients N` to change).
    const CLIENT_THREADS: usize = 2;
    /// The second default load: more clients than instances.
    const CROWD: usize = 8;

    fn name(tag: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        format!(
            r"\\.\pipe\mnp-accept-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Accepts per second with a `PipeListener` keeping `pending` instances.
    fn ours(pending: usize, threads: usize, conns: usize) -> f64 {
        use mio06::{Events, Poll, PollOpt, Ready, Token};
        let name = name("ours");
        let listener = mio_named_pipes::ServerOptions::new()
            .listen(&name, pending)
            .unwrap();
        let poll = Poll::new().unwrap();
        poll.register(&listener, Token(0), Ready::readable(), PollOpt::edge())
            .unwrap();
        let mut events = Events::with_capacity(256);
        let t = Instant::now();
        let workers = crate::clients::clients(&name, threads, conns / threads);
        let mut served = 0;
        while served < conns {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            while let Ok(pipe) = listener.accept() {
                // Hand off: answer and let go; the reply is still delivered.
                let mut p = &pipe;
                p.write_all(b"!").unwrap();
                served += 1;
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        conns as f64 / t.elapsed().as_secs_f64()
    }

    /// Accepts per second with the one-instance loop on mio-named-pipes 0.1.7.
    fn old_loop(threads: usize, conns: usize) -> f64 {
        use mio06::{Events, Poll, PollOpt, Ready, Token};
        use old::NamedPipe;
        let name = name("old");
        let poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(64);
        let mut next = NamedPipe::new(&name).unwrap();
        let t = Instant::now();
        let workers = crate::clients::clients(&name, threads, conns / threads);
        let mut handed_off = Vec::new();
        for i in 0..conns {
            let pipe = next;
            poll.register(&pipe, Token(i), Ready::all(), PollOpt::edge())
                .unwrap();
            loop {
                match pipe.connect() {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        poll.poll(&mut events, Some(Duration::from_millis(100)))
                            .unwrap();
                    }
                    Err(e) => panic!("connect: {e}"),
                }
            }
            next = NamedPipe::new(&name).unwrap();
            loop {
                match (&pipe).write(b"!") {
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        poll.poll(&mut events, Some(Duration::from_millis(100)))
                            .unwrap();
                    }
                    Err(e) => panic!("write: {e}"),
                }
            }
            handed_off.push(pipe);
            if handed_off.len() > 64 {
                poll.poll(&mut events, Some(Duration::from_millis(0)))
                    .unwrap();
                handed_off.drain(..32);
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        conns as f64 / t.elapsed().as_secs_f64()
    }

    /// A blocking server instance (byte mode, 64 KiB buffers).
    fn blocking_instance(name: &str) -> File {
        use std::os::windows::io::FromRawHandle;
        use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
        use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
        use windows_sys::Win32::System::Pipes::{
            CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE,
            PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
        };
        let wide: Vec<u16> = std::ffi::OsStr::new(name)
            .encode_wide()
            .chain(Some(0))
            .collect();
        // SAFETY: `wide` is NUL-terminated and outlives the call.
        let h = unsafe {
            CreateNamedPipeW(
                wide.as_ptr(),
                PIPE_ACCESS_DUPLEX,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                PIPE_UNLIMITED_INSTANCES,
                65536,
                65536,
                0,
                std::ptr::null(),
            )
        };
        assert!(
            h != INVALID_HANDLE_VALUE,
            "CreateNamedPipeW: {}",
            io::Error::last_os_error()
        );
        // SAFETY: a fresh handle owned by nothing else.
        unsafe { File::from_raw_handle(h) }
    }

    /// Accepts per second with one plain thread: blocking `ConnectNamedPipe`,
    /// the next instance, a blocking `WriteFile`, hand off.
    fn blocking_loop(threads: usize, conns: usize) -> f64 {
        use std::os::windows::io::AsRawHandle;
        use windows_sys::Win32::System::Pipes::ConnectNamedPipe;
        const ERROR_PIPE_CONNECTED: i32 = 535;
        let name = name("blocking");
        let mut next = blocking_instance(&name);
        let t = Instant::now();
        let workers = crate::clients::clients(&name, threads, conns / threads);
        let mut handed_off = Vec::new();
        for _ in 0..conns {
            let mut pipe = next;
            // SAFETY: a live, synchronous pipe handle; no OVERLAPPED.
            if unsafe { ConnectNamedPipe(pipe.as_raw_handle(), std::ptr::null_mut()) } == 0 {
                let e = io::Error::last_os_error();
                assert_eq!(e.raw_os_error(), Some(ERROR_PIPE_CONNECTED), "connect: {e}");
            }
            next = blocking_instance(&name);
            pipe.write_all(b"!").unwrap();
            handed_off.push(pipe);
            if handed_off.len() > 64 {
                handed_off.drain(..32);
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        conns as f64 / t.elapsed().as_secs_f64()
    }

    /// Accepts per second with the one-instance loop on mio 1.x.
    fn mio1_loop(threads: usize, conns: usize) -> f64 {
        use mio1::windows::NamedPipe;
        use mio1::{Events, Interest, Poll, Token};
        let name = name("mio1");
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(64);
        let mut next = NamedPipe::new(&name).unwrap();
        let t = Instant::now();
        let workers = crate::clients::clients(&name, threads, conns / threads);
        let mut handed_off = Vec::new();
        for i in 0..conns {
            let mut pipe = next;
            poll.registry()
                .register(&mut pipe, Token(i), Interest::READABLE | Interest::WRITABLE)
                .unwrap();
            loop {
                match pipe.connect() {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => poll
                        .poll(&mut events, Some(Duration::from_millis(100)))
                        .unwrap(),
                    Err(e) => panic!("connect: {e}"),
                }
            }
            // The next instance, then hand this one off.
            next = NamedPipe::new(&name).unwrap();
            loop {
                match (&pipe).write(b"!") {
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => poll
                        .poll(&mut events, Some(Duration::from_millis(100)))
                        .unwrap(),
                    Err(e) => panic!("write: {e}"),
                }
            }
            handed_off.push(pipe);
            if handed_off.len() > 64 {
                // Let the replies complete, then let go of the old ones.
                poll.poll(&mut events, Some(Duration::from_millis(0)))
                    .unwrap();
                handed_off.drain(..32);
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        conns as f64 / t.elapsed().as_secs_f64()
    }

    /// A server under test.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Server {
        /// `PipeListener` with this many pending instances.
        Ours(usize),
        Mio1,
        Old,
        Blocking,
    }

    /// Every server, in the order of the table. The `figure` lines and the
    /// request traces cover the four peers (`ours` is 4 pending).
    const SERVERS: [Server; 6] = [
        Server::Mio1,
        Server::Old,
        Server::Blocking,
        Server::Ours(1),
        Server::Ours(4),
        Server::Ours(16),
    ];

    impl Server {
        /// The peer's tag in `figure` lines, for the four peers.
        fn peer(self) -> Option<&'static str> {
            match self {
                Server::Ours(4) => Some("ours"),
                Server::Ours(_) => None,
                Server::Mio1 => Some("mio1"),
                Server::Old => Some("old"),
                Server::Blocking => Some("blocking"),
            }
        }

        fn label(self) -> String {
            match self {
                Server::Ours(n) => format!("PipeListener, {n} pending"),
                Server::Mio1 => "mio 1.x loop (one instance)".into(),
                Server::Old => "0.1.7 loop (one instance)".into(),
                Server::Blocking => "blocking thread (one instance)".into(),
            }
        }

        fn run(self, threads: usize, conns: usize) -> f64 {
            match self {
                Server::Ours(n) => ours(n, threads, conns),
                Server::Mio1 => mio1_loop(threads, conns),
                Server::Old => old_loop(threads, conns),
                Server::Blocking => blocking_loop(threads, conns),
            }
        }
    }

    fn median(v: &[f64]) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        }
    }

    fn arg<T: std::str::FromStr>(args: &[String], names: &[&str]) -> Option<T> {
        args.iter()
            .position(|a| names.contains(&a.as_str()))
            .and_then(|i| args.get(i + 1))
            .and_then(|r| r.parse().ok())
    }

    /// The connections of one run with `threads` client threads.
    fn conns(quick: bool, threads: usize) -> usize {
        (if quick { 200 } else { 1000 }) / threads * threads
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let reps = arg(&args, &["--rounds", "--reps"])
            .filter(|&n: &usize| n > 0)
            .unwrap_or(if quick { 1 } else { 5 });
        let chosen: Option<usize> = arg(&args, &["--clients"]).filter(|&n| n > 0);
        // By default: the brief's one-or-two client threads, then a crowd.
        let loads = match chosen {
            Some(n) => vec![n],
            None => vec![CLIENT_THREADS, CROWD],
        };
        if let Some(i) = args.iter().position(|a| a == "--trace") {
            let tag = args.get(i + 1).map_or("", String::as_str);
            let Some(server) = SERVERS.into_iter().find(|s| s.peer() == Some(tag)) else {
                eprintln!("accept: --trace takes one of ours, mio1, old, blocking");
                std::process::exit(2);
            };
            for threads in loads {
                let conns = conns(quick, threads);
                let work = format!("accept{threads}");
                crate::mark::mark(tag, &work, conns);
                let r = server.run(threads, conns);
                crate::mark::mark_end();
                println!("{tag} {work}: {r:.0} conn/s (traced)");
            }
            return;
        }
        println!(
            "Timings under Wine mean something only as ratios between rows of one table of this same run:"
        );
        println!(
            "every pipe call is a round trip to the single-threaded wineserver, so absolute rates say little."
        );
        let mut results = Vec::new();
        for threads in loads {
            results.push((threads, table(threads, reps, quick)));
        }
        println!();
        println!(
            "| server |{}",
            results
                .iter()
                .map(|(t, _)| format!(" {t} client threads, conn/s | vs mio 1.x |"))
                .collect::<String>()
        );
        println!("|---|{}", "---:|---:|".repeat(results.len()));
        for (k, server) in SERVERS.into_iter().enumerate() {
            print!("| {} |", server.label());
            for (_, rates) in &results {
                let v = &rates[k];
                let base = median(&rates[0]);
                print!(
                    " {:.0} ({:.0}-{:.0}) | {:.2}x |",
                    median(v),
                    v.iter().copied().fold(f64::INFINITY, f64::min),
                    v.iter().copied().fold(0.0, f64::max),
                    median(v) / base
                );
            }
            println!();
        }
        println!();
        for (threads, rates) in &results {
            let four = median(&rates[4]) / median(&rates[0]);
            println!(
                "Target ({threads} clients): PipeListener with 4 pending >= 2x the mio 1.x loop: {four:.2}x -> {}",
                if four >= 2.0 { "MET" } else { "NOT MET" }
            );
        }
        println!();
        println!("Figures (for scripts):");
        for (threads, rates) in &results {
            for (k, server) in SERVERS.into_iter().enumerate() {
                if let Some(tag) = server.peer() {
                    println!(
                        "figure {tag} accept{threads} time {:.1} conn/s",
                        median(&rates[k])
                    );
                }
            }
        }
    }

    /// Rounds with `threads` client threads; the rates of each server, in
    /// the order of [`SERVERS`].
    fn table(threads: usize, reps: usize, quick: bool) -> Vec<Vec<f64>> {
        let conns = conns(quick, threads);
        println!(
            "\naccept rate: {conns} connections from {threads} client threads, {reps} round(s),\n\
             each running every server once (order rotating); median (min-max).\n"
        );
        let mut rates = vec![Vec::new(); SERVERS.len()];
        for round in 0..reps {
            print!("  round {}/{reps}:", round + 1);
            for k in 0..SERVERS.len() {
                let i = (k + round) % SERVERS.len();
                let _ = io::stdout().flush();
                let r = SERVERS[i].run(threads, conns);
                print!(
                    "  {}: {r:.0}",
                    SERVERS[i]
                        .peer()
                        .map_or_else(|| SERVERS[i].label(), str::to_string)
                );
                rates[i].push(r);
            }
            println!();
        }
        println!();
        println!("| server | conn/s | vs mio 1.x loop |");
        println!("|---|---:|---:|");
        let base = median(&rates[0]);
        for (server, v) in SERVERS.into_iter().zip(&rates) {
            println!(
                "| {} | {:.0} ({:.0}-{:.0}) | {:.2}x |",
                server.label(),
                median(v),
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(0.0, f64::max),
                median(v) / base
            );
        }
        rates
    }
}
