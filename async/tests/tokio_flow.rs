//! Real libraries over the pipe, and the same test bodies over tokio's own
//! named pipes (`tokio::net::windows::named_pipe`): tokio-util's `Framed`,
//! `write_all` + `flush` + `read_exact` on both ends at once, hyper 1's
//! HTTP/1.1, `copy_bidirectional` with a loopback TCP stream, and data
//! written just before a drop. Each body runs on this crate's pipes
//! (current-thread and multi-thread runtimes) and on tokio's: what
//! completes on one completes on the other. Then what must not strand a
//! task: a busy wait for ever, an `Open` dropped while it waits, names
//! without the pipe prefix.
#![cfg(all(windows, feature = "tokio"))]

mod util;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::{Duration, Instant};

use async_named_pipes::{ClientOptions, NamedPipe, PipeMode, ServerOptions};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::windows::named_pipe as tokio_pipe;
use tokio::time::{sleep, timeout};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use util::{name, pair, Rng};

/// How long one exchange may take before the test fails (a deadlock ends
/// here, not in the runner's timeout).
const PATIENCE: Duration = Duration::from_secs(60);

/// Awaits `f`, failing the test after [`PATIENCE`].
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(PATIENCE, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing after {PATIENCE:?} (deadlock?)"),
    }
}

/// Any end of a byte stream the bodies run on.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A connected pair of this crate's pipes.
async fn ours() -> (NamedPipe, NamedPipe) {
    let (server, client) = pair(PipeMode::Byte);
    within("connect", server.connect()).await.unwrap();
    (server, client)
}

/// A connected pair of tokio's named pipes.
async fn theirs() -> (tokio_pipe::NamedPipeServer, tokio_pipe::NamedPipeClient) {
    let name = name();
    let server = tokio_pipe::ServerOptions::new()
        .first_pipe_instance(true)
        .create(&name)
        .unwrap();
    let client = tokio_pipe::ClientOptions::new().open(&name).unwrap();
    within("connect", server.connect()).await.unwrap();
    (server, client)
}

/// One test module per body: this crate on both runtimes, tokio's pipes.
macro_rules! on_both {
    ($($test:ident => |$s:ident, $c:ident| $body:expr;)*) => {$(
        mod $test {
            use super::*;

            #[tokio::test(flavor = "current_thread")]
            async fn ours_current_thread() {
                let ($s, $c) = ours().await;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ours_multi_thread() {
                let ($s, $c) = ours().await;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tokio_pipes() {
                let ($s, $c) = theirs().await;
                $body.await;
            }
        }
    )*};
}

on_both! {
    framed_send_then_next_on_both_ends => |s, c| framed_exchange(s, c);
    write_all_flush_read_exact_200k_on_both_ends => |s, c| write_flush_read(s, c, 200 << 10);
    write_all_flush_read_exact_4m_on_both_ends => |s, c| write_flush_read(s, c, 4 << 20);
    hyper_http1_keep_alive_10m_bodies_graceful_shutdown => |s, c| hyper_exchange(s, c);
    hyper_client_dropped_mid_response => |s, c| hyper_client_drops(s, c);
    copy_bidirectional_with_tcp_pipe_closes_first => |s, c| relay_with_tcp(s, c, true);
    copy_bidirectional_with_tcp_tcp_closes_first => |s, c| relay_with_tcp(s, c, false);
}

/// Both ends send a frame, then read the other's (tokio-util's `Framed`
/// with `LengthDelimitedCodec`), 8 rounds per size: a symmetric hello.
async fn framed_exchange(s: impl Io, c: impl Io) {
    let codec = || {
        LengthDelimitedCodec::builder()
            .max_frame_length(2 << 20)
            .new_codec()
    };
    let (mut a, mut b) = (Framed::new(s, codec()), Framed::new(c, codec()));
    for (i, size) in [16 << 10, 64 << 10, 100 << 10, 1 << 20]
        .into_iter()
        .enumerate()
    {
        for round in 0..8u64 {
            let seed = (i as u64) << 8 | round;
            let (fa, fb) = (
                Bytes::from(Rng::new(seed).bytes(size)),
                Bytes::from(Rng::new(seed + 1000).bytes(size)),
            );
            let what = format!("frames of {size} bytes, round {round}");
            let (got_b, got_a) = within(&what, async {
                tokio::join!(
                    async {
                        a.send(fa.clone()).await.unwrap();
                        a.next().await.unwrap().unwrap()
                    },
                    async {
                        b.send(fb.clone()).await.unwrap();
                        b.next().await.unwrap().unwrap()
                    }
                )
            })
            .await;
            assert!(got_b == fb && got_a == fa, "{what}: frames differ");
        }
    }
}

/// Both ends `write_all(n)`, `flush`, then `read_exact(n)`.
async fn write_flush_read(s: impl Io, c: impl Io, n: usize) {
    async fn side(mut io: impl Io, mine: Vec<u8>, theirs: Vec<u8>) {
        io.write_all(&mine).await.unwrap();
        io.flush().await.unwrap();
        let mut got = vec![0u8; theirs.len()];
        io.read_exact(&mut got).await.unwrap();
        assert!(got == theirs, "the peer's bytes, whole and in order");
    }
    let (x, y) = (Rng::new(7).bytes(n), Rng::new(8).bytes(n));
    within(
        &format!("write_all + flush + read_exact of {n} bytes"),
        async { tokio::join!(side(s, x.clone(), y.clone()), side(c, y, x)) },
    )
    .await;
}

/// The server's answer: the request's body length, then as many bytes as
/// the path asks for (`/n`).
async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let want: usize = req.uri().path()[1..].parse().unwrap_or(0);
    let got = req.into_body().collect().await?.to_bytes();
    let mut body = (got.len() as u64).to_le_bytes().to_vec();
    body.extend_from_slice(&Rng::new(want as u64).bytes(want));
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// hyper 1's HTTP/1.1 over the pipe: several requests on one kept-alive
/// connection with 10 MiB bodies each way, then the server shuts the
/// connection down gracefully and both ends finish cleanly.
async fn hyper_exchange(s: impl Io, c: impl Io) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(s), hyper::service::service_fn(answer));
        let mut conn = pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            _ = stopped => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    });
    let (mut sender, conn) = within(
        "handshake",
        hyper::client::conn::http1::handshake(TokioIo::new(c)),
    )
    .await
    .unwrap();
    let client_conn = tokio::spawn(conn);
    let ten = 10 << 20;
    for (i, (up, down)) in [(ten, ten), (0, 1000), (ten, 0), (5, ten)]
        .into_iter()
        .enumerate()
    {
        let body = Bytes::from(Rng::new(i as u64).bytes(up));
        let req = Request::post(format!("/{down}"))
            .header("host", "pipe")
            .body(Full::new(body))
            .unwrap();
        // The connection takes the next request once done with the last.
        within("ready", sender.ready()).await.unwrap();
        let resp = within("request", sender.send_request(req)).await.unwrap();
        assert!(resp.status().is_success());
        let got = within("body", resp.into_body().collect())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(got.len(), 8 + down, "request {i}");
        assert_eq!(u64::from_le_bytes(got[..8].try_into().unwrap()), up as u64);
        assert!(
            got[8..] == Rng::new(down as u64).bytes(down)[..],
            "request {i}: body"
        );
    }
    // Graceful shutdown by the server: both connections end without error.
    stop.send(()).unwrap();
    within("server end", server).await.unwrap().unwrap();
    within("client end", client_conn).await.unwrap().unwrap();
    drop(sender);
}

/// A client that asks for 10 MiB, reads a little of the body and drops
/// everything: the server's connection ends (with an error or not) and
/// does not hang.
async fn hyper_client_drops(s: impl Io, c: impl Io) {
    let server = tokio::spawn(async move {
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(s), hyper::service::service_fn(answer))
            .await
    });
    let (mut sender, conn) = within(
        "handshake",
        hyper::client::conn::http1::handshake(TokioIo::new(c)),
    )
    .await
    .unwrap();
    let client_conn = tokio::spawn(conn);
    let req = Request::get(format!("/{}", 10 << 20))
        .header("host", "pipe")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = within("request", sender.send_request(req)).await.unwrap();
    let mut body = resp.into_body();
    let first = within("first frame", body.frame()).await.unwrap().unwrap();
    assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
    // Gone mid-response: the response, the sender and the connection.
    drop(body);
    drop(sender);
    client_conn.abort();
    let _ = client_conn.await;
    // The server notices: its connection future ends.
    let r = within("server end after the client left", server)
        .await
        .unwrap();
    println!("server connection after the client left mid-response: {r:?}");
}

/// `copy_bidirectional` between the pipe's server end and a loopback TCP
/// stream, a request one way and a reply the other; `pipe_first`: the
/// pipe's client closes first, else the TCP client half-closes first.
async fn relay_with_tcp(s: impl Io, c: impl Io, pipe_first: bool) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let relay = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut pipe = s;
        tokio::io::copy_bidirectional(&mut pipe, &mut tcp).await
    });
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut pipe = c;
    let (to_tcp, to_pipe) = (Rng::new(1).bytes(300_000), Rng::new(2).bytes(300_000));
    if pipe_first {
        // The pipe's client sends and leaves; the TCP side reads it all and
        // end of file, answers, and closes.
        within("pipe write", pipe.write_all(&to_tcp)).await.unwrap();
        drop(pipe);
        let mut got = Vec::new();
        within("tcp read", tcp.read_to_end(&mut got)).await.unwrap();
        assert!(got == to_tcp, "the pipe's bytes, then end of file");
        // The relay's pipe end is at end of file: what TCP sends now has
        // nowhere to go, and closing ends the relay.
        drop(tcp);
    } else {
        // The TCP side sends and half-closes; a pipe has no half-close, so
        // its client reads exactly the request, answers and leaves.
        within("tcp write", tcp.write_all(&to_pipe)).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut got = vec![0u8; to_pipe.len()];
        within("pipe read", pipe.read_exact(&mut got))
            .await
            .unwrap();
        assert!(got == to_pipe, "the TCP bytes");
        within("pipe write", pipe.write_all(&to_tcp)).await.unwrap();
        drop(pipe);
        let mut back = Vec::new();
        within("tcp read", tcp.read_to_end(&mut back))
            .await
            .unwrap();
        assert!(back == to_tcp, "the pipe's answer, then end of file");
    }
    let r = within("relay end", relay).await.unwrap();
    println!("copy_bidirectional (pipe first: {pipe_first}): {r:?}");
    if !pipe_first {
        let (up, down) = r.unwrap();
        assert_eq!((up, down), (to_tcp.len() as u64, to_pipe.len() as u64));
    }
}

/// A writer sends 1 MiB and drops its end at once; the reader starts six
/// seconds later (past the 5 s the linger used to be) and gets every
/// byte, then end of file: on this crate's pipes and on tokio's.
async fn late_reader(w: impl Io, r: impl Io) {
    let data = Rng::new(3).bytes(1 << 20);
    let mut w = w;
    within("write", w.write_all(&data)).await.unwrap();
    within("flush", w.flush()).await.unwrap();
    drop(w);
    sleep(Duration::from_secs(6)).await;
    let mut got = Vec::new();
    let mut r = r;
    within("read", r.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got.len(), data.len(), "every byte");
    assert!(got == data, "in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_written_before_a_drop_reaches_a_reader_that_starts_late() {
    assert!(async_named_pipes::DEFAULT_LINGER >= Duration::from_secs(60));
    let (s, c) = ours().await;
    let (ts, tc) = theirs().await;
    tokio::join!(late_reader(s, c), late_reader(ts, tc));
}

#[tokio::test(flavor = "current_thread")]
async fn the_linger_bound_ends_a_drop_whose_peer_never_reads() {
    let (s, c) = ours().await;
    s.set_linger(Duration::from_millis(300));
    let data = Rng::new(4).bytes(1 << 20);
    (&s).write_all(&data).await.unwrap();
    drop(s);
    // The reader does nothing for well past the bound.
    sleep(Duration::from_secs(2)).await;
    let mut got = Vec::new();
    within("read", (&c).read_to_end(&mut got)).await.unwrap();
    assert!(
        got.len() < data.len(),
        "the write was cancelled at the bound"
    );
    assert!(got == data[..got.len()], "a prefix, then end of file");
}

#[tokio::test(flavor = "current_thread")]
async fn the_linger_deadline_moves_while_a_slow_reader_makes_progress() {
    // Two writes pending at the drop (the second queued whole behind the
    // first), a 3 s linger, and a reader that starts 2 s late and then
    // takes over 3 s more: longer than the linger in all, but never 3 s
    // without the kernel taking data. A deadline fixed at the drop would cut the
    // second write off at 3 s.
    let (s, c) = ours().await;
    let linger = Duration::from_secs(3);
    s.set_linger(linger);
    // (The second is larger than what the reader's read-ahead and the
    // pipe's buffer take: it completes only as the reader goes on.)
    let (a, b) = (Rng::new(10).bytes(128 << 10), Rng::new(11).bytes(1 << 20));
    assert_eq!((&s).write(&a).await.unwrap(), a.len(), "the first, whole");
    assert_eq!(
        (&s).write(&b).await.unwrap(),
        b.len(),
        "the second, queued whole"
    );
    let dropped = Instant::now();
    drop(s);
    sleep(Duration::from_secs(2)).await;
    let mut got = vec![0u8; a.len()];
    within("read", (&c).read_exact(&mut got)).await.unwrap();
    let mut chunk = vec![0u8; 32 << 10];
    loop {
        let n = within("read", (&c).read(&mut chunk)).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
        sleep(Duration::from_millis(100)).await;
    }
    let took = dropped.elapsed();
    println!(
        "the slow reader got {} bytes in {took:?} (linger {linger:?})",
        got.len()
    );
    assert_eq!(got.len(), a.len() + b.len(), "every byte, after {took:?}");
    assert!(
        got[..a.len()] == a[..] && got[a.len()..] == b[..],
        "in order"
    );
    assert!(
        took > linger,
        "the test only tells if the reading outlasts the linger"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_busy_timeout_too_large_for_the_clock_waits_for_ever() {
    let name = name();
    let (server, first) = util::busy(&name);
    within("connect", server.connect()).await.unwrap();
    let mut options = ClientOptions::new();
    options.busy_timeout(Some(Duration::MAX));
    // The blocking open, on a thread; then the async one.
    let blocking = {
        let (options, name) = (options.clone(), name.clone());
        std::thread::spawn(move || options.open(&name).map(drop))
    };
    sleep(Duration::from_millis(200)).await;
    assert!(!blocking.is_finished(), "it waits (no panic, no timeout)");
    server.disconnect().unwrap();
    drop(first);
    within("connect", server.connect()).await.unwrap();
    blocking.join().expect("no panic").unwrap();
    server.disconnect().unwrap();
    let opening = NamedPipe::open(&options, &name);
    let free_later = async {
        sleep(Duration::from_millis(200)).await;
        server.connect().await.unwrap();
    };
    let (client, ()) = within("open", async { tokio::join!(opening, free_later) }).await;
    let client = client.unwrap();
    (&client).write_all(b"in").await.unwrap();
    let mut buf = [0u8; 2];
    (&server).read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"in");
}

#[tokio::test(flavor = "current_thread")]
async fn a_dropped_open_opens_no_client_after_the_drop() {
    let name = name();
    let (server, first) = util::busy(&name);
    within("connect", server.connect()).await.unwrap();
    // An open that waits for the one busy instance, dropped under a timeout.
    let mut options = ClientOptions::new();
    options.busy_timeout(Some(Duration::from_secs(30)));
    assert!(
        timeout(Duration::from_millis(300), NamedPipe::open(&options, &name))
            .await
            .is_err()
    );
    sleep(Duration::from_millis(200)).await;
    // The instance frees and listens again; the next real client comes a
    // little later.
    server.disconnect().unwrap();
    drop(first);
    let started = Instant::now();
    let real = async {
        sleep(Duration::from_millis(300)).await;
        ClientOptions::new().open(&name).unwrap()
    };
    let (connected, real) = within("connect", async { tokio::join!(server.connect(), real) }).await;
    connected.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "connected before the real client came: a ghost of the dropped open"
    );
    (&real).write_all(b"real").await.unwrap();
    let mut buf = [0u8; 4];
    within("read", (&server).read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf, b"real", "the server's client is the real one");
}

#[tokio::test(flavor = "current_thread")]
async fn names_without_the_pipe_prefix_are_invalid_input_naming_the_form() {
    for bad in [
        "no-prefix",
        r"C:\temp\pipe",
        r"\\.\not-a-pipe\x",
        r"\\.\pipe\",
    ] {
        let e = ServerOptions::new().create(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        assert!(e.to_string().contains(r"\\.\pipe\"), "{bad}: {e}");
        let e = ClientOptions::new().open(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        let e = NamedPipe::open(&ClientOptions::new(), bad)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        let e = ServerOptions::new().listen(bad, 2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
    }
    // A well-formed name passes the check and reaches the OS.
    let e = ClientOptions::new()
        .open(r"\\.\pipe\async-named-pipes-nobody-here")
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
}

#[tokio::test(flavor = "current_thread")]
async fn flush_never_waits_for_the_peer_and_drain_does() {
    let (s, c) = ours().await;
    let data = Rng::new(5).bytes(1 << 20);
    // Far more than the pipe's buffer, and the peer reads nothing yet.
    within("write", (&s).write_all(&data)).await.unwrap();
    within("flush", (&s).flush()).await.unwrap();
    // The drain waits for the peer to read.
    assert!(timeout(Duration::from_millis(300), s.drain())
        .await
        .is_err());
    let reader = async {
        let mut got = vec![0u8; data.len()];
        (&c).read_exact(&mut got).await.unwrap();
        got
    };
    let (drained, got) = within("drain", async { tokio::join!(s.drain(), reader) }).await;
    drained.unwrap();
    assert!(got == data);
}
