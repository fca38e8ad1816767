//! The contract of `NamedPipe`, end to end under a real Poll.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::io::{self, Read, Write};

use mio_named_pipes::NamedPipe;
use util::*;

fn would_block<T: std::fmt::Debug>(r: io::Result<T>) -> bool {
    matches!(r, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
}

#[test]
fn everything_would_block_until_registered() {
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    let client = client(&name);
    assert!(would_block(server.connect()));
    assert!(would_block((&server).read(&mut [0; 4])));
    assert!(would_block((&client).read(&mut [0; 4])));
    assert!(would_block((&client).write(b"x")));
    let mut v = Vec::new();
    assert!(would_block(client.recv_msg(&mut v)));
}

#[test]
fn connect_after_client_opens() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    l.write_all(&client, b"hello");
    assert_eq!(l.read_exact(&server, 5), b"hello");
    l.write_all(&server, b"world!");
    assert_eq!(l.read_exact(&client, 6), b"world!");
}

#[test]
fn connect_before_client_opens_reports_writable() {
    let mut l = Looper::new();
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    let token = l.add(&server);
    assert!(would_block(server.connect()));
    assert!(would_block(server.connect()), "still pending");
    let client = client(&name);
    l.add(&client);
    l.event(token, "a writable event for the connect", |r| {
        r.is_writable()
    });
    server.connect().unwrap();
    l.write_all(&server, b"hi");
    assert_eq!(l.read_exact(&client, 2), b"hi");
}

#[test]
fn write_then_drop_delivers_everything_then_eof() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    let data = pattern(1, 300_000);
    let accepted = write_until_blocked(&client, &data);
    drop(client);
    let got = l.read_to_end(&server);
    assert_eq!(got.len(), accepted);
    assert!(got == data[..accepted]);
}
