//! Cleanup: what a dropped pipe leaves behind, in every drop order; the
//! linger limit; handles that are not pipes; errors users match on.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::{FromRawHandle, IntoRawHandle};
use std::time::{Duration, Instant};

use mio::{PollOpt, Ready, Token};
use mio_named_pipes::{ClientOptions, NamedPipe, ServerOptions, DEFAULT_LINGER};
use util::*;

#[test]
fn a_regular_file_is_refused() {
    let path = std::env::temp_dir().join(format!("mio-named-pipes-file-{}", std::process::id()));
    std::fs::write(&path, b"the first bytes of a file").unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(FILE_FLAG_OVERLAPPED)
        .open(&path)
        .unwrap();
    // SAFETY: an overlapped handle owned by nothing else (just not a pipe).
    let not_a_pipe = unsafe { NamedPipe::from_raw_handle(file.into_raw_handle()) };
    let l = Looper::new();
    let e = l
        .poll
        .register(&not_a_pipe, Token(0), Ready::all(), PollOpt::edge())
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("not a pipe"), "{e}");
    drop(not_a_pipe);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"the first bytes of a file",
        "the file is untouched"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_write_after_the_server_disconnected_is_broken_pipe() {
    let mut l = Looper::new();
    let (server, client) = pair(&mut l);
    server.disconnect().unwrap();
    let e = l.until("a write error", || match (&client).write(b"anyone?") {
        Ok(_) => None,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => Some(e),
    });
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    // The OS error stays visible.
    assert!(e.to_string().contains("os error 233"), "{e}");
}

/// A server with `linger` and a 1 MiB write queue (so that more than 1 MiB
/// can be pending when it is dropped), its connected client, both
/// registered with `l`.
fn pair_with_linger(l: &mut Looper, linger: Duration) -> (NamedPipe, NamedPipe) {
    let name = name();
    let server = ServerOptions::new()
        .linger(linger)
        .write_queue(1 << 20)
        .create(&name)
        .unwrap();
    l.add(&server);
    let client = client(&name);
    l.add(&client);
    l.connect(&server);
    (server, client)
}

#[test]
fn the_linger_limit_is_settable_and_defaults_to_five_seconds() {
    assert_eq!(DEFAULT_LINGER, Duration::from_secs(5));
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    assert_eq!(server.linger(), DEFAULT_LINGER);
    server.set_linger(Duration::from_millis(250));
    assert_eq!(server.linger(), Duration::from_millis(250));
    let client = ClientOptions::new()
        .linger(Duration::ZERO)
        .open(&name)
        .unwrap();
    assert_eq!(client.linger(), Duration::ZERO);
}

#[test]
fn data_written_before_the_drop_reaches_a_peer_that_reads() {
    let mut l = Looper::new();
    let (server, client) = pair_with_linger(&mut l, DEFAULT_LINGER);
    let data = pattern(7, 4 << 20);
    let accepted = write_until_blocked(&server, &data);
    assert!(accepted > 1 << 20, "accepted {accepted}");
    drop(server);
    // Everything accepted arrives, then end of file, as after a TCP close.
    let got = l.read_to_end(&client);
    assert_eq!(got.len(), accepted);
    assert!(
        got == data[..accepted],
        "the data arrives whole and in order"
    );
}

#[test]
fn a_peer_that_does_not_read_sees_end_of_file_after_the_linger_limit() {
    for linger in [Duration::ZERO, Duration::from_millis(300)] {
        let mut l = Looper::new();
        let (server, client) = pair_with_linger(&mut l, linger);
        let data = pattern(8, 4 << 20);
        let accepted = write_until_blocked(&server, &data);
        assert!(accepted > 1 << 20, "accepted {accepted}");
        let dropped = Instant::now();
        drop(server);
        // The client reads nothing until well after the limit.
        while dropped.elapsed() < linger + Duration::from_millis(700) {
            l.turn(Duration::from_millis(50));
        }
        // What reached the pipe before the limit, then end of file: the
        // server's handle is closed although its writes were never read.
        let got = l.read_to_end(&client);
        assert!(
            got.len() < accepted,
            "linger {linger:?}: the pending write was cancelled, yet all {accepted} bytes came"
        );
        assert!(got == data[..got.len()], "a prefix of what was written");
        println!(
            "linger {linger:?}: {} of {accepted} accepted bytes reached the reader",
            got.len()
        );
    }
}
