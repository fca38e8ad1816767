//! Accept rate: clients connecting as fast as they can, against a
//! `PipeListener` with 1, 4 and 16 pending instances, and against the usual
//! loop on mio 1.x (one `mio::windows::NamedPipe` instance: create,
//! connect, hand off, repeat).
//!
//! Each client thread opens the pipe (waiting with `WaitNamedPipeW` while
//! every instance is busy, retrying at once on `NotFound` — the gap between
//! two instances of the mio 1.x loop), reads the server's one-byte greeting
//! and closes, as fast as it can. The default run measures 2 client threads,
//! then 8 (`--clients N` for one load, `--quick`, `--reps N`). Timings under
//! Wine mean something only as ratios within one table of one run.

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
    use std::fs::{File, OpenOptions};
    use std::io::{self, Read, Write};
    use std::os::windows::ffi::OsStrExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    use windows_sys::Win32::System::Pipes::WaitNamedPipeW;

    const ERROR_PIPE_BUSY: i32 = 231;
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

    /// Opens `name`, waiting while every instance is busy.
    fn open(name: &str) -> File {
        let wide: Vec<u16> = std::ffi::OsStr::new(name)
            .encode_wide()
            .chain(Some(0))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match OpenOptions::new().read(true).write(true).open(name) {
                Ok(f) => return f,
                Err(e)
                    if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && Instant::now() < deadline =>
                {
                    // SAFETY: `wide` is NUL-terminated and outlives the call.
                    unsafe { WaitNamedPipeW(wide.as_ptr(), 1000) };
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && Instant::now() < deadline => {
                    // The mio 1.x loop has no instance between two.
                    thread::yield_now();
                }
                Err(e) => panic!("client open: {e}"),
            }
        }
    }

    /// `per_thread` connections from each client thread; returns when all are done.
    fn clients(name: &str, threads: usize, per_thread: usize) -> Vec<thread::JoinHandle<()>> {
        (0..threads)
            .map(|_| {
                let name = name.to_owned();
                thread::spawn(move || {
                    for _ in 0..per_thread {
                        let mut f = open(&name);
                        let mut b = [0u8; 1];
                        f.read_exact(&mut b).unwrap();
                        assert_eq!(&b, b"!");
                    }
                })
            })
            .collect()
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
        let workers = clients(&name, threads, conns / threads);
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

    /// Accepts per second with the one-instance loop on mio 1.x.
    fn mio1_loop(threads: usize, conns: usize) -> f64 {
        use mio1::windows::NamedPipe;
        use mio1::{Events, Interest, Poll, Token};
        let name = name("mio1");
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(64);
        let mut next = NamedPipe::new(&name).unwrap();
        let t = Instant::now();
        let workers = clients(&name, threads, conns / threads);
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

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let reps = args
            .iter()
            .position(|a| a == "--reps")
            .and_then(|i| args.get(i + 1))
            .and_then(|r| r.parse().ok())
            .unwrap_or(if quick { 1 } else { 3 });
        let chosen: Option<usize> = args
            .iter()
            .position(|a| a == "--clients")
            .and_then(|i| args.get(i + 1))
            .and_then(|r| r.parse().ok())
            .filter(|&n| n > 0);
        // By default: the brief's one-or-two client threads, then a crowd.
        let loads = match chosen {
            Some(n) => vec![n],
            None => vec![CLIENT_THREADS, CROWD],
        };
        println!(
            "Timings under Wine mean something only as ratios between rows of one table of this same run:"
        );
        println!(
            "every pipe call is a round trip to the single-threaded wineserver, so absolute rates say little."
        );
        for threads in loads {
            table(threads, reps, quick);
        }
    }

    fn table(threads: usize, reps: usize, quick: bool) {
        let conns = (if quick { 200 } else { 1000 }) / threads * threads;
        println!(
            "\naccept rate: {conns} connections from {threads} client threads, median of {reps} run(s).\n"
        );
        let base = median((0..reps).map(|_| mio1_loop(threads, conns)).collect());
        let mut rows = vec![("mio 1.x loop (one instance)".to_string(), base)];
        for pending in [1, 4, 16] {
            let r = median((0..reps).map(|_| ours(pending, threads, conns)).collect());
            rows.push((format!("PipeListener, {pending} pending"), r));
        }
        println!("| server | accepts/s | vs mio 1.x loop |");
        println!("|---|---:|---:|");
        for (name, r) in &rows {
            println!("| {name} | {r:.0} | {:.2}x |", r / base);
        }
        let four = rows[2].1 / base;
        println!(
            "\nTarget ({threads} clients): PipeListener with 4 pending >= 2x the mio 1.x loop: {four:.2}x -> {}",
            if four >= 2.0 { "met" } else { "NOT MET" }
        );
    }
}
