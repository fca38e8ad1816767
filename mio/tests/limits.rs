//! The per-pipe buffer limits of `ServerOptions` and `ClientOptions`.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::io::{ErrorKind, Read, Write};

use mio_named_pipes::{ClientOptions, ServerOptions, DEFAULT_MAX_READ, DEFAULT_WRITE_QUEUE};
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
