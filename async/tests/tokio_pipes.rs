//! The async front on tokio's runtimes (current-thread and multi-thread),
//! through tokio's `AsyncRead`/`AsyncWrite` and the crate's own futures.
#![cfg(all(windows, feature = "tokio"))]

mod util;

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_named_pipes::{ClientOptions, NamedPipe, PipeMode, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use util::{
    check_client_identity, check_impersonation, name, pair, thread_count, wine_limitation,
    wine_version, Rng, PATIENCE,
};

/// Awaits `f`, failing the test after [`PATIENCE`].
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(PATIENCE, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing after {PATIENCE:?}"),
    }
}

/// Writes `data` on `from` and checks that `to` reads exactly that.
async fn pass(from: &NamedPipe, to: &NamedPipe, data: &[u8]) {
    let mut w = from;
    w.write_all(data).await.unwrap();
    let mut got = vec![0u8; data.len()];
    let mut r = to;
    within("read", r.read_exact(&mut got)).await.unwrap();
    assert_eq!(got, data);
}

/// The first server instance of a new name.
fn first_instance(name: &str) -> NamedPipe {
    ServerOptions::new()
        .first_pipe_instance(true)
        .create(name)
        .unwrap()
}

/// Whether `f` is still pending after `d` (it is dropped then).
async fn still_pending<T>(d: Duration, f: impl Future<Output = T>) -> bool {
    timeout(d, f).await.is_err()
}

#[tokio::test(flavor = "current_thread")]
async fn round_trip_current_thread() {
    let (server, client) = pair(PipeMode::Byte);
    within("connect", server.connect()).await.unwrap();
    pass(&client, &server, b"ping").await;
    pass(&server, &client, b"pong!").await;
    // The client leaves: the server reads end of file.
    drop(client);
    let mut rest = Vec::new();
    within("end of file", (&server).read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_multi_thread_owned_types() {
    let (server, client) = pair(PipeMode::Byte);
    let server = tokio::spawn(async move {
        let mut server = server;
        server.connect().await.unwrap();
        let mut buf = vec![0u8; 100_000];
        server.read_exact(&mut buf).await.unwrap();
        server.write_all(&buf).await.unwrap();
        server.flush().await.unwrap();
        server
    });
    let data = Rng::new(1).bytes(100_000);
    let mut client = client;
    client.write_all(&data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    within("echo", client.read_exact(&mut back)).await.unwrap();
    assert!(back == data, "the echo differs");
    drop(within("server task", server).await.unwrap());
}

#[tokio::test(flavor = "current_thread")]
async fn server_waits_for_a_client_that_comes_later() {
    let name = name();
    let server = first_instance(&name);
    assert!(still_pending(Duration::from_millis(200), server.connect()).await);
    let client = ClientOptions::new().open(&name).unwrap();
    within("connect", server.connect()).await.unwrap();
    pass(&client, &server, b"late").await;
}

#[tokio::test(flavor = "current_thread")]
async fn reconnect_without_stale_data() {
    let name = name();
    let server = first_instance(&name);
    let first = ClientOptions::new().open(&name).unwrap();
    within("connect", server.connect()).await.unwrap();
    // Data each way that nobody reads.
    (&first).write_all(b"old client data").await.unwrap();
    (&first).flush().await.unwrap();
    (&server).write_all(b"old server data").await.unwrap();
    (&server).flush().await.unwrap();
    // Let the server read some of it ahead.
    let mut one = [0u8; 1];
    within("read ahead", (&server).read_exact(&mut one))
        .await
        .unwrap();
    assert_eq!(&one, b"o");

    server.disconnect().unwrap();
    drop(first);
    // A disconnected instance takes clients again once it listens: the
    // connect starts listening, and goes on after its future is dropped.
    assert!(still_pending(Duration::from_millis(50), server.connect()).await);
    let second = ClientOptions::new().open(&name).unwrap();
    within("reconnect", server.connect()).await.unwrap();
    (&second).write_all(b"new").await.unwrap();
    (&server).write_all(b"fresh").await.unwrap();
    let mut buf = [0u8; 3];
    within("server read", (&server).read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf, b"new");
    let mut buf = [0u8; 5];
    within("client read", (&second).read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf, b"fresh");
    // Nothing else waits on either side.
    let mut more = [0u8; 1];
    assert!(still_pending(Duration::from_millis(200), (&server).read(&mut more)).await);
    assert!(still_pending(Duration::from_millis(200), (&second).read(&mut more)).await);
}

#[tokio::test(flavor = "current_thread")]
async fn messages_arrive_whole_from_1_byte_to_200_kib() {
    let (server, client) = pair(PipeMode::Message);
    within("connect", server.connect()).await.unwrap();
    let sizes = [
        1usize,
        2,
        100,
        4095,
        4096,
        4097,
        65_535,
        65_536,
        65_537,
        150_000,
        200 * 1024,
    ];
    let mut rng = Rng::new(7);
    let messages: Vec<Vec<u8>> = sizes.iter().map(|&n| rng.bytes(n)).collect();
    let sender = async {
        for m in &messages {
            (&client).write_all(m).await.unwrap();
        }
        (&client).flush().await.unwrap();
    };
    let receiver = async {
        let mut got = Vec::new();
        for m in &messages {
            let n = server.recv_msg(&mut got).await.unwrap();
            assert_eq!(n, m.len());
            assert!(&got == m, "message of {} bytes differs", m.len());
        }
    };
    within("messages", async { tokio::join!(sender, receiver) }).await;
    // And back, in turns.
    let mut got = Vec::new();
    for m in &messages {
        (&server).write_all(m).await.unwrap();
        let n = within("reply", client.recv_msg(&mut got)).await.unwrap();
        assert_eq!(n, m.len());
        assert!(&got == m, "reply of {} bytes differs", m.len());
    }
}

/// Writes `data` in random chunks, flushing now and then.
async fn send_chunks(pipe: &NamedPipe, data: &[u8], seed: u64) {
    let mut rng = Rng::new(seed);
    let mut at = 0;
    while at < data.len() {
        let n = rng.range(1, 70_000).min(data.len() - at);
        let mut w = pipe;
        w.write_all(&data[at..at + n]).await.unwrap();
        at += n;
        if rng.range(0, 7) == 0 {
            w.flush().await.unwrap();
        }
    }
    let mut w = pipe;
    w.flush().await.unwrap();
}

/// Reads `len` bytes in random chunk sizes.
async fn receive_chunks(pipe: &NamedPipe, len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut got = Vec::with_capacity(len);
    let mut buf = vec![0u8; 80_000];
    while got.len() < len {
        let want = rng.range(1, buf.len()).min(len - got.len());
        let mut r = pipe;
        let n = r.read(&mut buf[..want]).await.unwrap();
        assert!(n > 0, "end of file after {} of {len} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_chunks_both_ways_at_once() {
    let (server, client) = pair(PipeMode::Byte);
    within("connect", server.connect()).await.unwrap();
    let (server, client) = (Arc::new(server), Arc::new(client));
    let a = Rng::new(11).bytes(3 << 20);
    let b = Rng::new(12).bytes(2 << 20);
    let tasks = [
        {
            let (p, d) = (Arc::clone(&server), a.clone());
            tokio::spawn(async move {
                send_chunks(&p, &d, 1).await;
                Vec::new()
            })
        },
        {
            let (p, d) = (Arc::clone(&client), b.clone());
            tokio::spawn(async move {
                send_chunks(&p, &d, 2).await;
                Vec::new()
            })
        },
        {
            let (p, n) = (Arc::clone(&client), a.len());
            tokio::spawn(async move { receive_chunks(&p, n, 3).await })
        },
        {
            let (p, n) = (Arc::clone(&server), b.len());
            tokio::spawn(async move { receive_chunks(&p, n, 4).await })
        },
    ];
    let mut results = Vec::new();
    for t in tasks {
        results.push(within("transfer", t).await.unwrap());
    }
    assert!(results[2] == a, "server to client data differs");
    assert!(results[3] == b, "client to server data differs");
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_pipes_with_io_pending() {
    for round in 0..20u64 {
        let (server, client) = pair(PipeMode::Byte);
        within("connect", server.connect()).await.unwrap();
        // A read pending in the kernel on both ends, and a write queue
        // full behind a write the peer does not read (a write takes the
        // whole buffer when nothing is queued: the second one fills the
        // queue, the third waits).
        let mut buf = [0u8; 16];
        assert!(still_pending(Duration::from_millis(5), (&server).read(&mut buf)).await);
        assert!(still_pending(Duration::from_millis(5), (&client).read(&mut buf)).await);
        let big = Rng::new(round).bytes(4 << 20);
        let mut sent = 0;
        for _ in 0..64 {
            let rest = &big[sent % big.len()..];
            match timeout(Duration::from_millis(20), (&server).write(rest)).await {
                Ok(n) => sent += n.unwrap(),
                Err(_) => break,
            }
        }
        assert!(sent >= big.len(), "{sent} bytes accepted");
        server.set_linger(Duration::from_millis(50));
        if round % 2 == 0 {
            drop(server);
            drop(client);
        } else {
            drop(client);
            drop(server);
        }
    }
    // The driver still serves new pipes.
    let (server, client) = pair(PipeMode::Byte);
    within("connect", server.connect()).await.unwrap();
    pass(&client, &server, b"still fine").await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_read_dropped_midway_loses_nothing() {
    let (server, client) = pair(PipeMode::Byte);
    within("connect", server.connect()).await.unwrap();
    let mut buf = [0u8; 64];
    // Polled, parked, then dropped before any data came.
    assert!(still_pending(Duration::from_millis(100), (&server).read(&mut buf)).await);
    (&client).write_all(b"after the drop").await.unwrap();
    // Some data arrives while no read future exists at all.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut got = [0u8; 14];
    within("read", (&server).read_exact(&mut got))
        .await
        .unwrap();
    assert_eq!(&got, b"after the drop");
    // A recv_msg dropped midway too.
    let mut msg = Vec::new();
    assert!(still_pending(Duration::from_millis(50), server.recv_msg(&mut msg)).await);
    (&client).write_all(b"next").await.unwrap();
    let n = within("recv", server.recv_msg(&mut msg)).await.unwrap();
    assert_eq!(&msg[..n], b"next");
}

#[tokio::test(flavor = "current_thread")]
async fn flush_then_shutdown() {
    let (server, client) = pair(PipeMode::Byte);
    within("connect", server.connect()).await.unwrap();
    let data = Rng::new(5).bytes(300_000);
    // More than the write queue and the pipe's buffer: the flush waits for
    // the reader to take bytes, then resolves once every byte reached the
    // kernel.
    let reader = async {
        let mut got = vec![0u8; data.len()];
        tokio::time::sleep(Duration::from_millis(100)).await;
        (&client).read_exact(&mut got).await.unwrap();
        got
    };
    let writer = async {
        let mut w = &server;
        w.write_all(&data).await.unwrap();
        w.flush().await.unwrap();
        w.shutdown().await.unwrap();
    };
    let (got, ()) = within("transfer", async { tokio::join!(reader, writer) }).await;
    assert!(got == data);
    // After shutdown, writes are refused; the peer sees no end of file.
    let e = (&server).write(b"x").await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    let mut one = [0u8; 1];
    assert!(still_pending(Duration::from_millis(200), (&client).read(&mut one)).await);
    // Reading goes on both ways.
    pass(&client, &server, b"still reading").await;
    // Only the drop ends the connection.
    drop(server);
    let n = within("end of file", (&client).read(&mut one))
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_lasts_until_the_next_connect() {
    let name = name();
    let server = first_instance(&name);
    let first = ClientOptions::new().open(&name).unwrap();
    within("connect", server.connect()).await.unwrap();
    (&server).shutdown().await.unwrap();
    assert_eq!(
        (&server).write(b"x").await.unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
    server.disconnect().unwrap();
    drop(first);
    assert!(still_pending(Duration::from_millis(50), server.connect()).await);
    let second = ClientOptions::new().open(&name).unwrap();
    within("reconnect", server.connect()).await.unwrap();
    pass(&server, &second, b"again").await;
}

#[tokio::test(flavor = "current_thread")]
async fn flush_reports_a_reader_that_left() {
    let (server, client) = pair(PipeMode::Byte);
    within("connect", server.connect()).await.unwrap();
    drop(client);
    let data = vec![7u8; 200_000];
    let r = within("write and flush", async {
        (&server).write_all(&data).await?;
        (&server).flush().await
    })
    .await;
    let e = r.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::NotConnected
        ),
        "{e:?}"
    );
}

#[test]
fn many_pipes_on_the_multi_thread_runtime() {
    const PIPES: usize = 1000;
    const BYTES: usize = 32 * 1024;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..PIPES {
            tasks.push(tokio::spawn(async move {
                let (server, client) = pair(PipeMode::Byte);
                server.connect().await.unwrap();
                let up = Rng::new(i as u64).bytes(BYTES);
                let down = Rng::new(i as u64 + 1_000_000).bytes(BYTES);
                let (got_down, got_up) = tokio::join!(
                    async {
                        send_chunks(&client, &up, i as u64).await;
                        receive_chunks(&client, BYTES, 1).await
                    },
                    async {
                        let got = receive_chunks(&server, BYTES, 2).await;
                        send_chunks(&server, &down, 3).await;
                        got
                    }
                );
                assert!(got_up == up, "pipe {i}: client to server data differs");
                assert!(got_down == down, "pipe {i}: server to client data differs");
            }));
        }
        for t in tasks {
            within("pipe task", t).await.unwrap();
        }
    });
    println!(
        "{PIPES} pipes x {BYTES} B each way on 2 workers: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn two_thousand_open_pipe_ends_add_no_thread_per_pipe() {
    const PAIRS: usize = 1000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    // The driver and the runtime's threads exist before the count.
    let warm = pair(PipeMode::Byte);
    rt.block_on(async { within("connect", warm.0.connect()).await.unwrap() });
    let before = thread_count();
    let open = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..PAIRS {
            tasks.push(tokio::spawn(async move {
                let (server, client) = pair(PipeMode::Byte);
                server.connect().await.unwrap();
                // Each end has done I/O through the driver (and reads
                // ahead from now on).
                pass(&client, &server, &[i as u8]).await;
                pass(&server, &client, &[!(i as u8)]).await;
                (server, client)
            }));
        }
        let mut open = Vec::new();
        for t in tasks {
            open.push(within("pair", t).await.unwrap());
        }
        open
    });
    let during = thread_count();
    // No thread per pipe: 2,000 ends open at once, each reading ahead.
    // The slack is for other tests of this binary, which run meanwhile
    // with runtimes of their own.
    assert!(
        during < before + 64,
        "{} open pipe ends: {before} threads before, {during} with them",
        2 * PAIRS
    );
    drop(open);
    println!(
        "{} pipe ends open: {before} threads before, {during} with them",
        2 * PAIRS
    );
}

#[test]
fn runtime_shut_down_mid_transfer() {
    for round in 0..3 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let moving = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            for i in 0..20u64 {
                let moving = Arc::clone(&moving);
                tokio::spawn(async move {
                    let (server, client) = pair(PipeMode::Byte);
                    server.connect().await.unwrap();
                    let data = Rng::new(i).bytes(4 << 20);
                    moving.fetch_add(1, Ordering::SeqCst);
                    let _ = tokio::join!(
                        send_chunks(&server, &data, i),
                        receive_chunks(&client, data.len(), i)
                    );
                });
            }
            // Wait until every pipe is transferring.
            within("every pipe moving", async {
                while moving.load(Ordering::SeqCst) < 20 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
            tokio::time::sleep(Duration::from_millis(20 * round)).await;
        });
        let t = Instant::now();
        if round == 0 {
            drop(rt);
        } else {
            rt.shutdown_timeout(PATIENCE);
        }
        assert!(t.elapsed() < PATIENCE, "the runtime took too long to end");
    }
    // Completions of the dropped pipes went on being dequeued: a new
    // runtime's pipes work.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let (server, client) = pair(PipeMode::Byte);
        within("connect", server.connect()).await.unwrap();
        pass(&client, &server, b"new runtime").await;
    });
}

#[tokio::test(flavor = "current_thread")]
async fn open_waits_for_a_busy_pipe_without_blocking_the_thread() {
    let name = name();
    let (server, first) = util::busy(&name);
    within("connect", server.connect()).await.unwrap();
    // Every instance is busy: without a timeout the open fails at once.
    let e = NamedPipe::open(&ClientOptions::new(), &name)
        .await
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(231), "{e:?}");
    // With one, it waits — and this thread keeps running other tasks.
    let mut options = ClientOptions::new();
    options.busy_timeout(Some(Duration::from_secs(20)));
    let opening = NamedPipe::open(&options, &name);
    let free_later = async {
        let mut ticks = 0;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            ticks += 1;
        }
        server.disconnect().unwrap();
        drop(first);
        // Listening again lets the waiting client in.
        server.connect().await.unwrap();
        ticks
    };
    let (second, ticks) = within("open", async { tokio::join!(opening, free_later) }).await;
    assert_eq!(ticks, 5);
    let second = second.unwrap();
    pass(&second, &server, b"got in").await;
    // A timeout that passes ends in `TimedOut`.
    options.busy_timeout(Some(Duration::from_millis(200)));
    let e = within("timeout", NamedPipe::open(&options, &name))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn adopted_handles_and_peer_identity() {
    let (server, client) = pair(PipeMode::Byte);
    within("connect", server.connect()).await.unwrap();
    assert_eq!(server.client_process_id().unwrap(), std::process::id());
    assert_eq!(client.server_process_id().unwrap(), std::process::id());
    assert_eq!(
        server.info().unwrap().end,
        async_named_pipes::PipeEnd::Server
    );
    // A handle that is not a pipe fails on its first operation.
    let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let not_a_pipe = NamedPipe::from(std::os::windows::io::OwnedHandle::from(file));
    let mut buf = [0u8; 4];
    let e = (&not_a_pipe).read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
    // The same error again, not a hang.
    let e = (&not_a_pipe).read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn impersonation_reverts_on_drop() {
    let (server, client) = pair(PipeMode::Byte);
    within("connect", server.connect()).await.unwrap();
    match (server.client_session_id(), client.server_session_id()) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "both ends live in one session"),
        (a, b) if wine_version().is_some() => {
            wine_limitation(&format!("session ids are not available: {a:?}, {b:?}"));
        }
        (a, b) => panic!("session ids: {a:?}, {b:?}"),
    }
    assert!(
        client.impersonate_client().is_err(),
        "a client cannot impersonate"
    );
    // Windows allows it once data was read.
    pass(&client, &server, b"x").await;
    // The guard is taken and dropped with no `.await` in between: the
    // task stays on this thread.
    check_impersonation(|| server.impersonate_client());
    check_client_identity(&|f| server.with_client_identity(f));
    assert!(client.with_client_identity(|| ()).is_err());
    // The pipe works on after it.
    pass(&server, &client, b"after").await;
}
