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
    let (mut sent, mut got) = (0, Vec::new());
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < data.len() {
        let mut progress = false;
        while sent < data.len() {
            match (&client).write(&data[sent..]) {
                Ok(n) => {
                    assert!(n > 0 && n <= WRITE_LIMIT, "one write took {n} bytes");
                    sent += n;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        loop {
            match (&server).read(&mut buf) {
                Ok(0) => panic!("end of file after {} bytes", got.len()),
                Ok(n) => {
                    assert!(n <= READ_LIMIT, "one read returned {n} bytes");
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
}
