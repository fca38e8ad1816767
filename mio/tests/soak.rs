//! Peers that die and peers that come and go: a child process (this test
//! binary itself) killed mid-transfer as client or as server, and 2,000
//! reconnects of one server instance, with every byte checked and the
//! process's handles counted before and after. The tests of this binary run
//! one at a time, so that one's handles never show in another's count.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::io::{self, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mio_named_pipes::NamedPipe;
use util::resources::{handles_but_threads, Handles};
use util::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const ROLE: &str = "MIO_NAMED_PIPES_CHILD_ROLE";
const PIPE: &str = "MIO_NAMED_PIPES_CHILD_PIPE";

/// Byte `i` of the stream a child sends.
fn stream_byte(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9) >> 13) as u8
}

/// The child's side: streams bytes to its peer until it is killed.
#[test]
#[ignore = "the child process of the kill tests, which run it; not a test alone"]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let name = std::env::var(PIPE).unwrap();
    let mut l = Looper::new();
    let pipe = match role.as_str() {
        "server" => {
            let server = NamedPipe::new(&name).unwrap();
            l.add(&server);
            l.connect(&server);
            server
        }
        _ => {
            let c = client(&name);
            l.add(&c);
            c
        }
    };
    let mut pos = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = stream_byte(pos + i as u64);
        }
        l.write_all(&pipe, &chunk);
        pos += chunk.len() as u64;
    }
}

fn spawn_child(role: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child", "--nocapture"])
        .env(ROLE, role)
        .env(PIPE, name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the test binary as a child")
}

/// Reads the child's stream, checking every byte, until `until` bytes came
/// or (with `until` None) end of file. Returns how many bytes came.
fn read_stream(l: &mut Looper, mut p: &NamedPipe, from: u64, until: Option<u64>) -> u64 {
    let mut pos = from;
    let mut buf = vec![0u8; 64 * 1024];
    l.until("the child's stream", || loop {
        if until.is_some_and(|u| pos >= u) {
            return Some(());
        }
        match p.read(&mut buf) {
            Ok(0) if until.is_none() => return Some(()),
            Ok(0) => panic!("end of file after {pos} bytes"),
            Ok(k) => {
                for (i, &b) in buf[..k].iter().enumerate() {
                    assert_eq!(b, stream_byte(pos + i as u64), "byte {}", pos + i as u64);
                }
                pos += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => panic!("read after {pos} bytes: {e}"),
        }
    });
    pos
}

/// Waits until the process holds the handles of `before` (or a while passed).
fn settle(before: &Handles) -> Handles {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = handles_but_threads();
        if now.grew(before).is_empty() || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_client_killed_mid_transfer() {
    let _s = serial();
    let before = handles_but_threads();
    {
        let mut l = Looper::new();
        let name = name();
        let server = NamedPipe::new(&name).unwrap();
        l.add(&server);
        let mut child = spawn_child("client", &name);
        l.connect(&server);
        let got = read_stream(&mut l, &server, 0, Some(1 << 20));
        child.kill().unwrap();
        child.wait().unwrap();
        // What the child wrote before it died, then end of file.
        let total = read_stream(&mut l, &server, got, None);
        assert!(total >= 1 << 20);
        // A write to the dead client fails as users match it.
        let e = l.until("a write error", || match (&server).write(b"x") {
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => Some(e),
        });
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
        // The instance serves the next client (listening again once
        // `connect` is called).
        server.disconnect().unwrap();
        assert!(matches!(server.connect(), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
        let next = client(&name);
        l.add(&next);
        l.connect(&server);
        l.write_all(&next, b"next one");
        assert_eq!(l.read_exact(&server, 8), b"next one");
    }
    let after = settle(&before);
    assert!(
        after.grew(&before).is_empty(),
        "handles grew: {:?}",
        after.growth(&before)
    );
}

#[test]
fn a_server_killed_mid_transfer() {
    let _s = serial();
    let before = handles_but_threads();
    {
        let mut l = Looper::new();
        let name = name();
        let mut child = spawn_child("server", &name);
        let deadline = Instant::now() + PATIENCE;
        let c = loop {
            match open_client(&name) {
                Ok(c) => break c,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("the child's server never came: {e}"),
            }
        };
        l.add(&c);
        let got = read_stream(&mut l, &c, 0, Some(1 << 20));
        child.kill().unwrap();
        child.wait().unwrap();
        let total = read_stream(&mut l, &c, got, None);
        assert!(total >= 1 << 20);
        let e = l.until("a write error", || match (&c).write(b"x") {
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => Some(e),
        });
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    }
    let after = settle(&before);
    assert!(
        after.grew(&before).is_empty(),
        "handles grew: {:?}",
        after.growth(&before)
    );
}

#[test]
fn two_thousand_reconnects_of_one_instance() {
    let _s = serial();
    let mut l = Looper::new();
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    l.add(&server);
    let before = handles_but_threads();
    for i in 0..2000u64 {
        let c = client(&name);
        l.add(&c);
        l.connect(&server);
        let ask = pattern(i, 1 + (i as usize * 37) % 3000);
        l.write_all(&c, &ask);
        assert!(
            l.read_exact(&server, ask.len()) == ask,
            "cycle {i}: request"
        );
        let answer = pattern(i ^ 0xFFFF, 1 + (i as usize * 91) % 3000);
        l.write_all(&server, &answer);
        assert!(l.read_exact(&c, answer.len()) == answer, "cycle {i}: reply");
        drop(c);
        // Nothing else of that client: end of file, no stale byte.
        assert!(l.read_to_end(&server).is_empty(), "cycle {i}: stale bytes");
        server.disconnect().unwrap();
        // Listening again, for the next client.
        assert!(matches!(server.connect(), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
    }
    let after = settle(&before);
    assert_eq!(
        after,
        before,
        "handles grew over 2,000 reconnects: {:?}",
        after.growth(&before)
    );
}
