//! Cleanup: what a dropped pipe leaves behind, in every drop order; the
//! linger limit; handles that are not pipes; errors users match on.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::{FromRawHandle, IntoRawHandle};

use mio::{PollOpt, Ready, Token};
use mio_named_pipes::NamedPipe;
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
