//! The framed protocol between `pipe-relay unix-listen` (on Linux) and the
//! one `pipe-relay mux-serve` it starts on Windows: every connection of the
//! Unix socket travels over that process's stdin and stdout.
//!
//! Plain Rust with no OS call, so that it is tested natively. A frame is a
//! 9-byte header — kind (1 byte), connection id (4 bytes, big-endian),
//! payload length (4 bytes, big-endian) — and its payload:
//!
//! | kind | frame | payload |
//! | --- | --- | --- |
//! | 0 | `Hello` (connection 0) | `pipe-relay-mux` and the version (2 bytes) |
//! | 1 | `Open` | none: open a client of the pipe for this connection |
//! | 2 | `Data` | 1 to [`MAX_DATA`] bytes of the connection's stream |
//! | 3 | `HalfClose` | 1 byte: the direction that ended (0 toward the pipe, 1 from it) |
//! | 4 | `Close` | the reason, UTF-8, at most [`MAX_REASON`] bytes (empty: done) |
//! | 5 | `Credit` | 4 bytes: more bytes of `Data` the peer may send on the connection |
//!
//! Flow control is per connection: each side may send at most
//! [`INITIAL_WINDOW`] bytes of data on a connection before its peer grants
//! more with `Credit`, which the peer does as its consumer (the socket, the
//! pipe) takes the data ([`RecvWindow`]). A slow consumer holds back its
//! own connection only: the thread reading frames never waits.

pub mod args;
pub mod table;
pub mod window;

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Mutex;

pub use table::Table;
pub use window::RecvWindow;

/// The protocol's version: both sides refuse a peer with another.
pub const VERSION: u16 = 1;
/// What a `Hello` says before the version.
pub const MAGIC: &[u8; 14] = b"pipe-relay-mux";
/// The most bytes one `Data` frame carries.
pub const MAX_DATA: usize = 64 * 1024;
/// The longest reason a `Close` carries.
pub const MAX_REASON: usize = 1024;
/// The bytes of data a side may send on a new connection before any credit.
pub const INITIAL_WINDOW: u32 = 256 * 1024;
/// The most credit a side may be owed on one connection: a peer granting
/// more is broken.
pub const MAX_WINDOW: u32 = 16 * 1024 * 1024;
/// The most connections open at once over one Windows-side process.
pub const MAX_CONNS: usize = 1024;
/// The header's length.
pub const HEADER: usize = 9;

/// Which direction of a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the Unix socket's client toward the pipe.
    ToPipe,
    /// From the pipe toward the Unix socket's client.
    FromPipe,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The first frame of each side: its protocol version.
    Hello {
        /// The sender's version.
        version: u16,
    },
    /// Opens a connection (Linux to Windows).
    Open(u32),
    /// Bytes of a connection's stream.
    Data(u32, Vec<u8>),
    /// One direction of a connection ended; the other goes on.
    HalfClose(u32, Dir),
    /// The connection is over; the reason is empty when nothing failed.
    Close(u32, String),
    /// The sender may send this many more bytes of data on the connection.
    Credit(u32, u32),
}

/// A stream of frames that is not this protocol, or breaks its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtoError(pub String);

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtoError {}

impl From<ProtoError> for io::Error {
    fn from(e: ProtoError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

fn bad(msg: impl Into<String>) -> ProtoError {
    ProtoError(msg.into())
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Hello { .. } => 0,
            Frame::Open(_) => 1,
            Frame::Data(..) => 2,
            Frame::HalfClose(..) => 3,
            Frame::Close(..) => 4,
            Frame::Credit(..) => 5,
        }
    }

    fn conn(&self) -> u32 {
        match self {
            Frame::Hello { .. } => 0,
            Frame::Open(c)
            | Frame::Data(c, _)
            | Frame::HalfClose(c, _)
            | Frame::Close(c, _)
            | Frame::Credit(c, _) => *c,
        }
    }

    /// Appends the frame's bytes to `out`. Data longer than [`MAX_DATA`]
    /// and reasons longer than [`MAX_REASON`] are the caller's bug: data is
    /// refused, a reason is cut (at a character boundary).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        let start = out.len();
        out.push(self.kind());
        out.extend_from_slice(&self.conn().to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        match self {
            Frame::Hello { version } => {
                out.extend_from_slice(MAGIC);
                out.extend_from_slice(&version.to_be_bytes());
            }
            Frame::Open(_) => {}
            Frame::Data(_, d) => {
                if d.is_empty() || d.len() > MAX_DATA {
                    out.truncate(start);
                    return Err(bad(format!(
                        "a data frame carries 1 to {MAX_DATA} bytes, not {}",
                        d.len()
                    )));
                }
                out.extend_from_slice(d);
            }
            Frame::HalfClose(_, dir) => out.push(match dir {
                Dir::ToPipe => 0,
                Dir::FromPipe => 1,
            }),
            Frame::Close(_, reason) => {
                let mut end = reason.len().min(MAX_REASON);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&reason.as_bytes()[..end]);
            }
            Frame::Credit(_, n) => out.extend_from_slice(&n.to_be_bytes()),
        }
        let len = (out.len() - start - HEADER) as u32;
        out[start + 5..start + 9].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// The frame's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtoError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }
}

/// The longest payload any frame may have.
const MAX_PAYLOAD: usize = MAX_DATA;

/// Checks a header: the frame's kind and payload length.
fn header(h: &[u8; HEADER]) -> Result<(u8, u32, usize), ProtoError> {
    let kind = h[0];
    let conn = u32::from_be_bytes([h[1], h[2], h[3], h[4]]);
    let len = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize;
    if kind > 5 {
        return Err(bad(format!("unknown frame kind {kind}")));
    }
    if len > MAX_PAYLOAD {
        return Err(bad(format!(
            "a frame of {len} bytes (at most {MAX_PAYLOAD})"
        )));
    }
    Ok((kind, conn, len))
}

/// Decodes one frame's payload.
fn payload(kind: u8, conn: u32, p: &[u8]) -> Result<Frame, ProtoError> {
    let need = |n: usize, what: &str| {
        if p.len() == n {
            Ok(())
        } else {
            Err(bad(format!(
                "a {what} frame of {} bytes (it has {n})",
                p.len()
            )))
        }
    };
    let conn_id = |what: &str| {
        if conn == 0 {
            Err(bad(format!("a {what} frame for connection 0")))
        } else {
            Ok(conn)
        }
    };
    Ok(match kind {
        0 => {
            if p.len() != MAGIC.len() + 2 || &p[..MAGIC.len()] != MAGIC || conn != 0 {
                return Err(bad(
                    "the peer does not speak pipe-relay's protocol (a bad hello)",
                ));
            }
            Frame::Hello {
                version: u16::from_be_bytes([p[MAGIC.len()], p[MAGIC.len() + 1]]),
            }
        }
        1 => {
            need(0, "open")?;
            Frame::Open(conn_id("open")?)
        }
        2 => {
            if p.is_empty() {
                return Err(bad("an empty data frame"));
            }
            Frame::Data(conn_id("data")?, p.to_vec())
        }
        3 => {
            need(1, "half-close")?;
            let dir = match p[0] {
                0 => Dir::ToPipe,
                1 => Dir::FromPipe,
                d => return Err(bad(format!("a half-close of direction {d}"))),
            };
            Frame::HalfClose(conn_id("half-close")?, dir)
        }
        4 => {
            if p.len() > MAX_REASON {
                return Err(bad(format!("a close reason of {} bytes", p.len())));
            }
            let reason = std::str::from_utf8(p)
                .map_err(|_| bad("a close reason that is not UTF-8"))?
                .to_string();
            Frame::Close(conn_id("close")?, reason)
        }
        _ => {
            need(4, "credit")?;
            let n = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
            if n == 0 || n > MAX_WINDOW {
                return Err(bad(format!("a credit of {n} bytes")));
            }
            Frame::Credit(conn_id("credit")?, n)
        }
    })
}

/// Reads the next frame: `Ok(None)` at a clean end of stream (between
/// frames); an end inside a frame, or a frame that is not the protocol's,
/// is an error. Never allocates more than [`MAX_DATA`] bytes per frame.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut h = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream of frames ended inside a frame",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let (kind, conn, len) = header(&h)?;
    let mut p = vec![0u8; len];
    r.read_exact(&mut p).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream of frames ended inside a frame",
            )
        } else {
            e
        }
    })?;
    Ok(Some(payload(kind, conn, &p)?))
}

/// Reads and checks the peer's `Hello`; what is not a frame at all is
/// said to be another protocol.
pub fn read_hello(r: &mut impl Read, peer: &str) -> Result<(), ProtoError> {
    match read_frame(r) {
        Ok(first) => check_hello(first, peer),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(bad(format!(
            "{peer} does not speak pipe-relay's protocol ({e})"
        ))),
        Err(e) => Err(bad(format!("{peer}: {e}"))),
    }
}

/// Checks the peer's `Hello`: the first frame must be one, of our version.
pub fn check_hello(first: Option<Frame>, peer: &str) -> Result<(), ProtoError> {
    match first {
        Some(Frame::Hello { version }) if version == VERSION => Ok(()),
        Some(Frame::Hello { version }) => Err(bad(format!(
            "{peer} speaks version {version} of the relay protocol, this pipe-relay version {VERSION}: use the same pipe-relay release on both sides"
        ))),
        Some(f) => Err(bad(format!(
            "{peer} did not start with a hello (kind {})",
            f.kind()
        ))),
        None => Err(bad(format!("{peer} ended before its hello"))),
    }
}

/// The sending half of a stream of frames, shared by the threads of every
/// connection: each frame is written whole, and flushed.
#[derive(Debug)]
pub struct Link<W> {
    w: Mutex<W>,
}

impl<W: Write> Link<W> {
    /// Frames written to `w`.
    pub fn new(w: W) -> Self {
        Link { w: Mutex::new(w) }
    }

    /// Writes one frame.
    pub fn send(&self, f: &Frame) -> io::Result<()> {
        let b = f.to_bytes()?;
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(&b)?;
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first frame of `buf`: `Ok(None)` while it holds less than one.
    fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, ProtoError> {
        let Some(h) = buf.get(..HEADER) else {
            return Ok(None);
        };
        let (kind, conn, len) = header(h.try_into().expect("HEADER bytes"))?;
        let Some(p) = buf.get(HEADER..HEADER + len) else {
            return Ok(None);
        };
        Ok(Some((payload(kind, conn, p)?, HEADER + len)))
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::Hello { version: VERSION },
            Frame::Open(1),
            Frame::Data(7, vec![1, 2, 3]),
            Frame::Data(u32::MAX, vec![0xAB; MAX_DATA]),
            Frame::HalfClose(3, Dir::ToPipe),
            Frame::HalfClose(3, Dir::FromPipe),
            Frame::Close(9, String::new()),
            Frame::Close(9, "cannot open \\\\.\\pipe\\x: no such pipe".into()),
            Frame::Credit(2, 1),
            Frame::Credit(2, MAX_WINDOW),
        ]
    }

    #[test]
    fn every_frame_decodes_to_itself() {
        let mut stream = Vec::new();
        for f in all_frames() {
            let b = f.to_bytes().unwrap();
            assert_eq!(decode(&b).unwrap(), Some((f.clone(), b.len())));
            // Every prefix is "not yet".
            for cut in 0..b.len() {
                assert_eq!(decode(&b[..cut]).unwrap(), None, "{f:?} cut at {cut}");
            }
            stream.extend_from_slice(&b);
        }
        // Back to back, through a reader that hands out 3 bytes at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = Trickle(&stream);
        for f in all_frames() {
            assert_eq!(read_frame(&mut r).unwrap(), Some(f));
        }
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn frames_the_sender_must_not_make_are_refused() {
        assert!(Frame::Data(1, vec![]).to_bytes().is_err());
        assert!(Frame::Data(1, vec![0; MAX_DATA + 1]).to_bytes().is_err());
        // A long reason is cut at a character boundary, and still decodes.
        let long = "é".repeat(MAX_REASON);
        let b = Frame::Close(1, long).to_bytes().unwrap();
        let (f, _) = decode(&b).unwrap().unwrap();
        let Frame::Close(_, r) = f else { panic!() };
        assert!(r.len() <= MAX_REASON && r.len() >= MAX_REASON - 1);
    }

    fn raw(kind: u8, conn: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend_from_slice(&conn.to_be_bytes());
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn malformed_input_is_an_error_with_words() {
        let mut bad_hello = MAGIC.to_vec();
        bad_hello[0] = b'X';
        bad_hello.extend_from_slice(&[0, 1]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (raw(6, 1, &[]), "unknown frame kind 6"),
            (raw(255, 1, &[]), "unknown frame kind"),
            (raw(0, 0, b"HTTP/1.1 200 OK"), "does not speak"),
            (raw(0, 0, &bad_hello), "does not speak"),
            (raw(0, 5, &[]), "does not speak"),
            (raw(1, 1, &[0]), "open frame of 1 bytes"),
            (raw(1, 0, &[]), "connection 0"),
            (raw(2, 1, &[]), "empty data"),
            (raw(2, 0, &[1]), "connection 0"),
            (raw(3, 1, &[]), "half-close frame of 0"),
            (raw(3, 1, &[2]), "direction 2"),
            (raw(4, 1, &[0xff, 0xfe]), "not UTF-8"),
            (raw(4, 1, &[b'a'; MAX_REASON + 1]), "reason of"),
            (raw(5, 1, &[0, 0, 0]), "credit frame of 3"),
            (raw(5, 1, &[0, 0, 0, 0]), "credit of 0"),
            (raw(5, 1, &u32::MAX.to_be_bytes()), "credit of"),
        ];
        for (bytes, says) in cases {
            let e = decode(&bytes).unwrap_err();
            assert!(e.0.contains(says), "{bytes:?}: {e}");
            let e = read_frame(&mut &bytes[..]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bytes:?}");
        }
        // A length beyond the limit is refused from the header alone,
        // before anything is allocated or read.
        let mut huge = raw(2, 1, &[]);
        huge[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&huge).unwrap_err().0.contains("at most"));
        assert!(read_frame(&mut &huge[..]).is_err());
        // An end inside a frame.
        let b = Frame::Data(1, vec![1; 10]).to_bytes().unwrap();
        for cut in 1..b.len() {
            let e = read_frame(&mut &b[..cut]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: every byte string decodes to a
        // frame, "not yet", or an error.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(k) = v.first_mut() {
                *k %= 7;
            }
            if v.len() >= HEADER {
                let l = (next() % 20) as u32;
                v[5..9].copy_from_slice(&l.to_be_bytes());
            }
            let _ = decode(&v);
            let _ = read_frame(&mut &v[..]);
        }
    }

    #[test]
    fn a_peer_of_another_version_is_refused_clearly() {
        assert!(check_hello(Some(Frame::Hello { version: VERSION }), "x").is_ok());
        let e = check_hello(Some(Frame::Hello { version: 9 }), "the Windows side").unwrap_err();
        assert!(
            e.0.contains("version 9") && e.0.contains("same pipe-relay release"),
            "{e}"
        );
        let e = check_hello(Some(Frame::Open(1)), "the Windows side").unwrap_err();
        assert!(e.0.contains("did not start with a hello"), "{e}");
        assert!(check_hello(None, "x").unwrap_err().0.contains("ended"));
    }
}
