//! The tokio-style API on tokio's runtimes (current-thread and
//! multi-thread): readiness (`ready`, `readable`, `writable`, the poll
//! functions, `try_*`), many tasks waiting on one pipe, owned halves, the
//! handle traits, concurrent accepts.
#![cfg(all(windows, feature = "tokio"))]

mod util;

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::windows::io::{AsHandle, AsRawHandle, IntoRawHandle, OwnedHandle};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_named_pipes::{ClientOptions, Interest, NamedPipe, PipeMode, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use util::{name, pair, PATIENCE};

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(PATIENCE, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing after {PATIENCE:?}"),
    }
}

async fn connected(mode: PipeMode) -> (NamedPipe, NamedPipe) {
    let (server, client) = pair(mode);
    within("connect", server.connect()).await.unwrap();
    (server, client)
}

/// Reads exactly `n` bytes the readiness way: wait readable, `try_read`,
/// wait again on `WouldBlock`.
async fn read_ready(pipe: &NamedPipe, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut at = 0;
    while at < n {
        within("readable", pipe.readable()).await.unwrap();
        match pipe.try_read(&mut out[at..]) {
            Ok(0) => panic!("end of file after {at} of {n} bytes"),
            Ok(k) => at += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("try_read: {e}"),
        }
    }
    out
}

/// Writes all of `data` the readiness way.
async fn write_ready(pipe: &NamedPipe, data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        within("writable", pipe.writable()).await.unwrap();
        match pipe.try_write(&data[at..]) {
            Ok(k) => at += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("try_write: {e}"),
        }
    }
}

async fn readiness_round_trips() {
    let (server, client) = connected(PipeMode::Byte).await;
    // Nothing sent: try_read does not block, it says WouldBlock.
    let mut buf = [0u8; 8];
    assert_eq!(
        client.try_read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    // A connected pipe with room is writable at once.
    let r = within("ready", client.ready(Interest::WRITABLE))
        .await
        .unwrap();
    assert!(r.is_writable() && !r.is_readable());
    // 1 MiB each way, in chunks, both ends at once.
    let data: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let (got, ()) = tokio::join!(read_ready(&server, data.len()), write_ready(&client, &data));
    assert!(got == data, "the bytes differ");
    let (got, ()) = tokio::join!(
        read_ready(&client, 1000),
        write_ready(&server, &data[..1000])
    );
    assert_eq!(got, &data[..1000]);
    // Readable and writable together, as tokio's `ready` with both.
    server.try_write(b"ping").unwrap();
    let r = within(
        "ready both",
        client.ready(tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE),
    )
    .await
    .unwrap();
    assert!(r.is_writable());
    assert_eq!(read_ready(&client, 4).await, b"ping");
    // tokio's interests a pipe has no readiness for: an error, not a wait
    // for ever.
    let e = client.ready(tokio::io::Interest::ERROR).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    // The peer leaves: readable, and reads say end of file.
    drop(server);
    let r = within("ready at eof", client.ready(Interest::READABLE))
        .await
        .unwrap();
    assert!(r.is_readable() && r.is_read_closed());
    assert_eq!(client.try_read(&mut buf).unwrap(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn readiness_current_thread() {
    readiness_round_trips().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_multi_thread() {
    readiness_round_trips().await;
}

#[tokio::test(flavor = "current_thread")]
async fn vectored_reads_and_writes_are_one_operation() {
    // Message mode: a gathered write is one message, a scattered read
    // takes one message at most.
    let (server, client) = connected(PipeMode::Message).await;
    let n = client
        .try_write_vectored(&[IoSlice::new(b"he"), IoSlice::new(b""), IoSlice::new(b"llo")])
        .unwrap();
    assert_eq!(n, 5);
    client.try_write(b"next").unwrap();
    let mut msg = Vec::new();
    assert_eq!(within("recv", server.recv_msg(&mut msg)).await.unwrap(), 5);
    assert_eq!(msg, b"hello");
    within("readable", server.readable()).await.unwrap();
    let (mut a, mut b) = ([0u8; 3], [0u8; 8]);
    let n = server
        .try_read_vectored(&mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)])
        .unwrap();
    assert_eq!((n, &a, &b[..1]), (4, b"nex", &b"t"[..]));
    // tokio's vectored write trait method gathers too.
    let mut w = &client;
    let n = w
        .write_vectored(&[IoSlice::new(b"a"), IoSlice::new(b"bc")])
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(within("recv", server.recv_msg(&mut msg)).await.unwrap(), 3);
    assert_eq!(msg, b"abc");
    // try_read_buf fills a BufMut; with nothing read ahead, WouldBlock.
    let mut v = Vec::new();
    assert_eq!(
        server.try_read_buf(&mut v).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert!(v.is_empty());
    client.try_write(b"buf").unwrap();
    within("readable", server.readable()).await.unwrap();
    assert_eq!(server.try_read_buf(&mut v).unwrap(), 3);
    assert_eq!(v, b"buf");
}

/// Many tasks wait on the same pipe and side: each is woken (a single
/// waker slot would strand all but the last).
async fn many_waiters(flavor_multi: bool) {
    let (server, client) = connected(PipeMode::Byte).await;
    let server = Arc::new(server);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            s.readable().await.unwrap();
        }));
    }
    // Let every task park.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    if flavor_multi {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.try_write(b"x").unwrap();
    for t in tasks {
        within("a waiting task", t).await.unwrap();
    }
    // Two tasks in `read`, each woken in turn.
    let a = {
        let s = Arc::clone(&server);
        tokio::spawn(async move {
            let mut b = [0u8; 1];
            (&*s).read_exact(&mut b).await.unwrap();
            b[0]
        })
    };
    let b = {
        let s = Arc::clone(&server);
        tokio::spawn(async move {
            let mut b = [0u8; 1];
            (&*s).read_exact(&mut b).await.unwrap();
            b[0]
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    client.try_write(b"y").unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    (&client).write_all(b"z").await.unwrap();
    let mut got = [within("a", a).await.unwrap(), within("b", b).await.unwrap()];
    got.sort();
    assert_eq!(
        got,
        [b'x', b'y'],
        "the first byte and the next, one to each"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn many_waiters_current_thread() {
    many_waiters(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_multi_thread() {
    many_waiters(true).await;
}

async fn halves() {
    let (server, client) = connected(PipeMode::Byte).await;
    let (mut rd, mut wr) = client.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(&[7u8; 100_000]).await.unwrap();
        wr.flush().await.unwrap();
        wr
    });
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 100_000];
        (&server).read_exact(&mut buf).await.unwrap();
        (&server).write_all(&buf).await.unwrap();
        server
    });
    let mut back = vec![0u8; 100_000];
    within("read half", rd.read_exact(&mut back)).await.unwrap();
    assert!(back.iter().all(|&b| b == 7));
    let wr = within("writer", writer).await.unwrap();
    let server = within("echo", echo).await.unwrap();
    // Halves of another pipe do not reunite, and are handed back.
    let (_s2, c2) = connected(PipeMode::Byte).await;
    let (rd2, wr2) = c2.into_split();
    let err = rd.reunite(wr2).unwrap_err();
    let (rd, wr2) = (err.0, err.1);
    assert!(wr.reunite(rd2).is_err());
    drop(wr2);
    // Dropping the write half closes nothing: the pipe reads on.
    let mut rd = rd;
    (&server).write_all(b"still").await.unwrap();
    let mut five = [0u8; 5];
    within("read after", rd.read_exact(&mut five))
        .await
        .unwrap();
    assert_eq!(&five, b"still");
}

#[tokio::test(flavor = "current_thread")]
async fn halves_current_thread() {
    halves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_multi_thread() {
    halves().await;
}

#[tokio::test(flavor = "current_thread")]
async fn halves_reunite_into_the_same_pipe() {
    let (server, client) = connected(PipeMode::Byte).await;
    let raw = client.as_raw_handle();
    let (rd, mut wr) = client.into_split();
    wr.write_all(b"ab").await.unwrap();
    // The write half dropped: the peer sees no end of file (no half-close).
    let client = rd.reunite(wr).unwrap();
    assert_eq!(client.as_raw_handle(), raw);
    let mut two = [0u8; 2];
    within("read", (&server).read_exact(&mut two))
        .await
        .unwrap();
    let (rd, wr) = client.into_split();
    drop(wr);
    (&server).write_all(b"cd").await.unwrap();
    let mut rd = rd;
    within(
        "read half after the write half's drop",
        rd.read_exact(&mut two),
    )
    .await
    .unwrap();
    assert_eq!(&two, b"cd");
    let mut one = [0u8; 1];
    assert!(
        timeout(Duration::from_millis(100), (&server).read(&mut one))
            .await
            .is_err(),
        "nothing arrives at the server: no end of file"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_handle_is_borrowed_and_given_up_open_current_thread() {
    handle_given_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_is_borrowed_and_given_up_open_multi_thread() {
    handle_given_up().await;
}

async fn handle_given_up() {
    let (server, client) = connected(PipeMode::Byte).await;
    // Borrowed: the pipe answers through it, and stays usable.
    let borrowed = client.as_handle();
    assert_eq!(borrowed.as_raw_handle(), client.as_raw_handle());
    (&client).write_all(b"before").await.unwrap();
    (&client).flush().await.unwrap();
    let mut six = [0u8; 6];
    within("read", (&server).read_exact(&mut six))
        .await
        .unwrap();
    // Given up: open and connected, with no read of ours left pending on
    // it (the read ahead was cancelled and finished): overlapped I/O whose
    // completion bypasses the port (event with the low bit set) reads what
    // the server sends after.
    let raw = client.as_raw_handle();
    let owned = OwnedHandle::from(client);
    assert_eq!(owned.as_raw_handle(), raw);
    (&server).write_all(b"after").await.unwrap();
    (&server).flush().await.unwrap();
    let got = tokio::task::spawn_blocking(move || (read_bypassing_the_port(&owned, 5), owned))
        .await
        .unwrap();
    assert_eq!(got.0, b"after");
    // `into_raw_handle` gives up the same way; the handle is the caller's
    // to close.
    let (server2, client2) = connected(PipeMode::Byte).await;
    (&client2).write_all(b"x").await.unwrap();
    let raw = client2.into_raw_handle();
    drop(unsafe_free_adopt(raw));
    drop(got.1);
    // The servers see their clients gone.
    let mut one = [0u8; 1];
    assert_eq!(within("eof", (&server).read(&mut one)).await.unwrap(), 0);
    let mut x = [0u8; 1];
    within("x", (&server2).read_exact(&mut x)).await.unwrap();
    assert_eq!(within("eof 2", (&server2).read(&mut one)).await.unwrap(), 0);
}

/// `ReadFile` of `n` bytes with an `OVERLAPPED` whose event has its low bit
/// set (no completion packet), waited for with `GetOverlappedResult`.
fn read_bypassing_the_port(h: &OwnedHandle, n: usize) -> Vec<u8> {
    use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, ERROR_IO_PENDING};
    use windows_sys::Win32::Storage::FileSystem::ReadFile;
    use windows_sys::Win32::System::Threading::CreateEventW;
    use windows_sys::Win32::System::IO::{GetOverlappedResult, OVERLAPPED};
    let mut out = Vec::new();
    while out.len() < n {
        let mut buf = vec![0u8; n - out.len()];
        // SAFETY: plain Win32 calls on a live handle; `ov` and `buf` outlive
        // the operation, which `GetOverlappedResult(.., TRUE)` waits for.
        unsafe {
            let event = CreateEventW(std::ptr::null(), 1, 0, std::ptr::null());
            assert!(!event.is_null());
            let mut ov: OVERLAPPED = std::mem::zeroed();
            ov.hEvent = (event as usize | 1) as _;
            let mut got = 0u32;
            let ok = ReadFile(
                h.as_raw_handle(),
                buf.as_mut_ptr(),
                buf.len() as u32,
                &mut got,
                &mut ov,
            );
            if ok == 0 {
                assert_eq!(GetLastError(), ERROR_IO_PENDING, "ReadFile failed");
            }
            assert_ne!(GetOverlappedResult(h.as_raw_handle(), &ov, &mut got, 1), 0);
            CloseHandle(event);
            out.extend_from_slice(&buf[..got as usize]);
        }
    }
    out
}

/// Owns a raw handle the test got from `into_raw_handle`.
fn unsafe_free_adopt(raw: std::os::windows::io::RawHandle) -> OwnedHandle {
    use std::os::windows::io::FromRawHandle;
    // SAFETY: `raw` came from `into_raw_handle` and is owned by nothing else.
    unsafe { OwnedHandle::from_raw_handle(raw) }
}

/// 8 tasks accept on one listener, 200 clients: every one is served
/// exactly once (each task gets pipes of its own).
async fn concurrent_accepts() {
    const CLIENTS: usize = 200;
    let name = name();
    let listener = Arc::new(ServerOptions::new().listen(&name, 4).unwrap());
    let served_ids = Arc::new(Mutex::new(Vec::<u32>::new()));
    let mut acceptors = Vec::new();
    for _ in 0..8 {
        let listener = Arc::clone(&listener);
        let done = Arc::clone(&served_ids);
        acceptors.push(tokio::spawn(async move {
            loop {
                let pipe = match listener.accept().await {
                    Ok(p) => p,
                    Err(e) => panic!("accept: {e}"),
                };
                let mut id = [0u8; 4];
                if (&pipe).read_exact(&mut id).await.is_err() {
                    continue;
                }
                (&pipe).write_all(&id).await.unwrap();
                done.lock().unwrap().push(u32::from_le_bytes(id));
            }
        }));
    }
    let mut clients = Vec::new();
    for i in 0..CLIENTS as u32 {
        let name = name.clone();
        clients.push(tokio::spawn(async move {
            let c = within(
                "open",
                NamedPipe::open(
                    ClientOptions::new().busy_timeout(Some(Duration::from_secs(30))),
                    &name,
                ),
            )
            .await
            .unwrap();
            (&c).write_all(&i.to_le_bytes()).await.unwrap();
            let mut back = [0u8; 4];
            within("echo", (&c).read_exact(&mut back)).await.unwrap();
            assert_eq!(u32::from_le_bytes(back), i);
        }));
    }
    for c in clients {
        within("client", c).await.unwrap();
    }
    // Every client got its echo, so every one was served; once each.
    let ids = served_ids.lock().unwrap().clone();
    let seen: BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(seen.len(), ids.len(), "a client served twice");
    assert_eq!(seen.len(), CLIENTS);
    for a in acceptors {
        a.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_accept_on_one_listener_multi_thread() {
    concurrent_accepts().await;
}

#[tokio::test(flavor = "current_thread")]
async fn eight_tasks_accept_on_one_listener_current_thread() {
    concurrent_accepts().await;
}

/// A shared `&PipeListener` polled by two tasks: a connect wakes the one
/// that did not poll last too.
#[tokio::test(flavor = "current_thread")]
async fn the_first_of_two_accepting_tasks_is_not_stranded() {
    let name = name();
    let listener = Arc::new(ServerOptions::new().listen(&name, 2).unwrap());
    let first = {
        let l = Arc::clone(&listener);
        tokio::spawn(async move { l.accept().await.map(|_| 1) })
    };
    tokio::task::yield_now().await;
    let second = {
        let l = Arc::clone(&listener);
        tokio::spawn(async move { l.accept().await.map(|_| 2) })
    };
    tokio::task::yield_now().await;
    let _c1 = ClientOptions::new().open(&name).unwrap();
    let _c2 = ClientOptions::new().open(&name).unwrap();
    let mut got = [
        within("first", first).await.unwrap().unwrap(),
        within("second", second).await.unwrap().unwrap(),
    ];
    got.sort();
    assert_eq!(got, [1, 2]);
}

/// A client opened without write access: its write fails at once with
/// `PermissionDenied` (tokio's `access_inbound` example).
#[tokio::test(flavor = "current_thread")]
async fn a_write_without_write_access_fails_at_once() {
    let name = name();
    let server = ServerOptions::new()
        .access_inbound(false)
        .create(&name)
        .unwrap();
    let client = ClientOptions::new().write(false).open(&name).unwrap();
    within("connect", server.connect()).await.unwrap();
    let e = within("write", (&client).write(b"ping")).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
}

/// After the server's `disconnect`, the client's write fails with
/// `BrokenPipe`, the OS error (`ERROR_PIPE_NOT_CONNECTED`, 233) inside it —
/// where tokio's `disconnect` example expects `raw_os_error() == Some(233)`
/// (the one example of tokio's docs left out for it).
#[tokio::test(flavor = "current_thread")]
async fn a_write_after_the_servers_disconnect_is_a_broken_pipe() {
    let (server, client) = connected(PipeMode::Byte).await;
    server.disconnect().unwrap();
    let e = within("write", (&client).write(b"ping")).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e:?}");
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<io::Error>());
    assert_eq!(inner.and_then(io::Error::raw_os_error), Some(233), "{e:?}");
}

/// The listener shared as a stream (`&PipeListener`) by four tasks: every
/// client is handed to exactly one of them.
#[cfg(feature = "futures-core")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_listener_stream_serves_every_task() {
    use futures_util::StreamExt;
    let name = name();
    let listener = Arc::new(ServerOptions::new().listen(&name, 2).unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for t in 0..4u8 {
        let (l, got) = (Arc::clone(&listener), Arc::clone(&got));
        tasks.push(tokio::spawn(async move {
            let mut stream = &*l;
            let pipe = stream.next().await.unwrap().unwrap();
            (&pipe).write_all(&[t]).await.unwrap();
            got.lock().unwrap().push(t);
            pipe
        }));
    }
    let mut clients = Vec::new();
    for _ in 0..4 {
        let c = within(
            "open",
            NamedPipe::open(
                ClientOptions::new().busy_timeout(Some(Duration::from_secs(30))),
                &name,
            ),
        )
        .await
        .unwrap();
        clients.push(c);
    }
    let mut from = BTreeSet::new();
    for c in &clients {
        let mut one = [0u8; 1];
        within("greeting", (&*c).read_exact(&mut one))
            .await
            .unwrap();
        from.insert(one[0]);
    }
    assert_eq!(from.len(), 4, "each task served one client");
    for t in tasks {
        within("task", t).await.unwrap();
    }
    assert_eq!(got.lock().unwrap().len(), 4);
}
