//! The async front on the `futures` executors (`block_on`, `ThreadPool`),
//! through the `futures-io` traits.
#![cfg(all(windows, feature = "futures-io"))]

mod util;

use std::io;
use std::sync::mpsc;

use async_named_pipes::{NamedPipe, PipeMode};
use futures_executor::{block_on, ThreadPool};
use futures_util::future::{join, join_all};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use futures_util::task::SpawnExt;
use util::{pair, Rng, PATIENCE};

#[test]
fn round_trip_on_block_on() {
    let (mut server, mut client) = pair(PipeMode::Byte);
    block_on(async {
        server.connect().await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        server.write_all(b"world!").await.unwrap();
        let mut buf = [0u8; 6];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"world!");
    });
}

#[test]
fn close_flushes_then_refuses_writes() {
    let (server, client) = pair(PipeMode::Byte);
    block_on(async {
        server.connect().await.unwrap();
        let data = Rng::new(3).bytes(200_000);
        let writer = async {
            let mut w = &server;
            w.write_all(&data).await.unwrap();
            // `close`: a flush (at once: accepted bytes are delivered
            // without waiting for the reader), then writes are refused.
            w.close().await.unwrap();
        };
        let reader = async {
            let mut r = &client;
            let mut got = vec![0u8; data.len()];
            r.read_exact(&mut got).await.unwrap();
            got
        };
        let ((), got) = join(writer, reader).await;
        assert!(got == data);
        let e = (&server).write(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        // The pipe still reads.
        (&client).write_all(b"ok").await.unwrap();
        let mut buf = [0u8; 2];
        (&server).read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ok");
        drop(server);
        // The drop is what the peer sees as the end.
        let mut rest = Vec::new();
        (&client).read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
}

#[test]
fn messages_whole_on_block_on() {
    let (server, client) = pair(PipeMode::Message);
    block_on(async {
        server.connect().await.unwrap();
        let mut rng = Rng::new(9);
        let messages: Vec<Vec<u8>> = [1, 3000, 70_000, 200 * 1024]
            .iter()
            .map(|&n| rng.bytes(n))
            .collect();
        let send = async {
            for m in &messages {
                (&client).write_all(m).await.unwrap();
            }
        };
        let receive = async {
            let mut got = Vec::new();
            for m in &messages {
                assert_eq!(server.recv_msg(&mut got).await.unwrap(), m.len());
                assert!(&got == m);
            }
        };
        join(send, receive).await;
    });
}

#[test]
fn many_pipes_on_a_thread_pool() {
    const PIPES: usize = 200;
    let pool = ThreadPool::builder().pool_size(2).create().unwrap();
    let (done, results) = mpsc::channel();
    for i in 0..PIPES {
        let done = done.clone();
        pool.spawn(async move {
            let (server, client): (NamedPipe, NamedPipe) = pair(PipeMode::Byte);
            server.connect().await.unwrap();
            let data = Rng::new(i as u64).bytes(20_000 + i * 97);
            let send = async {
                (&client).write_all(&data).await.unwrap();
                (&client).flush().await.unwrap();
            };
            let receive = async {
                let mut got = vec![0u8; data.len()];
                (&server).read_exact(&mut got).await.unwrap();
                got
            };
            let ((), got) = join(send, receive).await;
            let _ = done.send(got == data);
        })
        .unwrap();
    }
    for _ in 0..PIPES {
        let ok = results.recv_timeout(PATIENCE).expect("every pipe finishes");
        assert!(ok, "a pipe's data differs");
    }
}

#[test]
fn several_pipes_in_one_block_on() {
    let pairs: Vec<(NamedPipe, NamedPipe)> = (0..32).map(|_| pair(PipeMode::Byte)).collect();
    block_on(join_all(pairs.iter().enumerate().map(
        |(i, (s, c))| async move {
            s.connect().await.unwrap();
            let data = Rng::new(100 + i as u64).bytes(150_000);
            let ((), got) = join(
                async {
                    let mut w = c;
                    w.write_all(&data).await.unwrap();
                },
                async {
                    let mut got = vec![0u8; data.len()];
                    let mut r = s;
                    r.read_exact(&mut got).await.unwrap();
                    got
                },
            )
            .await;
            assert!(got == data, "pipe {i}");
        },
    )));
}

/// The listener moved into a task as a `Stream` (feature `futures-core`):
/// every client that opens is served, concurrently, on the thread pool.
#[cfg(feature = "futures-core")]
#[test]
fn the_listener_as_a_stream_on_a_thread_pool() {
    use async_named_pipes::{ClientOptions, ServerOptions};
    use futures_util::StreamExt;

    const CLIENTS: usize = 40;
    let pool = ThreadPool::builder().pool_size(2).create().unwrap();
    let name = util::name();
    let listener = ServerOptions::new().listen(&name, 4).unwrap();
    let (served, served_rx) = mpsc::channel();
    pool.spawn(
        listener
            .take(CLIENTS)
            .for_each_concurrent(None, move |pipe| {
                let served = served.clone();
                async move {
                    // Echo until the client closes.
                    let pipe = pipe.unwrap();
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match (&pipe).read(&mut buf).await.unwrap() {
                            0 => break,
                            n => (&pipe).write_all(&buf[..n]).await.unwrap(),
                        }
                    }
                    let _ = served.send(());
                }
            }),
    )
    .unwrap();
    let (done, results) = mpsc::channel();
    for i in 0..CLIENTS {
        let done = done.clone();
        let name = name.clone();
        pool.spawn(async move {
            let mut options = ClientOptions::new();
            options.busy_timeout(Some(PATIENCE));
            let client = NamedPipe::open(&options, &name).await.unwrap();
            let data = Rng::new(500 + i as u64).bytes(5_000 + i * 101);
            let send = async {
                (&client).write_all(&data).await.unwrap();
            };
            let receive = async {
                let mut got = vec![0u8; data.len()];
                (&client).read_exact(&mut got).await.unwrap();
                got
            };
            let ((), got) = join(send, receive).await;
            let _ = done.send(got == data);
        })
        .unwrap();
    }
    for _ in 0..CLIENTS {
        let ok = results
            .recv_timeout(PATIENCE)
            .expect("every client finishes");
        assert!(ok, "a client's echo differs");
    }
    for _ in 0..CLIENTS {
        served_rx
            .recv_timeout(PATIENCE)
            .expect("the stream served every client");
    }
}

#[test]
fn both_ends_write_all_flush_then_read_exact_4_mib_on_block_on() {
    // The symmetric exchange that deadlocked while a flush waited for the
    // peer to read: one thread, both ends joined.
    let (server, client) = pair(PipeMode::Byte);
    let (x, y) = (Rng::new(21).bytes(4 << 20), Rng::new(22).bytes(4 << 20));
    async fn side(mut io: &NamedPipe, mine: &[u8], len: usize) -> Vec<u8> {
        io.write_all(mine).await.unwrap();
        io.flush().await.unwrap();
        let mut got = vec![0u8; len];
        io.read_exact(&mut got).await.unwrap();
        got
    }
    block_on(async {
        server.connect().await.unwrap();
        let (from_client, from_server) =
            join(side(&server, &x, y.len()), side(&client, &y, x.len())).await;
        assert!(from_client == y && from_server == x);
    });
}

#[test]
fn an_open_dropped_after_one_poll_opens_no_client() {
    use async_named_pipes::ClientOptions;
    use futures_util::FutureExt;
    use std::time::{Duration, Instant};

    let name = util::name();
    let (server, first) = util::busy(&name);
    block_on(server.connect()).unwrap();
    let mut options = ClientOptions::new();
    options.busy_timeout(Some(Duration::MAX));
    // Polled once (its wait starts on a helper thread), then dropped.
    assert!(NamedPipe::open(&options, &name).now_or_never().is_none());
    std::thread::sleep(Duration::from_millis(200));
    server.disconnect().unwrap();
    drop(first);
    let started = Instant::now();
    let real = {
        let name = name.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            ClientOptions::new().open(&name).unwrap()
        })
    };
    block_on(server.connect()).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "connected before the real client came: a ghost of the dropped open"
    );
    let real = real.join().unwrap();
    block_on(async {
        (&real).write_all(b"real").await.unwrap();
        let mut buf = [0u8; 4];
        (&server).read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"real");
    });
}
