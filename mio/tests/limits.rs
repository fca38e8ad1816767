//! The per-pipe buffer limits of `ServerOptions` and `ClientOptions`.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::io::{ErrorKind, Read, Write};

use mio_named_pipes::{
    ClientOptions, NamedPipe, PipeMode, ServerOptions, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_READ,
    DEFAULT_WRITE_QUEUE,
};
use util::*;

#[test]
fn limits_below_4096_are_refused() {
    let name = name();
    let e = ServerOptions::new()
        .max_read(4095)
        .create(&name)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = ServerOptions::new()
        .write_queue(0)
        .listen(&name, 1)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let _server = ServerOptions::new().create(&name).unwrap();
    let e = ClientOptions::new()
        .write_queue(100)
        .open(&name)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // The defaults themselves, and the smallest values, are accepted.
    let _defaults = ServerOptions::new()
        .max_read(DEFAULT_MAX_READ)
        .write_queue(DEFAULT_WRITE_QUEUE)
        .create(&name)
        .unwrap();
    let _smallest = ClientOptions::new()
        .max_read(4096)
        .write_queue(4096)
        .open(&name)
        .unwrap();
}

#[test]
fn writes_and_reads_stay_within_the_limits_and_everything_arrives() {
    const WRITE_LIMIT: usize = 16 * 1024;
    const READ_LIMIT: usize = 8 * 1024;
    let mut l = Looper::new();
    let name = name();
    let server = ServerOptions::new()
        .max_read(READ_LIMIT)
        .create(&name)
        .unwrap();
    l.add(&server);
    let client = ClientOptions::new()
        .write_queue(WRITE_LIMIT)
        .open(&name)
        .unwrap();
    l.add(&client);
    l.connect(&server);
    let data = pattern(7, 1 << 20);
    let (largest_write, largest_read) = stream(&mut l, &client, &server, &data, 64 * 1024);
    assert!(
        largest_write <= WRITE_LIMIT,
        "one write took {largest_write} bytes"
    );
    assert!(
        largest_read <= READ_LIMIT,
        "one read returned {largest_read} bytes"
    );
}

#[test]
fn default_limits_grow_while_one_pipe_streams() {
    // Neither limit set: a lone streaming pipe takes larger writes and
    // makes larger reads than the defaults, up to 1 MiB and 256 KiB (the
    // process-wide budget has room: no other test of this binary streams
    // with the defaults).
    const GROWN_QUEUE: usize = 1024 * 1024;
    const GROWN_READ: usize = 256 * 1024;
    let mut l = Looper::new();
    let name = name();
    let server = ServerOptions::new().create(&name).unwrap();
    l.add(&server);
    let client = ClientOptions::new().open(&name).unwrap();
    l.add(&client);
    l.connect(&server);
    let data = pattern(9, 16 << 20);
    let (largest_write, largest_read) = stream(&mut l, &client, &server, &data, 2 * GROWN_READ);
    println!("largest write {largest_write}, largest read {largest_read}");
    assert!(
        (DEFAULT_WRITE_QUEUE + 1..=GROWN_QUEUE).contains(&largest_write),
        "the write queue grew, within 1 MiB: {largest_write}"
    );
    assert!(
        (DEFAULT_MAX_READ + 1..=GROWN_READ).contains(&largest_read),
        "reads grew, within 256 KiB: {largest_read}"
    );
}

/// Writes `data` on `client` and reads it on `server` (reads of up to
/// `read_buf` bytes), turning `l` while neither moves; checks that every
/// byte arrives in order. Returns the largest write accepted at once and
/// the largest read.
fn stream(
    l: &mut Looper,
    client: &mio_named_pipes::NamedPipe,
    server: &mio_named_pipes::NamedPipe,
    data: &[u8],
    read_buf: usize,
) -> (usize, usize) {
    let (mut sent, mut got) = (0, Vec::new());
    let (mut largest_write, mut largest_read) = (0, 0);
    let mut buf = vec![0u8; read_buf];
    while got.len() < data.len() {
        let mut progress = false;
        while sent < data.len() {
            match (&*client).write(&data[sent..]) {
                Ok(n) => {
                    assert!(n > 0, "a write took nothing");
                    largest_write = largest_write.max(n);
                    sent += n;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        loop {
            match (&*server).read(&mut buf) {
                Ok(0) => panic!("end of file after {} bytes", got.len()),
                Ok(n) => {
                    largest_read = largest_read.max(n);
                    got.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        if !progress {
            l.turn(std::time::Duration::from_millis(100));
        }
    }
    assert!(got == data, "every byte arrives, in order");
    (largest_write, largest_read)
}

/// The next message, or the error of the read that would have returned it.
fn next_message(l: &mut Looper, p: &NamedPipe) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    l.until("a message or an error", || match p.recv_msg(&mut buf) {
        Ok(_) => Some(Ok(())),
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(e) => Some(Err(e)),
    })
    .map(|()| buf)
}

/// A message server with the cap `max_message`, registered and connected to
/// a blocking message-mode client made with plain Win32 calls.
fn capped_server(l: &mut Looper, max_message: usize) -> (NamedPipe, std::fs::File) {
    let name = name();
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .max_message(max_message)
        .create(&name)
        .unwrap();
    l.add(&server);
    let client = message_client_file(&name, false);
    l.connect(&server);
    (server, client)
}

#[test]
fn a_message_over_max_message_fails_its_read_and_the_next_one_arrives() {
    let mut l = Looper::new();
    let (server, mut client) = capped_server(&mut l, 1000);
    client.write_all(&pattern(1, 1001)).unwrap();
    client.write_all(b"next").unwrap();
    client.write_all(&pattern(2, 1000)).unwrap();
    let e = next_message(&mut l, &server).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("max_message (1000 bytes)"), "{e}");
    assert_eq!(next_message(&mut l, &server).unwrap(), b"next");
    assert_eq!(
        next_message(&mut l, &server).unwrap(),
        pattern(2, 1000),
        "a message of the cap itself arrives"
    );
    // Read with `read`, the same.
    client.write_all(&pattern(3, 5000)).unwrap();
    client.write_all(b"again").unwrap();
    let mut buf = [0u8; 100];
    let e = l.until("an error", || match (&server).read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        r => Some(r),
    });
    assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidData);
    assert_eq!(next_message(&mut l, &server).unwrap(), b"again");
}

#[test]
fn a_peer_sending_a_1_gib_message_cannot_exhaust_the_process() {
    const GIB: usize = 1 << 30;
    let mut l = Looper::new();
    let (server, client) = capped_server(&mut l, DEFAULT_MAX_MESSAGE);
    // The peer: one raw message-mode WriteFile of 1 GiB, then a small one.
    let writer = std::thread::spawn(move || {
        let mut client = client;
        let big = vec![0x5A; GIB];
        client.write_all(&big).unwrap();
        drop(big);
        client.write_all(b"after").unwrap();
        client
    });
    let e = next_message(&mut l, &server).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("max_message"), "{e}");
    assert_eq!(next_message(&mut l, &server).unwrap(), b"after");
    let _client = writer.join().unwrap();
}

#[test]
fn limits_over_1_gib_are_refused_not_a_panic() {
    let name = name();
    for bytes in [usize::MAX, (1 << 30) + 1] {
        let e = ServerOptions::new()
            .max_read(bytes)
            .create(&name)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = ServerOptions::new()
            .write_queue(bytes)
            .listen(&name, 1)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    let _server = ServerOptions::new()
        .max_read(1 << 30)
        .write_queue(1 << 30)
        .max_message(usize::MAX)
        .create(&name)
        .unwrap();
    let e = ClientOptions::new()
        .max_read(usize::MAX)
        .open(&name)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}
