//! `pipe-relay mux-serve PIPE`: the Windows side of `unix-listen`. It
//! speaks the framed protocol (`mux`) on its stdin and stdout and, for each
//! `Open`, opens a client of PIPE (waiting while every instance is busy, as
//! `connect` does) and relays it with the pump every mode uses. A failure
//! ends that connection (a `Close` with the reason), never the process; the
//! end of stdin (the Linux side gone) ends the process.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::windows::io::AsHandle;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::mux::args::{stdin_eof_words, ServeArgs};
use crate::mux::window::Credit;
use crate::mux::{read_frame, read_hello, Dir, Frame, Link, RecvWindow, Table, MAX_CONNS, VERSION};
use crate::pump;
use crate::run::{self, Failure, FAILED};

type Out = Arc<Link<File>>;

/// What the demultiplexer hands a connection's pipe side.
enum In {
    Data(Vec<u8>),
    /// The Unix client's half-close.
    End,
    /// The Unix client went away.
    Abort,
}

/// One open connection, as the demultiplexer sees it.
struct Conn {
    tx: Sender<In>,
    credit: Arc<Credit>,
    recv: Arc<Mutex<RecvWindow>>,
}

type Conns = Arc<Mutex<Table<Conn>>>;

/// Connection threads alive, counted apart from the table: a connection
/// closed while its pipe is still being opened (a busy wait) keeps its
/// thread until the wait ends, and those count against the limit too.
static THREADS: AtomicUsize = AtomicUsize::new(0);

fn log(verbose: bool, what: std::fmt::Arguments<'_>) {
    if verbose {
        eprintln!("pipe-relay mux-serve: {what}");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs until stdin ends.
pub fn run(a: &ServeArgs) -> Result<(), Failure> {
    let own = |h: std::os::windows::io::BorrowedHandle<'_>, what: &str| {
        h.try_clone_to_owned().map(File::from).map_err(|e| Failure {
            code: FAILED,
            message: format!("cannot use {what}: {e}"),
        })
    };
    let mut input =
        io::BufReader::with_capacity(256 * 1024, own(io::stdin().as_handle(), "stdin")?);
    let out: Out = Arc::new(Link::new(own(io::stdout().as_handle(), "stdout")?));
    let proto = |e: io::Error| Failure {
        code: FAILED,
        message: format!("the Linux side: {e}"),
    };
    out.send(&Frame::Hello { version: VERSION })
        .map_err(proto)?;
    read_hello(&mut input, "the Linux side").map_err(|e| Failure {
        code: FAILED,
        message: e.0,
    })?;
    log(
        a.verbose,
        format_args!(
            "relaying connections to {} (the client's half-close: {})",
            a.pipe,
            stdin_eof_words(a.eof.stdin)
        ),
    );
    let conns: Conns = Arc::default();
    loop {
        let f = match read_frame(&mut input) {
            Ok(Some(f)) => f,
            Ok(None) => {
                log(a.verbose, format_args!("the Linux side ended"));
                return Ok(());
            }
            Err(e) => return Err(proto(e)),
        };
        match f {
            Frame::Open(c) => open(a, c, &conns, &out),
            Frame::Data(c, v) => {
                let map = lock(&conns);
                if let Some(conn) = map.get(c) {
                    lock(&conn.recv)
                        .on_data(v.len())
                        .map_err(|e| proto(e.into()))?;
                    let _ = conn.tx.send(In::Data(v));
                }
                // Data of a connection that just ended: dropped.
            }
            Frame::HalfClose(c, Dir::ToPipe) => {
                if let Some(conn) = lock(&conns).get(c) {
                    let _ = conn.tx.send(In::End);
                }
            }
            Frame::Close(c, _) => {
                if let Some(conn) = lock(&conns).remove(c) {
                    let _ = conn.tx.send(In::Abort);
                    conn.credit.close();
                }
            }
            Frame::Credit(c, n) => {
                if let Some(conn) = lock(&conns).get(c) {
                    conn.credit.grant(n).map_err(|e| proto(e.into()))?;
                }
            }
            Frame::HalfClose(_, Dir::FromPipe) | Frame::Hello { .. } => {
                return Err(proto(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a frame only the Windows side sends",
                )))
            }
        }
    }
}

/// Starts connection `c`: opening the pipe and relaying it, on a thread.
fn open(a: &ServeArgs, c: u32, conns: &Conns, out: &Out) {
    let (tx, rx) = mpsc::channel();
    let credit = Arc::new(Credit::default());
    let recv = Arc::new(Mutex::new(RecvWindow::default()));
    let conn = Conn {
        tx,
        credit: credit.clone(),
        recv: recv.clone(),
    };
    let opened = if THREADS.load(Ordering::SeqCst) >= MAX_CONNS {
        Err(format!(
            "too many connections (at most {MAX_CONNS}, some still opening their pipe)"
        ))
    } else {
        lock(conns).insert(c, conn)
    };
    if let Err(r) = opened {
        let _ = out.send(&Frame::Close(c, r));
        return;
    }
    let (a, conns, out) = (a.clone(), conns.clone(), out.clone());
    THREADS.fetch_add(1, Ordering::SeqCst);
    thread::spawn(move || {
        let reason = match relay(&a, c, rx, recv, credit, &out) {
            Ok(()) => String::new(),
            Err(m) => m,
        };
        if reason.is_empty() {
            log(a.verbose, format_args!("[{c}] done"));
        } else {
            log(a.verbose, format_args!("[{c}] {reason}"));
        }
        lock(&conns).remove(c);
        let _ = out.send(&Frame::Close(c, reason));
        THREADS.fetch_sub(1, Ordering::SeqCst);
    });
}

fn relay(
    a: &ServeArgs,
    c: u32,
    rx: Receiver<In>,
    recv: Arc<Mutex<RecvWindow>>,
    credit: Arc<Credit>,
    out: &Out,
) -> Result<(), String> {
    let pipe =
        run::open_pipe(&a.pipe, &a.open, a.verbose, &format!("[{c}] ")).map_err(|f| f.message)?;
    log(a.verbose, format_args!("[{c}] connected to {}", a.pipe));
    let mut from = pump::incoming(FromLinux {
        c,
        rx,
        rest: Vec::new(),
        off: 0,
        recv,
        out: out.clone(),
    });
    let to = pump::outgoing(ToLinux {
        c,
        credit,
        out: out.clone(),
    });
    let policy = run::policy(a.eof);
    pump::relay(&pipe, &mut from, to, policy)
        .map(|_| ())
        .map_err(|f| format!("relaying {}: {f}", a.pipe))
}

/// The Unix client's bytes, as the pump's reading thread reads them:
/// credit goes back as they are taken.
struct FromLinux {
    c: u32,
    rx: Receiver<In>,
    rest: Vec<u8>,
    off: usize,
    recv: Arc<Mutex<RecvWindow>>,
    out: Out,
}

impl Read for FromLinux {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.off == self.rest.len() {
            match self.rx.recv() {
                Ok(In::Data(v)) => {
                    self.rest = v;
                    self.off = 0;
                }
                Ok(In::End) | Err(_) => return Ok(0),
                Ok(In::Abort) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the Unix socket's client went away",
                    ))
                }
            }
        }
        let n = buf.len().min(self.rest.len() - self.off);
        buf[..n].copy_from_slice(&self.rest[self.off..self.off + n]);
        self.off += n;
        let grant = lock(&self.recv).on_consumed(n);
        if let Some(g) = grant {
            self.out.send(&Frame::Credit(self.c, g))?;
        }
        Ok(n)
    }
}

/// The pipe's bytes toward the Unix client, as the pump's writing thread
/// writes them: at most the credit the Linux side granted. Dropping it
/// (the pipe's end of stream) is the half-close toward the client.
struct ToLinux {
    c: u32,
    credit: Arc<Credit>,
    out: Out,
}

impl Write for ToLinux {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.credit.wait_take(buf.len()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Unix socket's client went away",
            )
        })?;
        self.out.send(&Frame::Data(self.c, buf[..n].to_vec()))?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ToLinux {
    fn drop(&mut self) {
        let _ = self.out.send(&Frame::HalfClose(self.c, Dir::FromPipe));
    }
}
