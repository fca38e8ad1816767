//! `PipeListener` on tokio's runtimes.
#![cfg(all(windows, feature = "tokio"))]

mod util;

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::time::Duration;

use async_named_pipes::{ClientOptions, NamedPipe, PipeListener, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use util::{name, Rng, PATIENCE};

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(PATIENCE, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing after {PATIENCE:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn accept_hands_out_clients_in_turn() {
    let name = name();
    let listener = ServerOptions::new().listen(&name, 2).unwrap();
    for i in 0..10u8 {
        let mut client = ClientOptions::new().open(&name).unwrap();
        let mut server = within("accept", listener.accept()).await.unwrap();
        client.write_all(&[i; 3]).await.unwrap();
        let mut buf = [0u8; 3];
        within("server read", server.read_exact(&mut buf))
            .await
            .unwrap();
        assert_eq!(buf, [i; 3]);
        server.write_all(&[i + 100]).await.unwrap();
        let mut one = [0u8; 1];
        within("client read", client.read_exact(&mut one))
            .await
            .unwrap();
        assert_eq!(one, [i + 100]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn clients_that_came_before_accept_are_all_handed_out() {
    let name = name();
    let listener = PipeListener::bind(&name).unwrap();
    let mut clients = Vec::new();
    for i in 1..=3u8 {
        let mut c = ClientOptions::new().open(&name).unwrap();
        c.write_all(&[i]).await.unwrap();
        clients.push(c);
    }
    let mut seen = BTreeSet::new();
    for _ in 0..3 {
        let mut server = within("accept", listener.accept()).await.unwrap();
        let mut one = [0u8; 1];
        within("read", server.read_exact(&mut one)).await.unwrap();
        seen.insert(one[0]);
    }
    assert_eq!(seen, BTreeSet::from([1, 2, 3]));
    // No fourth client: accept waits.
    assert!(timeout(Duration::from_millis(200), listener.accept())
        .await
        .is_err());
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_left_before_accept_is_skipped() {
    let name = name();
    let listener = ServerOptions::new().listen(&name, 2).unwrap();
    drop(ClientOptions::new().open(&name).unwrap());
    let mut stays = ClientOptions::new().open(&name).unwrap();
    stays.write_all(b"here").await.unwrap();
    let mut server = within("accept", listener.accept()).await.unwrap();
    let mut buf = [0u8; 4];
    within("read", server.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"here");
}

#[test]
fn many_clients_at_once_on_the_multi_thread_runtime() {
    const CLIENTS: usize = 100;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let name = name();
        let listener = ServerOptions::new().listen(&name, 4).unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..CLIENTS {
                let mut pipe = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    loop {
                        match pipe.read(&mut buf).await.unwrap() {
                            0 => break,
                            n => pipe.write_all(&buf[..n]).await.unwrap(),
                        }
                    }
                });
            }
        });
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let name = name.clone();
            clients.push(tokio::spawn(async move {
                let mut options = ClientOptions::new();
                options.busy_timeout(Some(PATIENCE));
                let mut pipe: NamedPipe = NamedPipe::open(&options, &name).await.unwrap();
                let data = Rng::new(i as u64).bytes(10_000 + i * 31);
                pipe.write_all(&data).await.unwrap();
                let mut back = vec![0u8; data.len()];
                pipe.read_exact(&mut back).await.unwrap();
                assert!(back == data, "client {i}: the echo differs");
            }));
        }
        for c in clients {
            within("client", c).await.unwrap();
        }
        within("server", server).await.unwrap();
    });
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_the_listener_stops_listening() {
    let name = name();
    let listener = PipeListener::bind(&name).unwrap();
    drop(ClientOptions::new().open(&name).unwrap());
    drop(listener);
    let e = ClientOptions::new().open(&name).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e:?}");
}

/// The listener as a `Stream` (feature `futures-core`), borrowed: each
/// item is a connected pipe; a client that left before it was polled is
/// skipped; clients that come while the stream is polled are yielded too.
#[cfg(feature = "futures-core")]
#[tokio::test(flavor = "current_thread")]
async fn the_stream_yields_each_client_and_skips_one_that_left() {
    use futures_util::StreamExt;

    let name = name();
    let listener = ServerOptions::new().listen(&name, 4).unwrap();
    drop(ClientOptions::new().open(&name).unwrap());
    let mut clients = Vec::new();
    for i in 1..=3u8 {
        let mut c = ClientOptions::new().open(&name).unwrap();
        c.write_all(&[i; 4]).await.unwrap();
        clients.push(c);
    }
    let mut incoming = &listener;
    let mut seen = BTreeSet::new();
    // Kept open: each client reads its answer below.
    let mut served = Vec::new();
    for _ in 0..3 {
        let mut server = within("next", incoming.next()).await.unwrap().unwrap();
        let mut buf = [0u8; 4];
        within("read", server.read_exact(&mut buf)).await.unwrap();
        assert_eq!(buf, [buf[0]; 4]);
        server.write_all(&[buf[0] + 100]).await.unwrap();
        seen.insert(buf[0]);
        served.push(server);
    }
    assert_eq!(seen, BTreeSet::from([1, 2, 3]));
    for (i, c) in clients.iter_mut().enumerate() {
        let mut one = [0u8; 1];
        within("client read", c.read_exact(&mut one)).await.unwrap();
        assert_eq!(one[0], i as u8 + 101);
    }
    // The client that left is not yielded: the stream waits.
    assert!(timeout(Duration::from_millis(200), incoming.next())
        .await
        .is_err());
    // A client that comes now is.
    let mut late = ClientOptions::new().open(&name).unwrap();
    late.write_all(b"late").await.unwrap();
    let mut server = within("next", incoming.next()).await.unwrap().unwrap();
    let mut buf = [0u8; 4];
    within("read", server.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"late");
}
