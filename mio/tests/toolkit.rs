//! ServerOptions, ClientOptions, SecurityDescriptor, PipeListener and peer
//! identity, under a real Poll: each option and each error path.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::io::{self, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Poll, PollOpt, Ready, Token};
use mio_named_pipes::{
    ClientOptions, NamedPipe, PipeEnd, PipeListener, PipeMode, SecurityDescriptor, ServerOptions,
    UNLIMITED_INSTANCES,
};
use util::*;

const ERROR_PIPE_BUSY: i32 = 231;

fn would_block<T: std::fmt::Debug>(r: io::Result<T>) -> bool {
    matches!(r, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
}

#[test]
fn bad_options_are_clear_errors_not_panics() {
    let name = name();
    let kind = |o: &ServerOptions| o.create(&name).unwrap_err().kind();
    assert_eq!(
        kind(ServerOptions::new().max_instances(0)),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(ServerOptions::new().max_instances(255)),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            ServerOptions::new()
                .access_inbound(false)
                .access_outbound(false)
        ),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        ServerOptions::new().listen(&name, 0).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        ServerOptions::new()
            .max_instances(2)
            .listen(&name, 3)
            .unwrap_err()
            .kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        ServerOptions::new().create("a\0b").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        ClientOptions::new().open("a\0b").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn bad_sddl_is_invalid_input() {
    for bad in ["not sddl", "D:(A;;GA;;;NOBODY)", "O:XX"] {
        let e = SecurityDescriptor::from_sddl(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        assert!(
            e.to_string().contains(bad),
            "the message names the string: {e}"
        );
    }
    assert_eq!(
        SecurityDescriptor::from_sddl("D:\0").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn a_security_descriptor_applies() {
    let mut l = Looper::new();
    let name = name();
    // Full access for the owner and for everyone in this test process's session.
    let sd = SecurityDescriptor::from_sddl("D:P(A;;GA;;;OW)(A;;GA;;;WD)").unwrap();
    let server = ServerOptions::new()
        .security_descriptor(&sd)
        .create(&name)
        .unwrap();
    drop(sd); // the options keep their own reference
    l.add(&server);
    let client = ClientOptions::new().open(&name).unwrap();
    l.add(&client);
    l.connect(&server);
    l.write_all(&client, b"sd");
    assert_eq!(l.read_exact(&server, 2), b"sd");
}

#[test]
fn max_instances_reached_then_busy() {
    let name = name();
    let opts = ServerOptions::new().max_instances(1).clone();
    let _only = opts.create(&name).unwrap();
    let more = opts.create(&name).unwrap_err();
    assert_eq!(more.raw_os_error(), Some(ERROR_PIPE_BUSY), "{more}");
    let _first = ClientOptions::new().open(&name).unwrap();
    let busy = ClientOptions::new().open(&name).unwrap_err();
    assert_eq!(
        busy.raw_os_error(),
        Some(ERROR_PIPE_BUSY),
        "the OS error as is: {busy}"
    );
}

#[test]
fn not_found() {
    let e = ClientOptions::new().open(name()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    let e = ClientOptions::new()
        .busy_timeout(Some(Duration::from_millis(100)))
        .open(name())
        .unwrap_err();
    assert_eq!(
        e.kind(),
        io::ErrorKind::NotFound,
        "a timeout does not turn NotFound into waiting: {e}"
    );
}

#[test]
fn busy_timeout_expires_as_timed_out() {
    let name = name();
    let _server = ServerOptions::new().create(&name).unwrap();
    let _first = ClientOptions::new().open(&name).unwrap();
    let t = Instant::now();
    let e = ClientOptions::new()
        .busy_timeout(Some(Duration::from_millis(300)))
        .open(&name)
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "gave up after {waited:?}, before the timeout"
    );
}

#[test]
fn busy_timeout_waits_for_a_free_instance() {
    let name = name();
    let _server = ServerOptions::new().create(&name).unwrap();
    let _first = ClientOptions::new().open(&name).unwrap();
    let n = name.clone();
    let maker = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        ServerOptions::new().create(&n).unwrap()
    });
    let second = ClientOptions::new()
        .busy_timeout(Some(Duration::from_secs(10)))
        .open(&name);
    let _instance = maker.join().unwrap();
    second.expect("connected once an instance was free");
}

#[test]
fn squatting_fails() {
    let name = name();
    let _squatter = ServerOptions::new().create(&name).unwrap();
    let mine = ServerOptions::new().first_pipe_instance(true).create(&name);
    let listener = PipeListener::bind(&name);
    if wine_version().is_some() {
        assert!(
            mine.is_ok() && listener.is_ok(),
            "Wine now enforces FILE_FLAG_FIRST_PIPE_INSTANCE: make this strict"
        );
        wine_limitation(
            "FILE_FLAG_FIRST_PIPE_INSTANCE is not enforced, so squatting cannot be shown to fail",
        );
    } else {
        assert_eq!(mine.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            listener.unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
    }
}

#[test]
fn options_show_in_info() {
    let name = name();
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .max_instances(5)
        .in_buffer_size(10_000)
        .out_buffer_size(20_000)
        .write_through(true)
        .reject_remote_clients(false)
        .create(&name)
        .unwrap();
    let info = server.info().unwrap();
    assert_eq!(
        (info.mode, info.end, info.max_instances),
        (PipeMode::Message, PipeEnd::Server, Some(5))
    );
    let client = ClientOptions::new()
        .pipe_mode(PipeMode::Message)
        .open(&name)
        .unwrap();
    let info = client.info().unwrap();
    assert_eq!((info.mode, info.end), (PipeMode::Message, PipeEnd::Client));
    let byte = ServerOptions::new()
        .max_instances(UNLIMITED_INSTANCES)
        .create(util::name())
        .unwrap();
    let info = byte.info().unwrap();
    assert_eq!((info.mode, info.max_instances), (PipeMode::Byte, None));
    assert!(info.in_buffer_size > 0 && info.out_buffer_size > 0);
}

#[test]
fn one_way_pipes() {
    let mut l = Looper::new();
    let name = name();
    let server = ServerOptions::new()
        .access_outbound(false)
        .create(&name)
        .unwrap();
    l.add(&server);
    let client = ClientOptions::new().read(false).open(&name).unwrap();
    l.add(&client);
    l.connect(&server);
    l.write_all(&client, b"in");
    assert_eq!(l.read_exact(&server, 2), b"in");
    // The server cannot write on an inbound pipe: the write, or its flush, fails.
    let r = l.until("the write error", || {
        let r = io::Write::write(&mut &server, b"out").and_then(|_| io::Write::flush(&mut &server));
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            r => Some(r),
        }
    });
    assert!(r.is_err(), "a write on an inbound-only pipe must fail");
}

#[test]
fn message_pipes_end_to_end() {
    let mut l = Looper::new();
    let name = name();
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .create(&name)
        .unwrap();
    l.add(&server);
    let client = ClientOptions::new()
        .pipe_mode(PipeMode::Message)
        .open(&name)
        .unwrap();
    l.add(&client);
    l.connect(&server);
    let sizes = [1usize, 4096, 4097, 70_000, 200_000];
    let msgs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern(i as u64 + 40, n))
        .collect();
    for m in &msgs {
        l.write_all(&client, m);
    }
    for m in &msgs {
        let got = l.recv_msg(&server);
        assert!(
            &got == m,
            "a {}-byte message came back as {} bytes",
            m.len(),
            got.len()
        );
    }
    // And back, read with `read`: never two messages in one call.
    for m in &msgs {
        l.write_all(&server, m);
    }
    let mut buf = vec![0u8; 1 << 20];
    for m in &msgs {
        let mut got = Vec::new();
        while got.len() < m.len() {
            let n = l.until("a read", || match (&client).read(&mut buf) {
                Ok(n) => Some(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Err(e) => panic!("{e}"),
            });
            assert!(got.len() + n <= m.len(), "a read ran into the next message");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(&got == m);
    }
}

#[test]
fn peer_process_ids_are_this_process() {
    let mut l = Looper::new();
    let name = name();
    let server = ServerOptions::new().create(&name).unwrap();
    l.add(&server);
    let client = ClientOptions::new().open(&name).unwrap();
    l.add(&client);
    l.connect(&server);
    let me = std::process::id();
    assert_eq!(server.client_process_id().unwrap(), me);
    assert_eq!(client.server_process_id().unwrap(), me);
    match (server.client_session_id(), client.server_session_id()) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "both ends live in one session"),
        (a, b) if wine_version().is_some() => {
            wine_limitation(&format!("session ids are not available: {a:?}, {b:?}"));
        }
        (a, b) => panic!("session ids: {a:?}, {b:?}"),
    }
}

#[test]
fn impersonation_reverts_on_drop() {
    let mut l = Looper::new();
    let name = name();
    let server = ServerOptions::new().create(&name).unwrap();
    l.add(&server);
    let client = ClientOptions::new().open(&name).unwrap();
    l.add(&client);
    l.connect(&server);
    // On a client end it fails.
    assert!(
        client.impersonate_client().is_err(),
        "a client cannot impersonate"
    );
    // Windows allows it once data was read.
    l.write_all(&client, b"x");
    assert_eq!(l.read_exact(&server, 1), b"x");
    check_impersonation(|| server.impersonate_client());
    check_client_identity(&|f| server.with_client_identity(f));
    // On a client end it fails, and the closure does not run.
    let mut ran = false;
    assert!(client.with_client_identity(|| ran = true).is_err());
    assert!(!ran);
}

#[test]
fn listener_accepts_and_the_pipe_works_with_any_poll() {
    let mut l = Looper::new();
    let name = name();
    let listener = PipeListener::bind(&name).unwrap();
    l.poll
        .register(&listener, Token(500), Ready::readable(), PollOpt::edge())
        .unwrap();
    assert!(would_block(listener.accept()));
    let client = ClientOptions::new().open(&name).unwrap();
    l.add(&client);
    l.write_all(&client, b"early");
    l.event(Token(500), "the listener readable", |r| r.is_readable());
    let server = l.until("accept", || match listener.accept() {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("{e}"),
    });
    // Registered with another Poll entirely: the listener's pipes take any.
    let mut other = Looper::new();
    let t = other.add(&server);
    other.event(t, "readable: data came before accept", |r| r.is_readable());
    assert_eq!(other.read_exact(&server, 5), b"early");
    other.write_all(&server, b"reply");
    assert_eq!(l.read_exact(&client, 5), b"reply");
    assert!(format!("{listener:?}").contains("PipeListener"));
}

#[test]
fn a_client_that_left_before_accept_is_skipped() {
    let mut l = Looper::new();
    let name = name();
    let listener = ServerOptions::new().listen(&name, 2).unwrap();
    l.poll
        .register(&listener, Token(500), Ready::readable(), PollOpt::edge())
        .unwrap();
    // As many as there are instances: each leaves its instance connected
    // to nobody. The listener has room for replacements, so it does not
    // read from those instances: `accept` itself must find out (it asks
    // the pipe) and make them listen again.
    for _ in 0..2 {
        drop(ClientOptions::new().open(&name).unwrap());
    }
    l.turn(Duration::from_millis(300));
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut accepted = 0;
    let mut scans = 0;
    while Instant::now() < deadline {
        l.turn(Duration::from_millis(20));
        scans += 1;
        if listener.accept().is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 0, "a client that left was handed out");
    assert!(scans < 100, "busy loop");
    // A real client still gets through.
    let client = ClientOptions::new()
        .busy_timeout(Some(Duration::from_secs(10)))
        .open(&name)
        .unwrap();
    l.add(&client);
    l.write_all(&client, b"real");
    let server = l.until("accept", || listener.accept().ok());
    l.add(&server);
    assert_eq!(l.read_exact(&server, 4), b"real");
}

#[test]
fn a_listener_takes_100_clients_at_once() {
    const CLIENTS: usize = 100;
    const THREADS: usize = 10;
    let name = name();
    let listener = PipeListener::bind(&name).unwrap();
    let poll = Poll::new().unwrap();
    poll.register(
        &listener,
        Token(1_000_000),
        Ready::readable(),
        PollOpt::edge(),
    )
    .unwrap();
    // Client threads: each opens its share at once, sends a distinct stream,
    // and checks the echo.
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            let name = name.clone();
            thread::spawn(move || {
                let mut l = Looper::new();
                let pipes: Vec<NamedPipe> = (0..CLIENTS / THREADS)
                    .map(|_| {
                        let p = ClientOptions::new()
                            .busy_timeout(Some(Duration::from_secs(60)))
                            .open(&name)
                            .unwrap();
                        l.add(&p);
                        p
                    })
                    .collect();
                for (i, p) in pipes.iter().enumerate() {
                    let data = pattern((t * 1000 + i) as u64, 20_000);
                    l.write_all(p, &data);
                    assert!(
                        l.read_exact(p, data.len()) == data,
                        "client {t}/{i}: echo differs"
                    );
                }
            })
        })
        .collect();
    // The server: accept everything, echo everything.
    let mut events = mio::Events::with_capacity(1024);
    // Each connection, what it still has to echo, and whether its client left.
    let mut conns: Vec<(NamedPipe, Vec<u8>, bool)> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut finished = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while finished < CLIENTS {
        assert!(
            Instant::now() < deadline,
            "timed out with {} accepted, {finished} finished",
            conns.len()
        );
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        while let Ok(p) = listener.accept() {
            poll.register(&p, Token(conns.len()), Ready::all(), PollOpt::edge())
                .unwrap();
            conns.push((p, Vec::new(), false));
        }
        for (p, out, gone) in conns.iter_mut() {
            let mut pr: &NamedPipe = p;
            loop {
                while !out.is_empty() {
                    match io::Write::write(&mut pr, out) {
                        Ok(n) => drop(out.drain(..n)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                if !out.is_empty() {
                    break;
                }
                match pr.read(&mut buf) {
                    Ok(0) => {
                        finished += 1;
                        *gone = true;
                        break;
                    }
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        conns.retain(|(_, _, gone)| !gone);
    }
    for c in clients {
        c.join().expect("a client failed");
    }
}

/// ServerOptions instances serve a client that opened them before any
/// `connect` too, message boundaries kept.
#[test]
fn a_message_client_that_opened_before_connect_is_served() {
    use std::os::windows::io::{FromRawHandle, IntoRawHandle};
    let mut l = Looper::new();
    let name = name();
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .create(&name)
        .unwrap();
    let file = message_client_file(&name, true);
    // SAFETY: an overlapped pipe handle owned by nothing else.
    let client = unsafe { NamedPipe::from_raw_handle(file.into_raw_handle()) };
    let s = l.add(&server);
    l.add(&client);
    l.event(s, "the server's first event", |r| r.is_writable());
    for m in [&b"one"[..], &[7u8; 9000][..], b"three"] {
        l.write_all(&client, m);
    }
    assert_eq!(l.recv_msg(&server), b"one");
    assert_eq!(l.recv_msg(&server), vec![7u8; 9000]);
    assert_eq!(l.recv_msg(&server), b"three");
    server.connect().unwrap();
}

/// On a message pipe an empty `write` is an empty message (what some peers
/// send to mark the end of a stream); on a byte pipe it sends nothing.
#[test]
fn an_empty_write_sends_an_empty_message() {
    let mut l = Looper::new();
    let name = name();
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .create(&name)
        .unwrap();
    l.add(&server);
    let mut file = message_client_file(&name, false);
    l.connect(&server);
    assert_eq!((&server).write(b"").unwrap(), 0);
    l.write_all(&server, b"end");
    l.flush(&server);
    let mut buf = [0u8; 16];
    assert_eq!(file.read(&mut buf).unwrap(), 0, "the empty message");
    assert_eq!(file.read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"end");
}
