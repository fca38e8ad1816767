//! PipeListener under a real Poll: readiness for level- and edge-triggered
//! registrations, replacement of connected instances before `accept`, the
//! bound on instances, clients that leave, and dropping with connects pending.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use mio::{PollOpt, Ready, Token};
use mio_named_pipes::{ClientOptions, NamedPipe, PipeListener, ServerOptions};
use util::*;

const LISTENER: Token = Token(500);
const ERROR_PIPE_BUSY: i32 = 231;

/// Polls for `wait` and counts the listener's events.
fn listener_events(l: &mut Looper, wait: Duration) -> usize {
    let deadline = Instant::now() + wait;
    let mut n = 0;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        n += l.turn(left).iter().filter(|(t, _)| *t == LISTENER).count();
    }
    n
}

fn accept_now(listener: &PipeListener) -> Option<NamedPipe> {
    match listener.accept() {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("accept: {e}"),
    }
}

#[test]
fn level_triggered_accepts_one_per_event() {
    let mut l = Looper::new();
    let name = name();
    let listener = ServerOptions::new().listen(&name, 4).unwrap();
    l.poll
        .register(&listener, LISTENER, Ready::readable(), PollOpt::level())
        .unwrap();
    let clients: Vec<NamedPipe> = (0..3)
        .map(|_| ClientOptions::new().open(&name).unwrap())
        .collect();
    // One accept per event, as level-triggered code may do: the listener
    // stays readable while connections wait, so all three come out.
    let mut accepted = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while accepted.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "only {} of 3 accepted: the listener stopped reporting waiting connections",
            accepted.len()
        );
        if l.turn(Duration::from_millis(100))
            .iter()
            .any(|(t, _)| *t == LISTENER)
        {
            if let Some(p) = accept_now(&listener) {
                accepted.push(p);
            }
        }
    }
    // All taken: the level-triggered registration goes quiet.
    assert!(accept_now(&listener).is_none());
    assert_eq!(
        listener_events(&mut l, Duration::from_millis(200)),
        0,
        "readable with nothing to accept"
    );
    drop(clients);
}

#[test]
fn edge_triggered_gets_an_event_for_each_new_connection() {
    let mut l = Looper::new();
    let name = name();
    let listener = ServerOptions::new().listen(&name, 2).unwrap();
    l.poll
        .register(&listener, LISTENER, Ready::readable(), PollOpt::edge())
        .unwrap();
    listener_events(&mut l, Duration::from_millis(50));
    assert!(accept_now(&listener).is_none());
    let mut keep = Vec::new();
    for round in 0..5 {
        // Drained: WouldBlock. A new client must bring a new event.
        assert!(accept_now(&listener).is_none(), "round {round}");
        keep.push(
            ClientOptions::new()
                .busy_timeout(Some(PATIENCE))
                .open(&name)
                .unwrap(),
        );
        l.event(LISTENER, "the listener readable again", |r| r.is_readable());
        let p = l.until("accept", || accept_now(&listener));
        keep.push(p);
    }
}

#[test]
fn a_connected_instance_is_replaced_before_accept() {
    // One pending instance. A client connects and is not accepted; a second
    // client must still find an instance listening.
    let mut l = Looper::new();
    let name = name();
    let listener = ServerOptions::new().listen(&name, 1).unwrap();
    l.poll
        .register(&listener, LISTENER, Ready::readable(), PollOpt::edge())
        .unwrap();
    let first = ClientOptions::new().open(&name).unwrap();
    l.event(LISTENER, "the first connection", |r| r.is_readable());
    let second = ClientOptions::new()
        .open(&name)
        .expect("an instance listens again before accept (no ERROR_PIPE_BUSY)");
    // Both come out of accept, and each is the right peer.
    let mut l2 = Looper::new();
    l2.add(&first);
    l2.add(&second);
    l2.write_all(&first, b"first");
    l2.write_all(&second, b"second");
    let mut got = Vec::new();
    while got.len() < 2 {
        let p = l.until("accept", || accept_now(&listener));
        l.add(&p);
        got.push(p);
    }
    let mut heard: Vec<Vec<u8>> = Vec::new();
    for p in &got {
        let mut msg = l.read_exact(p, 5);
        if msg == b"secon" {
            msg.extend(l.read_exact(p, 1));
        }
        heard.push(msg);
    }
    heard.sort();
    assert_eq!(heard, vec![b"first".to_vec(), b"second".to_vec()]);
}

#[test]
fn connections_never_accepted_are_bounded() {
    // pending 1: at most 2 instances in all. Two clients take them; the third
    // is busy until one is accepted — and then gets in.
    let mut l = Looper::new();
    let name = name();
    let listener = ServerOptions::new().listen(&name, 1).unwrap();
    l.poll
        .register(&listener, LISTENER, Ready::readable(), PollOpt::edge())
        .unwrap();
    let _a = ClientOptions::new().open(&name).unwrap();
    l.event(LISTENER, "the first connection", |r| r.is_readable());
    let _b = ClientOptions::new().open(&name).unwrap();
    l.event(LISTENER, "the second connection", |r| r.is_readable());
    // Let the listener settle, then the third finds no instance.
    listener_events(&mut l, Duration::from_millis(100));
    let e = ClientOptions::new().open(&name).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(ERROR_PIPE_BUSY), "{e}");
    let n = name.clone();
    let third = thread::spawn(move || {
        ClientOptions::new()
            .busy_timeout(Some(PATIENCE))
            .open(&n)
            .map(drop)
    });
    let accepted = l.until("accept", || accept_now(&listener));
    third
        .join()
        .unwrap()
        .expect("a listening instance once one was accepted");
    drop(accepted);
}

#[test]
fn clients_that_left_are_skipped_without_a_busy_loop() {
    let mut l = Looper::new();
    let name = name();
    let listener = ServerOptions::new().listen(&name, 2).unwrap();
    l.poll
        .register(&listener, LISTENER, Ready::readable(), PollOpt::edge())
        .unwrap();
    for _ in 0..6 {
        drop(
            ClientOptions::new()
                .busy_timeout(Some(PATIENCE))
                .open(&name)
                .unwrap(),
        );
    }
    // Four instances at most: clients 5 and 6 get in only because the
    // listener, out of room and short of listening instances, reads from
    // the waiting ones, learns on its own, without `accept`, that their
    // clients left (end of file) and makes them listen again.
    listener_events(&mut l, Duration::from_millis(300));
    // Nothing is handed out then...
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        l.turn(Duration::from_millis(20));
        assert!(
            accept_now(&listener).is_none(),
            "a client that left was handed out"
        );
    }
    // ... and then all is quiet: no event storm for nothing to accept.
    let events = listener_events(&mut l, Duration::from_millis(300));
    assert!(events <= 1, "{events} events with nothing to accept");
    // A real client still gets through, and the instances listen again.
    let client = ClientOptions::new().open(&name).unwrap();
    l.add(&client);
    l.write_all(&client, b"real");
    let server = l.until("accept", || accept_now(&listener));
    l.add(&server);
    assert_eq!(l.read_exact(&server, 4), b"real");
}

#[test]
fn dropping_a_listener_with_connects_pending() {
    let name = name();
    for _ in 0..20 {
        let listener = ServerOptions::new().listen(&name, 8).unwrap();
        drop(listener);
    }
    // The name is free again soon: the instances close once their
    // cancelled connects complete, on the listener's thread.
    let deadline = Instant::now() + PATIENCE;
    loop {
        match ClientOptions::new().open(&name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            other => assert!(
                Instant::now() < deadline,
                "an instance outlived its listener: {other:?}"
            ),
        }
        thread::sleep(Duration::from_millis(10));
    }
    // A pipe handed out outlives its listener, and still works.
    let mut l = Looper::new();
    let listener = PipeListener::bind(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    let server = l.until("accept", || accept_now(&listener));
    drop(listener);
    l.add(&server);
    l.add(&client);
    l.write_all(&client, b"after");
    assert_eq!(l.read_exact(&server, 5), b"after");
    l.write_all(&server, b"reply");
    assert_eq!(l.read_exact(&client, 5), b"reply");
}

#[test]
fn a_listener_is_send_and_sync_and_accepts_from_another_thread() {
    let name = name();
    let listener = std::sync::Arc::new(PipeListener::bind(&name).unwrap());
    let l2 = listener.clone();
    let acceptor = thread::spawn(move || {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(p) = accept_now(&l2) {
                return p;
            }
            assert!(Instant::now() < deadline, "no accept");
            thread::sleep(Duration::from_millis(10));
        }
    });
    let client = ClientOptions::new().open(&name).unwrap();
    let server = acceptor.join().unwrap();
    assert_eq!(server.client_process_id().unwrap(), std::process::id());
    drop(client);
}

#[test]
fn back_to_back_openers_within_the_limit() {
    // Clients opening as fast as one thread can, 2 x pending of them (the
    // limit), nobody accepting meanwhile. The first `pending` always get in
    // at once; the others arrive before the listener's thread has created
    // the replacements, and may meet ERROR_PIPE_BUSY — the figure printed
    // here is the one the README gives. Every one gets in with busy_timeout.
    // The cause: the replacements trail the connects. Openers 20 ms apart
    // show it (no busy is expected then, but timing is not asserted).
    const PENDING: usize = 4;
    const ROUNDS: usize = 20;
    for gap in [Duration::ZERO, Duration::from_millis(20)] {
        let (busy, attempts) = openers(PENDING, ROUNDS, gap);
        println!(
            "back-to-back openers, pending {PENDING}, {} per round, {gap:?} apart: {busy} of {attempts} met ERROR_PIPE_BUSY at once (none of the first {PENDING} of a round)",
            2 * PENDING
        );
    }
}

/// Opens `2 * pending` clients `gap` apart, `rounds` times, each round on a
/// new listener nobody accepts from; returns (busy, attempts).
fn openers(pending: usize, rounds: usize, gap: Duration) -> (usize, usize) {
    let mut busy = 0;
    let mut attempts = 0;
    for _ in 0..rounds {
        let name = name();
        let listener = ServerOptions::new().listen(&name, pending).unwrap();
        let mut clients = Vec::new();
        let mut refused = 0;
        for i in 0..2 * pending {
            if !gap.is_zero() {
                thread::sleep(gap);
            }
            attempts += 1;
            match ClientOptions::new().open(&name) {
                Ok(c) => clients.push(c),
                Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => {
                    assert!(i >= pending, "client {i} of the first {pending} met busy");
                    refused += 1;
                }
                Err(e) => panic!("open: {e}"),
            }
        }
        busy += refused;
        for _ in 0..refused {
            let c = ClientOptions::new()
                .busy_timeout(Some(PATIENCE))
                .open(&name)
                .expect("a client that waits gets in");
            clients.push(c);
        }
        assert_eq!(clients.len(), 2 * pending);
        drop(listener);
    }
    (busy, attempts)
}
