//! The tokio-style API on the `futures` executors (`block_on`,
//! `ThreadPool`): readiness and `try_*`, many tasks waiting on one pipe,
//! owned halves through the futures-io traits, concurrent accepts.
#![cfg(all(windows, feature = "futures-io"))]

mod util;

use std::collections::BTreeSet;
use std::io;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use async_named_pipes::{ClientOptions, Interest, NamedPipe, PipeMode, ServerOptions};
use futures_executor::{block_on, ThreadPool};
use futures_util::future::join;
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use futures_util::task::SpawnExt;
use util::{name, pair, PATIENCE};

async fn read_ready(pipe: &NamedPipe, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut at = 0;
    while at < n {
        pipe.readable().await.unwrap();
        match pipe.try_read(&mut out[at..]) {
            Ok(0) => panic!("end of file after {at} of {n} bytes"),
            Ok(k) => at += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("try_read: {e}"),
        }
    }
    out
}

async fn write_ready(pipe: &NamedPipe, data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        pipe.writable().await.unwrap();
        match pipe.try_write(&data[at..]) {
            Ok(k) => at += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("try_write: {e}"),
        }
    }
}

#[test]
fn readiness_on_block_on() {
    let (server, client) = pair(PipeMode::Byte);
    block_on(async {
        server.connect().await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            server.try_read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let data: Vec<u8> = (0..300_000).map(|i| (i % 253) as u8).collect();
        let (got, ()) = join(read_ready(&server, data.len()), write_ready(&client, &data)).await;
        assert!(got == data);
        let r = client
            .ready(Interest::READABLE | Interest::WRITABLE)
            .await
            .unwrap();
        assert!(r.is_writable() && !r.is_readable());
        drop(server);
        let r = client.ready(Interest::READABLE).await.unwrap();
        assert!(r.is_read_closed());
        assert_eq!(client.try_read(&mut buf).unwrap(), 0);
    });
}

/// Tasks of a thread pool waiting on one pipe's read side: every one is
/// woken by one write.
#[test]
fn many_waiters_on_a_thread_pool() {
    let pool = ThreadPool::builder().pool_size(2).create().unwrap();
    let (server, client) = pair(PipeMode::Byte);
    block_on(server.connect()).unwrap();
    let server = Arc::new(server);
    let (tx, rx) = mpsc::channel();
    for _ in 0..8 {
        let (s, tx) = (Arc::clone(&server), tx.clone());
        pool.spawn(async move {
            s.readable().await.unwrap();
            tx.send(()).unwrap();
        })
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    client.try_write(b"x").unwrap();
    for _ in 0..8 {
        rx.recv_timeout(PATIENCE)
            .expect("a waiting task was stranded");
    }
}

#[test]
fn halves_through_futures_io() {
    let pool = ThreadPool::builder().pool_size(2).create().unwrap();
    let (server, client) = pair(PipeMode::Byte);
    block_on(server.connect()).unwrap();
    let (mut rd, mut wr) = client.into_split();
    let (wr_tx, wr_rx) = mpsc::channel();
    pool.spawn(async move {
        wr.write_all(&[3u8; 50_000]).await.unwrap();
        wr.flush().await.unwrap();
        wr_tx.send(wr).unwrap();
    })
    .unwrap();
    let (server_tx, server_rx) = mpsc::channel();
    pool.spawn(async move {
        let mut buf = vec![0u8; 50_000];
        (&server).read_exact(&mut buf).await.unwrap();
        (&server).write_all(&buf).await.unwrap();
        server_tx.send(server).unwrap();
    })
    .unwrap();
    let mut back = vec![0u8; 50_000];
    block_on(rd.read_exact(&mut back)).unwrap();
    assert!(back.iter().all(|&b| b == 3));
    let wr = wr_rx.recv_timeout(PATIENCE).expect("the writer");
    let _server = server_rx.recv_timeout(PATIENCE).expect("the echo");
    let pipe = rd.reunite(wr).expect("halves of one pipe");
    drop(pipe);
}

/// 8 tasks of a thread pool accept on one listener, 200 clients: each
/// served exactly once.
#[test]
fn eight_tasks_accept_on_a_thread_pool() {
    const CLIENTS: u32 = 200;
    let pool = ThreadPool::builder().pool_size(2).create().unwrap();
    let name = name();
    let listener = Arc::new(ServerOptions::new().listen(&name, 4).unwrap());
    let (tx, rx) = mpsc::channel();
    for _ in 0..8 {
        let (l, tx) = (Arc::clone(&listener), tx.clone());
        pool.spawn(async move {
            loop {
                let pipe = l.accept().await.unwrap();
                let mut id = [0u8; 4];
                if (&pipe).read_exact(&mut id).await.is_err() {
                    continue;
                }
                (&pipe).write_all(&id).await.unwrap();
                (&pipe).flush().await.unwrap();
                if tx.send(u32::from_le_bytes(id)).is_err() {
                    return;
                }
            }
        })
        .unwrap();
    }
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let name = name.clone();
            std::thread::spawn(move || {
                block_on(async {
                    let c = NamedPipe::open(
                        ClientOptions::new().busy_timeout(Some(Duration::from_secs(30))),
                        &name,
                    )
                    .await
                    .unwrap();
                    (&c).write_all(&i.to_le_bytes()).await.unwrap();
                    let mut back = [0u8; 4];
                    (&c).read_exact(&mut back).await.unwrap();
                    assert_eq!(u32::from_le_bytes(back), i);
                })
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let mut seen = BTreeSet::new();
    for _ in 0..CLIENTS {
        let id = rx.recv_timeout(PATIENCE).expect("a client not served");
        assert!(seen.insert(id), "client {id} served twice");
    }
    assert!(rx.try_recv().is_err(), "a client served twice");
}

/// Given up on a futures executor: the handle is open, no read of the
/// pipe's is left on it, and it stays connected (the server reads what
/// was written through the pipe before, then sees nothing more until the
/// handle is closed).
#[test]
fn the_handle_is_given_up_on_block_on() {
    use std::os::windows::io::{AsHandle, AsRawHandle, OwnedHandle};
    let (server, client) = pair(PipeMode::Byte);
    block_on(async {
        server.connect().await.unwrap();
        assert_eq!(client.as_handle().as_raw_handle(), client.as_raw_handle());
        (&client).write_all(b"sent").await.unwrap();
        (&client).flush().await.unwrap();
        let owned = OwnedHandle::from(client);
        let mut four = [0u8; 4];
        (&server).read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"sent");
        // Adopted again, it fails on its first operation: the handle is
        // associated with the port already (once per handle, for life).
        let again = NamedPipe::from(owned);
        let e = (&again).write(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");
        drop(again);
        let mut one = [0u8; 1];
        assert_eq!((&server).read(&mut one).await.unwrap(), 0);
    });
}
