//! NamedPipe under every interleaving the issue names: reconnects, stale
//! data, both directions at once, many pipes, messages of every size, drops
//! with I/O in flight, and (re|de)registration.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::io::{self, Read, Write};
use std::time::Duration;

use mio::{Poll, PollOpt, Ready, Token};
use mio_named_pipes::NamedPipe;
use util::*;

fn would_block<T: std::fmt::Debug>(r: io::Result<T>) -> bool {
    matches!(r, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
}

#[test]
fn connect_after_disconnect_three_times_on_one_instance() {
    let mut l = Looper::new();
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    l.add(&server);
    for round in 0..3u8 {
        // A disconnected instance takes no client until it connects again.
        if round > 0 {
            assert_eq!(
                open_client(&name).unwrap_err().raw_os_error(),
                Some(231),
                "ERROR_PIPE_BUSY"
            );
        }
        assert!(would_block(server.connect()));
        let client = client(&name);
        l.add(&client);
        l.connect(&server);
        let msg = [round; 10];
        l.write_all(&client, &msg);
        assert_eq!(l.read_exact(&server, 10), msg);
        l.write_all(&server, &[round + 100; 7]);
        assert_eq!(l.read_exact(&client, 7), [round + 100; 7]);
        l.flush(&server);
        server.disconnect().unwrap();
        // The client sees the end of the connection.
        let rest = l.read_to_end(&client);
        assert!(rest.is_empty(), "round {round}: {} stray bytes", rest.len());
    }
}

#[test]
fn no_stale_data_after_disconnect() {
    let mut l = Looper::new();
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    let token = l.add(&server);
    let old = client(&name);
    l.add(&old);
    l.connect(&server);
    // The old client's data reaches the server's read-ahead buffer and the
    // pipe, unread by the user.
    l.write_all(&old, &[0xEE; 100_000]);
    l.event(token, "the old client's data", |r| r.is_readable());
    // And the server has queued data for the old client.
    let _ = (&server).write(&[0xDD; 200_000]);
    server.disconnect().unwrap();
    drop(old);

    assert!(would_block(server.connect()));
    let new = client(&name);
    l.add(&new);
    l.connect(&server);
    l.write_all(&new, b"fresh");
    assert_eq!(l.read_exact(&server, 5), b"fresh");
    l.write_all(&server, b"reply");
    assert_eq!(l.read_exact(&new, 5), b"reply");
    // Nothing else arrives on either side.
    for _ in 0..5 {
        l.turn(Duration::from_millis(20));
    }
    assert!(would_block((&server).read(&mut [0; 16])));
    assert!(would_block((&new).read(&mut [0; 16])));
}

#[test]
fn eof_is_sticky() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    drop(client);
    assert!(l.read_to_end(&server).is_empty());
    assert_eq!((&server).read(&mut [0; 8]).unwrap(), 0);
    assert_eq!((&server).read(&mut [0; 8]).unwrap(), 0);
    let mut v = vec![1];
    assert_eq!(server.recv_msg(&mut v).unwrap(), 0);
    assert!(v.is_empty());
}

#[test]
fn writing_to_a_closed_peer_fails() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    drop(client);
    let e = l.until("a write error", || match (&server).write(b"anyone?") {
        Ok(_) => None,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => Some(e),
    });
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
}

#[test]
fn random_chunks_both_ways_at_once() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    let a = pattern(11, 3_000_000);
    let b = pattern(22, 2_000_000);
    let (mut wa, mut wb, mut ra, mut rb) = (0, 0, Vec::new(), Vec::new());
    let mut rng = 0x1234_5678_u64;
    let mut next = |max: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        1 + (rng as usize) % max
    };
    let mut buf = vec![0u8; 300_000];
    l.until("both streams", || {
        for _ in 0..4 {
            if wa < a.len() {
                let n = next(200_000).min(a.len() - wa);
                if let Ok(k) = (&server).write(&a[wa..wa + n]) {
                    wa += k;
                }
            }
            if wb < b.len() {
                let n = next(100_000).min(b.len() - wb);
                if let Ok(k) = (&client).write(&b[wb..wb + n]) {
                    wb += k;
                }
            }
            let n = next(buf.len());
            if let Ok(k) = (&client).read(&mut buf[..n]) {
                assert!(k > 0, "unexpected end of file");
                ra.extend_from_slice(&buf[..k]);
            }
            let n = next(buf.len());
            if let Ok(k) = (&server).read(&mut buf[..n]) {
                assert!(k > 0, "unexpected end of file");
                rb.extend_from_slice(&buf[..k]);
            }
        }
        (ra.len() == a.len() && rb.len() == b.len()).then_some(())
    });
    assert!(ra == a, "server to client stream differs");
    assert!(rb == b, "client to server stream differs");
}

#[test]
fn dozens_of_pipes_in_one_poll() {
    let mut l = Looper::new();
    let pairs: Vec<_> = (0..40).map(|_| pair(&mut l)).collect();
    let data: Vec<Vec<u8>> = (0..40)
        .map(|i| pattern(i as u64 + 100, 50_000 + i * 1000))
        .collect();
    let mut sent = vec![0usize; 40];
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); 40];
    let mut buf = vec![0u8; 64 * 1024];
    l.until("every pipe's data", || {
        for (i, (server, client)) in pairs.iter().enumerate() {
            let (mut server, mut client) = (server, client);
            while sent[i] < data[i].len() {
                match client.write(&data[i][sent[i]..]) {
                    Ok(n) => sent[i] += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            loop {
                match server.read(&mut buf) {
                    Ok(0) => panic!("end of file"),
                    Ok(n) => got[i].extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        (0..40).all(|i| got[i].len() == data[i].len()).then_some(())
    });
    for i in 0..40 {
        assert!(got[i] == data[i], "pipe {i} delivered different bytes");
    }
}

const MESSAGE_SIZES: [usize; 6] = [1, 4096, 4097, 70_000, 200_000, 3];

#[test]
fn messages_of_every_size_arrive_whole() {
    let mut l = Looper::new();
    let (server, client) = message_pair(&mut l);
    // Client to server, all queued at once (writes coalesce nothing).
    let msgs: Vec<Vec<u8>> = MESSAGE_SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern(i as u64, n))
        .collect();
    // Written and read in turns: the write queue is bounded, so the writer
    // waits for the reader once the pipe and the queue are full.
    let got = through(&mut l, &client, &server, &msgs);
    for (got, m) in got.iter().zip(&msgs) {
        assert_eq!(got.len(), m.len());
        assert!(got == m, "message of {} bytes differs", m.len());
    }
    // Server to client.
    assert!(through(&mut l, &server, &client, &msgs) == msgs);
}

/// Sends `msgs` from `from` (each write must take a whole message) while
/// receiving them at `to` with `recv_msg`; returns what arrived.
fn through(l: &mut Looper, from: &NamedPipe, to: &NamedPipe, msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let (mut sent, mut got, mut buf) = (0, Vec::new(), Vec::new());
    l.until("every message through", || {
        while sent < msgs.len() {
            match (&*from).write(&msgs[sent]) {
                Ok(n) => {
                    assert_eq!(n, msgs[sent].len(), "a message write must take all of it");
                    sent += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        loop {
            match to.recv_msg(&mut buf) {
                Ok(_) => got.push(buf.clone()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv_msg: {e}"),
            }
        }
        (got.len() == msgs.len()).then_some(())
    });
    got
}

#[test]
fn messages_waiting_before_the_first_read() {
    // The messages are in the pipe before the server's first read is issued,
    // so that read finishes at once with ERROR_MORE_DATA (its buffer is
    // smaller than the messages): the rest must still arrive.
    let mut l = Looper::new();
    let name = name();
    let server = message_server(&name);
    let mut file = message_client_file(&name, false);
    let msgs = [pattern(1, 5000), pattern(2, 20_000), pattern(3, 9)];
    for m in &msgs {
        file.write_all(m).unwrap();
    }
    l.add(&server);
    l.connect(&server);
    for m in &msgs {
        assert!(&l.recv_msg(&server) == m);
    }
}

#[test]
fn read_never_mixes_two_messages() {
    let mut l = Looper::new();
    let (server, client) = message_pair(&mut l);
    let msgs: Vec<Vec<u8>> = MESSAGE_SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| vec![i as u8 + 1; n])
        .collect();
    let mut buf = vec![0u8; 1 << 20];
    let mut which = 0;
    let mut left = msgs[0].len();
    let mut sent = 0;
    l.until("all messages through read", || {
        // Written in turns with the reads: the write queue is bounded.
        while sent < msgs.len() {
            match (&client).write(&msgs[sent]) {
                Ok(_) => sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        while which < msgs.len() {
            match (&server).read(&mut buf) {
                Ok(n) => {
                    assert!(
                        n <= left,
                        "a read returned {n} bytes with {left} left in message {which}"
                    );
                    assert!(
                        buf[..n].iter().all(|&b| b == which as u8 + 1),
                        "bytes of two messages in one read"
                    );
                    left -= n;
                    if left == 0 {
                        which += 1;
                        left = msgs.get(which).map_or(0, Vec::len);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => panic!("{e}"),
            }
        }
        Some(())
    });
}

#[test]
fn flush_waits_for_the_data_to_be_written() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    let data = pattern(5, 400_000);
    let off = write_until_blocked(&client, &data);
    // Nobody reads yet: 400 KB cannot all be in a 64 KiB pipe.
    assert!(would_block((&client).flush()));
    let got = l.read_exact(&server, off);
    assert!(got == data[..off]);
    l.flush(&client);
}

#[test]
fn drop_with_io_in_flight_does_not_crash() {
    let mut l = Looper::new();
    for round in 0..30u64 {
        // A pending read, and a pending connect.
        let name = name();
        let listening = NamedPipe::new(&name).unwrap();
        l.add(&listening);
        assert!(would_block(listening.connect()));
        let (server, client) = pair(&mut l);
        assert!(would_block((&server).read(&mut [0; 8])));
        // A pending write that cannot finish: 1 MB into a pipe nobody reads.
        let _ = (&client).write(&pattern(round, 1_000_000));
        match round % 3 {
            0 => {
                drop(listening);
                drop(server);
                drop(client);
            }
            1 => {
                drop(client);
                drop(server);
                drop(listening);
            }
            _ => {
                drop(server);
                drop(listening);
                l.turn(Duration::from_millis(1));
                drop(client);
            }
        }
        l.turn(Duration::from_millis(5));
    }
    // Completions of everything cancelled still arrive and are handled.
    for _ in 0..20 {
        l.turn(Duration::from_millis(10));
    }
}

#[test]
fn drop_with_io_pending_then_drop_the_poll() {
    // Operations whose completions are never dequeued: their memory leaks
    // rather than being freed under the kernel; nothing crashes.
    for _ in 0..10 {
        let mut l = Looper::new();
        let (server, client) = pair(&mut l);
        let _ = (&client).write(&[1u8; 500_000]);
        drop(server);
        drop(client);
        drop(l);
    }
}

#[test]
fn deregister_silences_and_register_again_works() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    l.poll.deregister(&server).unwrap();
    l.write_all(&client, b"quiet");
    for _ in 0..5 {
        let evs = l.turn(Duration::from_millis(20));
        assert!(
            evs.iter().all(|(t, _)| *t != Token(0)),
            "an event after deregister: {evs:?}"
        );
    }
    // Registering again, with the same Poll, resumes events; the data was read ahead.
    l.poll
        .register(&server, Token(50), Ready::readable(), PollOpt::edge())
        .unwrap();
    assert_eq!(l.read_exact(&server, 5), b"quiet");
    l.write_all(&client, b"loud");
    l.event(Token(50), "a readable event under the new token", |r| {
        r.is_readable()
    });
    assert_eq!(l.read_exact(&server, 4), b"loud");
}

#[test]
fn reregister_changes_interest_and_token() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    l.poll
        .reregister(&server, Token(77), Ready::writable(), PollOpt::edge())
        .unwrap();
    l.write_all(&client, b"x");
    for _ in 0..5 {
        let evs = l.turn(Duration::from_millis(20));
        assert!(
            !evs.iter().any(|(t, r)| *t == Token(77) && r.is_readable()),
            "readable without interest"
        );
    }
    l.poll
        .reregister(&server, Token(78), Ready::readable(), PollOpt::level())
        .unwrap();
    l.event(Token(78), "level-triggered readable", |r| r.is_readable());
    assert_eq!(l.read_exact(&server, 1), b"x");
}

#[test]
fn another_poll_is_refused() {
    let mut l = Looper::new();
    let (server, _client) = pair(&mut l);
    let other = Poll::new().unwrap();
    assert!(other
        .register(&server, Token(1), Ready::readable(), PollOpt::edge())
        .is_err());
}

#[test]
fn into_raw_handle_and_back() {
    use std::os::windows::io::{FromRawHandle, IntoRawHandle};
    let mut l = Looper::new();
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    l.add(&server);
    // Never registered: the handle round-trips and works afterwards.
    let raw = client(&name).into_raw_handle();
    // SAFETY: the handle was just given up by the NamedPipe and is owned by nothing else.
    let again = unsafe { NamedPipe::from_raw_handle(raw) };
    l.add(&again);
    l.connect(&server);
    l.write_all(&again, b"still here");
    assert_eq!(l.read_exact(&server, 10), b"still here");
    // Registered once: the handle keeps its completion port for life, so a
    // new NamedPipe made from it cannot be registered again.
    let raw = again.into_raw_handle();
    // SAFETY: as above.
    let third = unsafe { NamedPipe::from_raw_handle(raw) };
    assert!(l
        .poll
        .register(&third, Token(90), Ready::readable(), PollOpt::edge())
        .is_err());
}

#[test]
fn debug_shows_the_state() {
    let mut l = Looper::new();
    let (server, _client) = pair(&mut l);
    let s = format!("{server:?}");
    assert!(s.starts_with("NamedPipe"), "{s}");
}

#[test]
fn new_rejects_bad_names() {
    assert_eq!(
        NamedPipe::new("bad\0name").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn new_is_the_first_instance_of_its_name() {
    let name = name();
    let _first = NamedPipe::new(&name).unwrap();
    let second = NamedPipe::new(&name);
    if wine_version().is_some() {
        assert!(
            second.is_ok(),
            "Wine now enforces FILE_FLAG_FIRST_PIPE_INSTANCE: make this check strict"
        );
        wine_limitation(
            "FILE_FLAG_FIRST_PIPE_INSTANCE is not enforced: a second first instance was created",
        );
    } else {
        assert_eq!(second.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    }
}

#[test]
fn write_all_through_the_trait() {
    let mut l = Looper::new();
    let (mut server, client) = pair(&mut l);
    // `Write for NamedPipe` (not only `&NamedPipe`).
    server.write_all(b"abc").unwrap();
    let mut c = &client;
    let _ = c.flush();
    assert_eq!(l.read_exact(&client, 3), b"abc");
}

#[test]
fn a_connect_that_fails_in_the_background_is_reported_once() {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::System::IO::CancelIoEx;
    let mut l = Looper::new();
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    let token = l.add(&server);
    assert!(would_block(server.connect()));
    // Someone cancels the pending ConnectNamedPipe.
    // SAFETY: a live handle we own; a null OVERLAPPED cancels all its I/O.
    assert!(unsafe { CancelIoEx(server.as_raw_handle(), std::ptr::null()) } != 0);
    l.event(token, "writable after the failed connect", |r| {
        r.is_writable()
    });
    let e = server.take_error().unwrap().expect("the connect's error");
    assert_eq!(e.raw_os_error(), Some(995), "ERROR_OPERATION_ABORTED: {e}");
    assert!(server.take_error().unwrap().is_none(), "reported once");
    // The instance can connect again.
    assert!(would_block(server.connect()));
    let c = client(&name);
    l.add(&c);
    l.connect(&server);
    l.write_all(&c, b"ok");
    assert_eq!(l.read_exact(&server, 2), b"ok");
}

#[test]
fn recv_msg_on_a_byte_pipe_returns_what_is_there() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    l.write_all(&client, b"abc");
    l.flush(&client);
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(l.recv_msg(&server));
    }
    assert_eq!(got, b"abc");
}

/// A client may open a server instance before anyone calls `connect`, as
/// mio-named-pipes 0.1's own tests do: once registered, the instance serves
/// it — the first poll reports it writable, its data is read, its leaving
/// is an end of file — and after `disconnect` the next client needs a
/// `connect`, reported as a writable event.
#[test]
fn a_client_that_opened_before_connect_is_served_once_registered() {
    let mut l = Looper::new();
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    let first = client(&name);
    let s = l.add(&server);
    l.add(&first);
    let ready = l.event(s, "the server's first event", |r| r.is_writable());
    assert_eq!(ready, Ready::writable(), "writable, nothing to read yet");
    l.write_all(&first, b"early");
    l.write_all(&server, b"hello");
    assert_eq!(l.read_exact(&server, 5), b"early");
    assert_eq!(l.read_exact(&first, 5), b"hello");
    server.connect().unwrap();
    drop(first);
    assert!(l.read_to_end(&server).is_empty(), "then end of file");

    server.disconnect().unwrap();
    assert!(would_block(server.connect()));
    let second = client(&name);
    l.add(&second);
    l.event(s, "the next client's connect", |r| r.is_writable());
    server.connect().unwrap();
    l.write_all(&second, b"2nd");
    assert_eq!(l.read_exact(&server, 3), b"2nd", "nothing of the first");
}

/// A client that opened the instance, wrote and left before the server was
/// registered: its data, then end of file.
#[test]
fn a_client_that_came_and_left_before_registration_is_read_to_the_end() {
    let mut l = Looper::new();
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    let mut early = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&name)
        .unwrap();
    early.write_all(b"left this").unwrap();
    drop(early);
    l.add(&server);
    assert_eq!(l.read_to_end(&server), b"left this");
}

/// With no client yet, a registered instance reports nothing, reads
/// nothing and asks nothing again until `connect` (no busy loop, no error
/// for ERROR_PIPE_LISTENING).
#[test]
fn an_instance_with_no_client_stays_silent_until_connect() {
    let mut l = Looper::new();
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    let s = l.add(&server);
    assert!(l.turn(Duration::from_millis(100)).is_empty(), "no event");
    assert!(would_block((&server).read(&mut [0; 4])));
    assert!(would_block((&server).write(b"x")));
    assert!(server.take_error().unwrap().is_none());
    // A client that comes now is served once `connect` is called.
    let c = client(&name);
    l.add(&c);
    assert!(
        !l.turn(Duration::from_millis(100))
            .iter()
            .any(|(t, _)| *t == s),
        "nothing before connect"
    );
    l.connect(&server);
    l.write_all(&c, b"ok");
    assert_eq!(l.read_exact(&server, 2), b"ok");
}

/// Writes a zero-byte message (go-winio's `CloseWrite`).
fn send_empty(l: &mut Looper, mut p: &NamedPipe) {
    l.until("an empty message accepted", || match p.write(&[]) {
        Ok(n) => {
            assert_eq!(n, 0);
            Some(())
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("write: {e}"),
    });
    l.flush(p);
}

#[test]
fn a_zero_byte_message_is_skipped_or_reported_once() {
    let mut l = Looper::new();
    // Skipped by default: the next message comes next.
    let (server, client) = message_pair(&mut l);
    l.write_all(&client, b"a");
    send_empty(&mut l, &client);
    l.write_all(&client, b"b");
    assert_eq!(l.recv_msg(&server), b"a");
    assert_eq!(l.recv_msg(&server), b"b");

    // Reported: one Ok(0) where it was, then reading goes on, and the pipe
    // still works both ways.
    let (server, client) = message_pair(&mut l);
    server.set_report_empty_messages(true);
    l.write_all(&client, b"a");
    send_empty(&mut l, &client);
    l.write_all(&client, b"b");
    assert_eq!(l.recv_msg(&server), b"a");
    assert_eq!(l.recv_msg(&server), b"", "the empty message");
    assert_eq!(l.recv_msg(&server), b"b");
    l.write_all(&server, b"back");
    assert_eq!(l.recv_msg(&client), b"back");

    // A client in byte read mode (as go-winio's and the relay's) sees it
    // through `read` as one Ok(0) too, when nothing follows it yet (as
    // Docker sends it: last). (In byte read mode Wine 8 skips an empty
    // message with data already behind it.)
    let name = name();
    let server = message_server(&name);
    l.add(&server);
    let reader = util::client(&name);
    l.add(&reader);
    l.connect(&server);
    reader.set_report_empty_messages(true);
    l.write_all(&server, b"x");
    send_empty(&mut l, &server);
    let mut got = Vec::new();
    let mut buf = [0u8; 8];
    let mut read = |l: &mut Looper, got: &mut Vec<Vec<u8>>, want: usize| {
        l.until("the next read", || loop {
            match (&reader).read(&mut buf) {
                Ok(n) => {
                    got.push(buf[..n].to_vec());
                    if got.len() == want {
                        return Some(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => panic!("read: {e}"),
            }
        })
    };
    read(&mut l, &mut got, 2);
    // The pipe is still open: more comes after the Ok(0).
    l.write_all(&server, b"y");
    read(&mut l, &mut got, 3);
    assert_eq!(got, [&b"x"[..], b"", b"y"]);
}
