//! The async front against tokio's own named pipes and interprocess's, on
//! one tokio multi-thread runtime (2 workers), in one process and one run:
//!
//! - `ours-tokio`: async-named-pipes (this tree), the core's engine driven
//!   by its own completion port thread;
//! - `tokio`: `tokio::net::windows::named_pipe`, on tokio's mio 1.x driver;
//! - `interprocess`: interprocess 2.x's `os::windows::named_pipe::tokio`
//!   byte streams (`DuplexPipeStream<Bytes>`, wrappers of tokio's pipes
//!   whose `flush` runs `FlushFileBuffers` on tokio's blocking pool), its
//!   servers a `PipeListener` (which creates the next instance after each
//!   connection, as tokio's documented loop does).
//!
//! Workloads as in `throughput`: bulk (64 MiB one way in 64 KiB writes,
//! MB/s), pingpong (2,000 round trips of 100 bytes, µs per round trip),
//! pingpong-ready (the same round trips written the readiness way of
//! tokio's `test_named_pipe_multi_client_ready`: `writable()` then
//! `try_write`, `readable()` then `try_read`, on `WouldBlock` wait again;
//! `ours-tokio` and `tokio` only: interprocess has no readiness API),
//! many (256 pipes at once, 1 MiB through each, aggregate MB/s), and
//! accept2/accept8 (1,000 connections from 2 and 8 client threads, which
//! open, read a one-byte greeting and close; `ours-tokio` is a
//! `PipeListener` with 4 pending instances, `tokio` the server loop tokio's
//! documentation gives: connect, create the next instance, hand off,
//! `interprocess` its `PipeListener::accept`). Every byte received is
//! checked; a stream's writer flushes at its end. Each figure is the median,
//! with the spread, of `--rounds N` rounds (default 5) running the peers in
//! an order that rotates from round to round;
//! `--quick` shrinks everything; `--trace PEER` runs each workload once for
//! one peer, marked for the request count of `cargo xtask bench` (set-up
//! included, as in `throughput`). Under Wine only the ratio within one run
//! means anything.

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
    use std::future::Future;
    use std::io;
    use std::time::{Duration, Instant};

    use interprocess::os::windows::named_pipe::{
        pipe_mode::Bytes, tokio as ip, PipeListenerOptions,
    };
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::windows::named_pipe as tk;

    const MIB: usize = 1 << 20;
    const CHUNK: usize = 64 * 1024;

    #[derive(Clone, Copy)]
    struct Sizes {
        bulk: usize,
        trips: usize,
        pipes: usize,
        per_pipe: usize,
        conns: usize,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Peer {
        Async,
        Tokio,
        Interprocess,
    }

    /// The peers, in the order of the table's columns.
    const PEERS: [Peer; 3] = [Peer::Async, Peer::Tokio, Peer::Interprocess];

    impl Peer {
        fn tag(self) -> &'static str {
            match self {
                Peer::Async => "ours-tokio",
                Peer::Tokio => "tokio",
                Peer::Interprocess => "interprocess",
            }
        }

        /// The peer's column in the table.
        fn index(self) -> usize {
            PEERS
                .iter()
                .position(|&p| p == self)
                .expect("a listed peer")
        }
    }

    /// An interprocess listener of byte streams at `name`.
    fn ip_listener(name: &str) -> io::Result<ip::PipeListener<Bytes, Bytes>> {
        PipeListenerOptions::new()
            .path(std::path::Path::new(name))
            .create_tokio_duplex::<Bytes>()
    }

    trait Duplex: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Duplex for T {}

    fn name() -> String {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        format!(
            r"\\.\pipe\async-fronts-bench-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A connected pair: (server, client).
    async fn pair(peer: Peer) -> io::Result<(Box<dyn DuplexBox>, Box<dyn DuplexBox>)> {
        let name = name();
        match peer {
            Peer::Async => {
                let server = async_named_pipes::ServerOptions::new()
                    .first_pipe_instance(true)
                    .create(&name)?;
                let client = async_named_pipes::ClientOptions::new().open(&name)?;
                server.connect().await?;
                Ok((Box::new(server), Box::new(client)))
            }
            Peer::Tokio => {
                let server = tk::ServerOptions::new()
                    .first_pipe_instance(true)
                    .create(&name)?;
                let client = tk::ClientOptions::new().open(&name)?;
                server.connect().await?;
                Ok((Box::new(server), Box::new(client)))
            }
            Peer::Interprocess => {
                // interprocess makes servers with a listener only; the
                // listener's spare instance goes with it.
                let listener = ip_listener(&name)?;
                let client = ip::DuplexPipeStream::<Bytes>::connect_by_path(name.as_str()).await?;
                let server = listener.accept().await?;
                Ok((Box::new(server), Box::new(client)))
            }
        }
    }

    /// A boxed end of either peer.
    trait DuplexBox: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: Duplex> DuplexBox for T {}

    /// The byte at offset `i` of every stream.
    fn byte(i: usize) -> u8 {
        (i.wrapping_mul(31) ^ (i >> 11)) as u8
    }

    async fn send(mut w: impl AsyncWrite + Unpin, total: usize) {
        let mut buf = vec![0u8; CHUNK];
        let mut at = 0;
        while at < total {
            let n = CHUNK.min(total - at);
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = byte(at + k);
            }
            w.write_all(&buf[..n]).await.expect("write");
            at += n;
        }
        w.flush().await.expect("flush");
    }

    async fn receive(mut r: impl AsyncRead + Unpin, total: usize) {
        let mut buf = vec![0u8; CHUNK];
        let mut at = 0;
        while at < total {
            let n = r.read(&mut buf).await.expect("read");
            assert!(n > 0, "end of file after {at} of {total} bytes");
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, byte(at + k), "byte {} differs", at + k);
            }
            at += n;
        }
    }

    /// Seconds to move `total` bytes one way.
    async fn bulk(peer: Peer, total: usize) -> f64 {
        let (server, client) = pair(peer).await.expect("pair");
        let t = Instant::now();
        let w = tokio::spawn(send(server, total));
        receive(client, total).await;
        w.await.expect("writer");
        t.elapsed().as_secs_f64()
    }

    /// Seconds for `trips` round trips of 100 bytes.
    async fn ping_pong(peer: Peer, trips: usize) -> f64 {
        let (mut server, mut client) = pair(peer).await.expect("pair");
        let echo = tokio::spawn(async move {
            let mut buf = [0u8; 100];
            for _ in 0..trips {
                server.read_exact(&mut buf).await.expect("server read");
                server.write_all(&buf).await.expect("server write");
            }
        });
        let t = Instant::now();
        let mut buf = [0u8; 100];
        for i in 0..trips {
            let msg = [i as u8; 100];
            client.write_all(&msg).await.expect("client write");
            client.read_exact(&mut buf).await.expect("client read");
            assert_eq!(buf, msg);
        }
        let secs = t.elapsed().as_secs_f64();
        echo.await.expect("echo");
        secs
    }

    /// One side of a ready-style round trip: the readiness API of either
    /// peer (the same names on both), used as tokio's test uses it.
    macro_rules! ready_io {
        ($write:ident, $read:ident, $t:ty) => {
            async fn $write(p: &$t, mut buf: &[u8]) {
                while !buf.is_empty() {
                    p.writable().await.expect("writable");
                    match p.try_write(buf) {
                        Ok(n) => buf = &buf[n..],
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => panic!("try_write: {e}"),
                    }
                }
            }

            async fn $read(p: &$t, buf: &mut [u8]) {
                let mut at = 0;
                while at < buf.len() {
                    p.readable().await.expect("readable");
                    match p.try_read(&mut buf[at..]) {
                        Ok(0) => panic!("end of file"),
                        Ok(n) => at += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => panic!("try_read: {e}"),
                    }
                }
            }
        };
    }

    ready_io!(ours_write, ours_read, async_named_pipes::NamedPipe);
    ready_io!(tk_server_write, tk_server_read, tk::NamedPipeServer);
    ready_io!(tk_client_write, tk_client_read, tk::NamedPipeClient);

    /// The round trips of `ping_pong`, both ends the readiness way.
    macro_rules! ready_trips {
        ($server:expr, $client:expr, $trips:expr, $sw:ident, $sr:ident, $cw:ident, $cr:ident) => {{
            let (server, client, trips) = ($server, $client, $trips);
            let echo = tokio::spawn(async move {
                let mut buf = [0u8; 100];
                for _ in 0..trips {
                    $sr(&server, &mut buf).await;
                    $sw(&server, &buf).await;
                }
            });
            let t = Instant::now();
            let mut buf = [0u8; 100];
            for i in 0..trips {
                let msg = [i as u8; 100];
                $cw(&client, &msg).await;
                $cr(&client, &mut buf).await;
                assert_eq!(buf, msg);
            }
            let secs = t.elapsed().as_secs_f64();
            echo.await.expect("echo");
            secs
        }};
    }

    /// Seconds for `trips` round trips of 100 bytes, the readiness way.
    async fn ping_pong_ready(peer: Peer, trips: usize) -> f64 {
        let name = name();
        match peer {
            Peer::Async => {
                let server = async_named_pipes::ServerOptions::new()
                    .first_pipe_instance(true)
                    .create(&name)
                    .expect("server");
                let client = async_named_pipes::ClientOptions::new()
                    .open(&name)
                    .expect("client");
                server.connect().await.expect("connect");
                ready_trips!(server, client, trips, ours_write, ours_read, ours_write, ours_read)
            }
            Peer::Tokio => {
                let server = tk::ServerOptions::new()
                    .first_pipe_instance(true)
                    .create(&name)
                    .expect("server");
                let client = tk::ClientOptions::new().open(&name).expect("client");
                server.connect().await.expect("connect");
                ready_trips!(
                    server,
                    client,
                    trips,
                    tk_server_write,
                    tk_server_read,
                    tk_client_write,
                    tk_client_read
                )
            }
            Peer::Interprocess => unreachable!("interprocess has no readiness API"),
        }
    }

    /// Seconds for `conns` connections from `threads` client threads.
    async fn accept(peer: Peer, threads: usize, conns: usize) -> f64 {
        let name = name();
        let per_thread = conns / threads;
        let n = per_thread * threads;
        let greet = |mut pipe: Box<dyn DuplexBox>| async move {
            pipe.write_all(b"!").await.expect("greeting");
            pipe.flush().await.expect("flush");
        };
        let t;
        let mut handoffs = Vec::with_capacity(n);
        match peer {
            Peer::Async => {
                let listener = async_named_pipes::ServerOptions::new()
                    .listen(&name, 4)
                    .expect("listener");
                let workers = crate::clients::clients(&name, threads, per_thread);
                t = Instant::now();
                for _ in 0..n {
                    let pipe = listener.accept().await.expect("accept");
                    handoffs.push(tokio::spawn(greet(Box::new(pipe))));
                }
                join(workers).await;
            }
            Peer::Tokio => {
                let mut server = tk::ServerOptions::new()
                    .first_pipe_instance(true)
                    .create(&name)
                    .expect("first instance");
                let workers = crate::clients::clients(&name, threads, per_thread);
                t = Instant::now();
                for _ in 0..n {
                    server.connect().await.expect("connect");
                    let connected = server;
                    server = tk::ServerOptions::new()
                        .create(&name)
                        .expect("next instance");
                    handoffs.push(tokio::spawn(greet(Box::new(connected))));
                }
                join(workers).await;
            }
            Peer::Interprocess => {
                let listener = ip_listener(&name).expect("listener");
                let workers = crate::clients::clients(&name, threads, per_thread);
                t = Instant::now();
                for _ in 0..n {
                    let pipe = listener.accept().await.expect("accept");
                    handoffs.push(tokio::spawn(greet(Box::new(pipe))));
                }
                join(workers).await;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        for h in handoffs {
            h.await.expect("greeting task");
        }
        secs
    }

    /// Waits for client threads without blocking a runtime thread.
    async fn join(workers: Vec<std::thread::JoinHandle<()>>) {
        tokio::task::spawn_blocking(move || {
            for w in workers {
                w.join().expect("client thread");
            }
        })
        .await
        .expect("joining the clients");
    }

    /// Seconds for `pipes` pipes at once to move `per_pipe` bytes each.
    async fn many(peer: Peer, pipes: usize, per_pipe: usize) -> f64 {
        let mut pairs = Vec::with_capacity(pipes);
        for _ in 0..pipes {
            pairs.push(pair(peer).await.expect("pair"));
        }
        let t = Instant::now();
        let mut tasks = Vec::with_capacity(2 * pipes);
        for (server, client) in pairs {
            tasks.push(tokio::spawn(send(server, per_pipe)));
            tasks.push(tokio::spawn(receive(client, per_pipe)));
        }
        for task in tasks {
            task.await.expect("pipe task");
        }
        t.elapsed().as_secs_f64()
    }

    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    struct Row {
        what: &'static str,
        unit: &'static str,
        /// Per peer (in the order of `PEERS`): the figures of every round.
        figures: [Vec<f64>; 3],
    }

    /// The peers with a readiness API (`pingpong-ready`).
    const READY_PEERS: [Peer; 2] = [Peer::Async, Peer::Tokio];

    fn run<F: Future<Output = f64>>(
        rt: &tokio::runtime::Runtime,
        f: impl Fn(Peer) -> F,
        rounds: usize,
        to_figure: impl Fn(f64) -> f64,
    ) -> [Vec<f64>; 3] {
        run_of(&PEERS, rt, f, rounds, to_figure)
    }

    /// `run` for some of the peers: the others' figures stay empty.
    fn run_of<F: Future<Output = f64>>(
        peers: &[Peer],
        rt: &tokio::runtime::Runtime,
        f: impl Fn(Peer) -> F,
        rounds: usize,
        to_figure: impl Fn(f64) -> f64,
    ) -> [Vec<f64>; 3] {
        let mut out = [Vec::new(), Vec::new(), Vec::new()];
        for r in 0..rounds {
            // Each peer goes first in turn.
            for k in 0..peers.len() {
                let p = peers[(r + k) % peers.len()];
                let secs = rt
                    .block_on(async { tokio::time::timeout(Duration::from_secs(600), f(p)).await });
                let secs = secs.unwrap_or_else(|_| panic!("{}: no result after 600 s", p.tag()));
                out[p.index()].push(to_figure(secs));
            }
        }
        out
    }

    pub fn main() {
        let mut rounds = None;
        let mut quick = false;
        let mut only: Option<Vec<String>> = None;
        let mut trace: Option<Peer> = None;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--rounds" | "--reps" => match args.next().and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) if n > 0 => rounds = Some(n),
                    _ => {
                        eprintln!("--rounds takes a whole number of rounds, at least 1");
                        std::process::exit(2);
                    }
                },
                "--only" => {
                    only = Some(
                        args.next()
                            .unwrap_or_default()
                            .split(',')
                            .map(str::to_string)
                            .collect(),
                    )
                }
                "--trace" => {
                    let arg = args.next();
                    trace = PEERS.into_iter().find(|p| Some(p.tag()) == arg.as_deref());
                    if trace.is_none() {
                        eprintln!(
                            "async_fronts: --trace takes ours-tokio, tokio or interprocess, not {arg:?}"
                        );
                        std::process::exit(2);
                    }
                }
                // Options of the other benchmark binaries, which `cargo xtask
                // bench` passes to every one.
                "--clients" | "--read-buf" => {
                    args.next();
                }
                "-h" | "--help" => {
                    println!(
                        "usage: async_fronts [--quick] [--rounds N] [--only bulk,pingpong,pingpong-ready,many,accept2,accept8] [--trace ours-tokio|tokio|interprocess]"
                    );
                    return;
                }
                other => {
                    eprintln!("async_fronts: unknown argument {other:?} (see --help)");
                    std::process::exit(2);
                }
            }
        }
        let s = if quick {
            Sizes {
                bulk: 4 * MIB,
                trips: 200,
                pipes: 16,
                per_pipe: MIB / 4,
                conns: 200,
            }
        } else {
            Sizes {
                bulk: 64 * MIB,
                trips: 2_000,
                pipes: 256,
                per_pipe: MIB,
                conns: 1_000,
            }
        };
        let rounds = rounds.unwrap_or(if quick { 1 } else { 5 });
        let wants = |w: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        if let Some(p) = trace {
            let on = |work: &str, units: usize, f: &dyn Fn() -> f64| {
                if wants(work) {
                    crate::mark::mark(p.tag(), work, units);
                    let secs = f();
                    crate::mark::mark_end();
                    println!("{} {work} (traced): {secs:.2} s", p.tag());
                }
            };
            on("bulk", s.bulk / MIB, &|| rt.block_on(bulk(p, s.bulk)));
            on("pingpong", s.trips, &|| rt.block_on(ping_pong(p, s.trips)));
            if READY_PEERS.contains(&p) {
                on("pingpong-ready", s.trips, &|| {
                    rt.block_on(ping_pong_ready(p, s.trips))
                });
            }
            on("many", s.pipes * s.per_pipe / MIB, &|| {
                rt.block_on(many(p, s.pipes, s.per_pipe))
            });
            on("accept2", s.conns, &|| rt.block_on(accept(p, 2, s.conns)));
            on("accept8", s.conns, &|| rt.block_on(accept(p, 8, s.conns)));
            return;
        }
        let mut rows = Vec::new();
        if wants("bulk") {
            let mb = s.bulk as f64 / 1e6;
            rows.push(Row {
                what: "bulk",
                unit: "MB/s",
                figures: run(&rt, |p| bulk(p, s.bulk), rounds, |t| mb / t),
            });
        }
        if wants("pingpong") {
            let trips = s.trips as f64;
            rows.push(Row {
                what: "pingpong",
                unit: "us",
                figures: run(&rt, |p| ping_pong(p, s.trips), rounds, |t| t * 1e6 / trips),
            });
        }
        if wants("pingpong-ready") {
            let trips = s.trips as f64;
            rows.push(Row {
                what: "pingpong-ready",
                unit: "us",
                figures: run_of(
                    &READY_PEERS,
                    &rt,
                    |p| ping_pong_ready(p, s.trips),
                    rounds,
                    |t| t * 1e6 / trips,
                ),
            });
        }
        if wants("many") {
            let mb = (s.pipes * s.per_pipe) as f64 / 1e6;
            rows.push(Row {
                what: "many",
                unit: "MB/s",
                figures: run(&rt, |p| many(p, s.pipes, s.per_pipe), rounds, |t| mb / t),
            });
        }
        for threads in [2, 8] {
            let what = if threads == 2 { "accept2" } else { "accept8" };
            if wants(what) {
                let conns = s.conns as f64;
                rows.push(Row {
                    what,
                    unit: "conn/s",
                    figures: run(&rt, |p| accept(p, threads, s.conns), rounds, |t| conns / t),
                });
            }
        }
        println!("\n## async fronts: async-named-pipes vs tokio's and interprocess's named pipes ({rounds} rounds, median (min-max))\n");
        println!("MB/s and conn/s: more is better; us (per round trip): less is better.\n");
        println!("| workload | unit | ours-tokio | tokio | interprocess | ours-tokio / tokio | ours-tokio / interprocess |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        let mut figures = Vec::new();
        for mut r in rows {
            let mut cells = String::new();
            let mut medians = [0.0; 3];
            for (k, p) in PEERS.into_iter().enumerate() {
                if r.figures[k].is_empty() {
                    cells.push_str(" - |");
                    medians[k] = f64::NAN;
                    continue;
                }
                let (lo, hi) = spread(&r.figures[k]);
                let m = median(&mut r.figures[k]);
                medians[k] = m;
                cells.push_str(&format!(" {m:.1} ({lo:.1}-{hi:.1}) |"));
                figures.push(format!(
                    "figure {} {} time {m:.1} {}",
                    p.tag(),
                    r.what,
                    r.unit
                ));
            }
            let [a, t, i] = medians;
            let ratio = |x: f64, y: f64| {
                if (x / y).is_nan() {
                    "-".to_string()
                } else {
                    format!("{:.2}", x / y)
                }
            };
            println!(
                "| {} | {} |{cells} {} | {} |",
                r.what,
                r.unit,
                ratio(a, t),
                ratio(a, i)
            );
        }
        println!();
        for f in figures {
            println!("{f}");
        }
    }

    fn spread(v: &[f64]) -> (f64, f64) {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }
}
