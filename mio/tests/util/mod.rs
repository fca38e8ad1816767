//! Helpers shared by the integration tests: unique pipe names, clients, and
//! an event loop that drives pipes until a condition holds or time runs out.
#![allow(dead_code)]

pub mod resources;
mod win;

// Not every test binary uses them.
#[allow(unused_imports)]
pub use win::{
    check_client_identity, check_impersonation, thread_count, thread_token, wine_limitation,
    wine_version,
};

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::{FromRawHandle, IntoRawHandle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Poll, PollOpt, Ready, Token};
use mio_named_pipes::NamedPipe;

/// `FILE_FLAG_OVERLAPPED`.
pub const FILE_FLAG_OVERLAPPED: u32 = 0x4000_0000;
/// How long any single wait in a test may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A pipe name no other test (or test process) uses.
pub fn name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        r"\\.\pipe\mio-named-pipes-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens a client of `name` for overlapped I/O.
pub fn open_client(name: &str) -> io::Result<NamedPipe> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(FILE_FLAG_OVERLAPPED)
        .open(name)?;
    // SAFETY: the handle was just opened with FILE_FLAG_OVERLAPPED and is owned by nothing else.
    Ok(unsafe { NamedPipe::from_raw_handle(file.into_raw_handle()) })
}

pub fn client(name: &str) -> NamedPipe {
    open_client(name).unwrap_or_else(|e| panic!("opening client {name}: {e}"))
}

/// A Poll with an event buffer, and helpers that drive it.
pub struct Looper {
    pub poll: Poll,
    pub events: Events,
    next: usize,
}

impl Looper {
    pub fn new() -> Looper {
        Looper {
            poll: Poll::new().unwrap(),
            events: Events::with_capacity(1024),
            next: 0,
        }
    }

    /// Registers `p` for both directions, edge-triggered, under a new token.
    pub fn add(&mut self, p: &NamedPipe) -> Token {
        let t = Token(self.next);
        self.next += 1;
        self.poll
            .register(p, t, Ready::readable() | Ready::writable(), PollOpt::edge())
            .unwrap();
        t
    }

    /// Polls once, waiting up to `timeout`; returns the events' tokens and readiness.
    pub fn turn(&mut self, timeout: Duration) -> Vec<(Token, Ready)> {
        self.poll.poll(&mut self.events, Some(timeout)).unwrap();
        self.events
            .iter()
            .map(|e| (e.token(), e.readiness()))
            .collect()
    }

    /// Polls until `f` returns `Some`, failing the test after `PATIENCE`.
    pub fn until<T>(&mut self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(t) = f() {
                return t;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.turn(Duration::from_millis(50));
        }
    }

    /// Polls until an event for `token` whose readiness satisfies `want`.
    pub fn event(&mut self, token: Token, what: &str, want: impl Fn(Ready) -> bool) -> Ready {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let evs = self.turn(Duration::from_millis(50));
            if let Some((_, r)) = evs.iter().find(|(t, r)| *t == token && want(*r)) {
                return *r;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
        }
    }

    /// Completes `connect` on a registered server.
    pub fn connect(&mut self, server: &NamedPipe) {
        self.until("connect", || match server.connect() {
            Ok(()) => Some(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("connect: {e}"),
        })
    }

    /// Writes all of `data`, driving the loop while the pipe would block.
    pub fn write_all(&mut self, mut p: &NamedPipe, data: &[u8]) {
        let mut off = 0;
        self.until("write_all", || {
            while off < data.len() {
                match p.write(&data[off..]) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) => panic!("write: {e}"),
                }
            }
            Some(())
        })
    }

    /// Drives the loop until `flush` succeeds.
    pub fn flush(&mut self, mut p: &NamedPipe) {
        self.until("flush", || match p.flush() {
            Ok(()) => Some(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("flush: {e}"),
        })
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, mut p: &NamedPipe, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        let mut off = 0;
        self.until("read_exact", || {
            while off < n {
                match p.read(&mut out[off..]) {
                    Ok(0) => panic!("end of file after {off} of {n} bytes"),
                    Ok(k) => off += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) => panic!("read: {e}"),
                }
            }
            Some(())
        });
        out
    }

    /// Reads until end of file.
    pub fn read_to_end(&mut self, mut p: &NamedPipe) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        self.until("end of file", || loop {
            match p.read(&mut buf) {
                Ok(0) => return Some(()),
                Ok(k) => out.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => panic!("read: {e}"),
            }
        });
        out
    }

    /// Receives one whole message.
    pub fn recv_msg(&mut self, p: &NamedPipe) -> Vec<u8> {
        let mut buf = Vec::new();
        self.until("a message", || match p.recv_msg(&mut buf) {
            Ok(_) => Some(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("recv_msg: {e}"),
        });
        buf
    }
}

/// Writes as much of `data` as the pipe accepts before it would block;
/// returns how much that was.
pub fn write_until_blocked(mut p: &NamedPipe, data: &[u8]) -> usize {
    let mut off = 0;
    while off < data.len() {
        match p.write(&data[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    off
}

/// A connected pair (server, client), both registered with `l`.
pub fn pair(l: &mut Looper) -> (NamedPipe, NamedPipe) {
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    l.add(&server);
    let client = client(&name);
    l.add(&client);
    l.connect(&server);
    (server, client)
}

/// Deterministic test data: byte `i` of stream `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A message-type server instance in message read mode, made with plain
/// Win32 calls (independent of this crate's builders), not registered.
pub fn message_server(name: &str) -> NamedPipe {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{
        FILE_FLAG_OVERLAPPED as OVL, PIPE_ACCESS_DUPLEX,
    };
    use windows_sys::Win32::System::Pipes::{
        CreateNamedPipeW, PIPE_READMODE_MESSAGE, PIPE_TYPE_MESSAGE, PIPE_UNLIMITED_INSTANCES,
    };
    let wide: Vec<u16> = std::ffi::OsStr::new(name)
        .encode_wide()
        .chain(Some(0))
        .collect();
    // SAFETY: `wide` is NUL-terminated and outlives the call; null attributes are allowed.
    let h = unsafe {
        CreateNamedPipeW(
            wide.as_ptr(),
            PIPE_ACCESS_DUPLEX | OVL,
            PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE,
            PIPE_UNLIMITED_INSTANCES,
            65536,
            65536,
            0,
            std::ptr::null(),
        )
    };
    assert!(
        h as isize != -1,
        "CreateNamedPipeW: {}",
        io::Error::last_os_error()
    );
    // SAFETY: a fresh overlapped server handle owned by nothing else.
    unsafe { NamedPipe::from_raw_handle(h) }
}

/// A client of a message pipe, switched to message read mode; `overlapped`
/// picks FILE_FLAG_OVERLAPPED (to adopt it as a NamedPipe) or a plain
/// blocking handle.
pub fn message_client_file(name: &str, overlapped: bool) -> std::fs::File {
    use windows_sys::Win32::System::Pipes::{SetNamedPipeHandleState, PIPE_READMODE_MESSAGE};
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(if overlapped { FILE_FLAG_OVERLAPPED } else { 0 })
        .open(name)
        .unwrap();
    let mode = PIPE_READMODE_MESSAGE;
    // SAFETY: a valid pipe handle; `mode` outlives the call.
    let ok = unsafe {
        SetNamedPipeHandleState(
            std::os::windows::io::AsRawHandle::as_raw_handle(&file),
            &mode,
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert!(
        ok != 0,
        "SetNamedPipeHandleState: {}",
        io::Error::last_os_error()
    );
    file
}

/// A message-type pipe in message read mode on both ends, both registered with `l`.
pub fn message_pair(l: &mut Looper) -> (NamedPipe, NamedPipe) {
    let name = name();
    let server = message_server(&name);
    l.add(&server);
    let file = message_client_file(&name, true);
    // SAFETY: as in `open_client`.
    let client = unsafe { NamedPipe::from_raw_handle(file.into_raw_handle()) };
    l.add(&client);
    l.connect(&server);
    (server, client)
}
