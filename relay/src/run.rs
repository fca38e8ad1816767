//! The three modes, on Windows: opening and serving pipes, and what each
//! failure means to the user (one line and an exit code).

use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::windows::io::{AsHandle, BorrowedHandle};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Poll, PollOpt, Ready, Token};
use mio_named_pipes::{
    ClientOptions, NamedPipe, PipeListener, PipeMode, SecurityDescriptor, ServerOptions,
};

use crate::cli::{Eof, Open, PipeEof, Serve, StdinEof, Target};
use crate::pump::{self, Policy};

/// A failure, as the user sees it: one line and an exit code.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: i32,
    /// What failed, in one line.
    pub message: String,
}

/// Exit code: the relay failed.
pub const FAILED: i32 = 1;
/// Exit code: a bad command line (option, address, SDDL).
pub const USAGE: i32 = 2;
/// Exit code: no such pipe.
pub const NO_PIPE: i32 = 3;
/// Exit code: every instance stayed busy.
pub const BUSY: i32 = 4;
/// Exit code: access denied.
pub const DENIED: i32 = 5;

const ERROR_PIPE_BUSY: i32 = 231;

fn fail(code: i32, message: String) -> Failure {
    Failure { code, message }
}

/// Says what opening `pipe` came to.
fn open_failure(pipe: &str, open: &Open, e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::NotFound => fail(NO_PIPE, format!("cannot open {pipe}: no such pipe ({e})")),
        io::ErrorKind::TimedOut => fail(
            BUSY,
            format!(
                "cannot open {pipe}: every instance stayed busy for {:.1} s",
                open.busy_timeout.as_secs_f64()
            ),
        ),
        _ if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => fail(
            BUSY,
            format!("cannot open {pipe}: every instance is busy ({e})"),
        ),
        io::ErrorKind::PermissionDenied => {
            fail(DENIED, format!("cannot open {pipe}: access denied ({e})"))
        }
        _ => fail(FAILED, format!("cannot open {pipe}: {e}")),
    }
}

/// The relay's per-pipe buffers: larger than the library's defaults (made
/// for many pipes in one process), as a relay streams through few, and each
/// byte it reads ahead or queues is a kernel transition saved.
const MAX_READ: usize = 256 * 1024;
const WRITE_QUEUE: usize = 1024 * 1024;

/// Opens a client of `pipe`, waiting as `open` says.
pub(crate) fn open_pipe(pipe: &str, open: &Open) -> Result<NamedPipe, Failure> {
    let mut opts = ClientOptions::new();
    opts.max_read(MAX_READ).write_queue(WRITE_QUEUE);
    if !open.busy_timeout.is_zero() {
        opts.busy_timeout(Some(open.busy_timeout));
    }
    loop {
        match opts.open(pipe) {
            Ok(p) => return Ok(p),
            Err(e) if open.wait_for_pipe && e.kind() == io::ErrorKind::NotFound => {
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(open_failure(pipe, open, e)),
        }
    }
}

fn log(verbose: bool, what: std::fmt::Arguments<'_>) {
    if verbose {
        eprintln!("pipe-relay: {what}");
    }
}

/// `connect`: stdin and stdout to a client of `pipe`.
pub fn connect(pipe: &str, open: &Open, eof: Eof, verbose: bool) -> Result<(), Failure> {
    let (stdin, stdout) = (stdin_file()?, stdout_file()?);
    let p = open_pipe(pipe, open)?;
    log(verbose, format_args!("connected to {pipe}"));
    let mut from = pump::incoming(stdin);
    let to = pump::outgoing(stdout);
    let policy = Policy {
        close_on_other_end: eof.stdin == StdinEof::Close,
        zero_message_on_other_end: eof.stdin == StdinEof::ZeroMessage,
        drain_other_on_pipe_end: eof.pipe == PipeEof::DrainStdin,
    };
    let t = pump::relay(&p, &mut from, to, policy)
        .map_err(|e| fail(FAILED, format!("relaying {pipe}: {e}")))?;
    log(
        verbose,
        format_args!(
            "done: {} bytes to the pipe, {} from it",
            t.to_pipe, t.from_pipe
        ),
    );
    Ok(())
}

/// Resolves a TCP address given on the command line.
fn tcp_addr(addr: &str) -> Result<SocketAddr, Failure> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            fail(
                USAGE,
                format!("bad TCP address `{addr}`: give HOST:PORT, like 127.0.0.1:2375"),
            )
        })
}

/// `listen`: serves `pipe`, each client relayed to `to`.
pub fn listen(pipe: &str, serve: &Serve, to: &Target, verbose: bool) -> Result<(), Failure> {
    let mut opts = ServerOptions::new();
    opts.reject_remote_clients(!serve.allow_remote)
        .max_read(MAX_READ)
        .write_queue(WRITE_QUEUE);
    if serve.message {
        opts.pipe_mode(PipeMode::Message);
    }
    if let Some(sddl) = &serve.sddl {
        let sd = SecurityDescriptor::from_sddl(sddl)
            .map_err(|e| fail(USAGE, format!("bad SDDL `{sddl}`: {e}")))?;
        opts.security_descriptor(&sd);
    }
    let tcp = match to {
        Target::Tcp(addr) => Some(tcp_addr(addr)?),
        _ => None,
    };
    let listener = opts
        .listen(pipe, serve.instances)
        .map_err(|e| match e.kind() {
            _ if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => fail(
                DENIED,
                format!("cannot serve {pipe}: the name is taken, with no instance left ({e})"),
            ),
            io::ErrorKind::PermissionDenied => fail(
                DENIED,
                format!("cannot serve {pipe}: the name is taken, or access denied ({e})"),
            ),
            io::ErrorKind::InvalidInput => fail(USAGE, format!("cannot serve {pipe}: {e}")),
            _ => fail(FAILED, format!("cannot serve {pipe}: {e}")),
        })?;
    log(verbose, format_args!("serving {pipe}"));
    let mut stdin = match to {
        Target::Stdio => Some(pump::incoming(stdin_file()?)),
        _ => None,
    };
    let mut accepting = Accepting::new(&listener)?;
    static IDS: AtomicU64 = AtomicU64::new(1);
    loop {
        let client = accepting.next(&listener)?;
        let id = IDS.fetch_add(1, Ordering::Relaxed);
        let peer = client
            .client_process_id()
            .map_or_else(|_| "?".to_string(), |p| p.to_string());
        log(
            verbose,
            format_args!("[{id}] client connected (process {peer})"),
        );
        match (to, &mut stdin) {
            (Target::Stdio, Some(stdin)) => {
                // One client at a time, on this thread. The end of stdin
                // ends this client and the relay: nothing is left to send.
                let policy = Policy {
                    close_on_other_end: true,
                    zero_message_on_other_end: false,
                    drain_other_on_pipe_end: false,
                };
                // A handle of its own on stdout for each client: closing it
                // leaves the process's stdout open for the next.
                let r = pump::relay(&client, stdin, pump::outgoing(stdout_file()?), policy);
                done(verbose, id, r);
                if stdin.ended() {
                    return Ok(());
                }
            }
            (Target::Exec(program), _) => {
                let program = program.clone();
                thread::spawn(move || exec(client, &program, id, verbose));
            }
            (Target::Tcp(_), _) => {
                let addr = tcp.expect("resolved above");
                thread::spawn(move || to_tcp(client, addr, id, verbose));
            }
            (Target::Stdio, None) => unreachable!("stdin is read for --stdio"),
        }
    }
}

fn done(verbose: bool, id: u64, r: std::io::Result<pump::Totals>) {
    match r {
        Ok(t) => log(
            verbose,
            format_args!(
                "[{id}] done: {} bytes to the pipe, {} from it",
                t.to_pipe, t.from_pipe
            ),
        ),
        // One connection failing ends that connection and nothing else.
        Err(e) => eprintln!("pipe-relay: [{id}] ended: {e}"),
    }
}

/// Waits for the listener's clients.
struct Accepting {
    poll: Poll,
    events: Events,
}

impl Accepting {
    fn new(listener: &PipeListener) -> Result<Accepting, Failure> {
        let setup = |e: io::Error| fail(FAILED, format!("cannot wait for clients: {e}"));
        let poll = Poll::new().map_err(setup)?;
        poll.register(listener, Token(0), Ready::readable(), PollOpt::edge())
            .map_err(setup)?;
        Ok(Accepting {
            poll,
            events: Events::with_capacity(4),
        })
    }

    fn next(&mut self, listener: &PipeListener) -> Result<NamedPipe, Failure> {
        loop {
            match listener.accept() {
                Ok(p) => return Ok(p),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.poll
                        .poll(&mut self.events, None)
                        .map_err(|e| fail(FAILED, format!("waiting for clients: {e}")))?;
                }
                Err(e) => return Err(fail(FAILED, format!("accepting a client: {e}"))),
            }
        }
    }
}

/// This process's stdin as a plain file handle. Reading it through
/// `io::stdin()` would ask, at every read, whether it is a console (a
/// kernel transition each time); a relay reads bytes, console or not.
fn stdin_file() -> Result<File, Failure> {
    own(io::stdin().as_handle(), "stdin")
}

/// This process's stdout as a plain file handle of its own (see [`stdin_file`]).
fn stdout_file() -> Result<File, Failure> {
    own(io::stdout().as_handle(), "stdout")
}

/// A handle of our own on a standard stream.
fn own(h: BorrowedHandle<'_>, what: &str) -> Result<File, Failure> {
    h.try_clone_to_owned()
        .map(File::from)
        .map_err(|e| fail(FAILED, format!("cannot use {what}: {e}")))
}

/// A client relayed to a new child process's stdin and stdout.
fn exec(client: NamedPipe, program: &[String], id: u64, verbose: bool) {
    let child = Command::new(&program[0])
        .args(&program[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pipe-relay: [{id}] cannot start {}: {e}", program[0]);
            return;
        }
    };
    log(
        verbose,
        format_args!("[{id}] started {} (process {})", program[0], child.id()),
    );
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        unreachable!("both piped");
    };
    // The child's output ending (it exited) ends the client's connection;
    // the client leaving closes the child's stdin.
    let policy = Policy {
        close_on_other_end: true,
        zero_message_on_other_end: false,
        drain_other_on_pipe_end: false,
    };
    let r = pump::relay(
        &client,
        &mut pump::incoming(stdout),
        pump::outgoing(stdin),
        policy,
    );
    drop(client);
    done(verbose, id, r);
    reap(&mut child, id, verbose);
}

/// Lets a child whose stdin closed exit on its own, for a while, then ends it.
fn reap(child: &mut Child, id: u64, verbose: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                log(verbose, format_args!("[{id}] child exited: {status}"));
                return;
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                log(
                    verbose,
                    format_args!("[{id}] child ended: it did not exit within 5 s"),
                );
                return;
            }
        }
    }
}

/// The write half of a TCP connection: dropping it shuts the connection
/// down for writing, so the peer reads the end of the stream.
struct TcpWrite(TcpStream);

impl io::Write for TcpWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Drop for TcpWrite {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }
}

/// Relays `pipe` to `stream` until either ends, then closes both.
fn pipe_and_tcp(pipe: &NamedPipe, stream: TcpStream, policy: Policy) -> io::Result<pump::Totals> {
    let _ = stream.set_nodelay(true);
    let reader = stream.try_clone()?;
    let closer = stream.try_clone()?;
    let r = pump::relay(
        pipe,
        &mut pump::incoming(reader),
        pump::outgoing(TcpWrite(stream)),
        policy,
    );
    // Ends the reading thread too.
    let _ = closer.shutdown(Shutdown::Both);
    r
}

/// A client relayed to a new TCP connection to `addr`.
fn to_tcp(client: NamedPipe, addr: SocketAddr, id: u64, verbose: bool) {
    let stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pipe-relay: [{id}] cannot connect to {addr}: {e}");
            return;
        }
    };
    log(verbose, format_args!("[{id}] connected to {addr}"));
    // The TCP peer closing ends the client's connection.
    let policy = Policy {
        close_on_other_end: true,
        zero_message_on_other_end: false,
        drain_other_on_pipe_end: false,
    };
    done(verbose, id, pipe_and_tcp(&client, stream, policy));
}

/// `tcp-listen`: each TCP connection to `addr` relayed to a new client of `pipe`.
pub fn tcp_listen(addr: &str, pipe: &str, open: &Open, verbose: bool) -> Result<(), Failure> {
    let at = tcp_addr(addr)?;
    let listener =
        TcpListener::bind(at).map_err(|e| fail(FAILED, format!("cannot listen on {at}: {e}")))?;
    log(verbose, format_args!("listening on {at} for {pipe}"));
    for (id, stream) in (1u64..).zip(listener.incoming()) {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("pipe-relay: accepting a TCP connection: {e}");
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        log(verbose, format_args!("[{id}] connection from {peer}"));
        let (pipe, open) = (pipe.to_string(), open.clone());
        thread::spawn(move || {
            let client = match open_pipe(&pipe, &open) {
                Ok(c) => c,
                Err(f) => {
                    eprintln!("pipe-relay: [{id}] {}", f.message);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            };
            // A pipe has no half-close: the TCP peer's end of stream keeps
            // the pipe's answer coming, until the pipe ends.
            let policy = Policy {
                close_on_other_end: false,
                zero_message_on_other_end: false,
                drain_other_on_pipe_end: false,
            };
            done(verbose, id, pipe_and_tcp(&client, stream, policy));
        });
    }
    Ok(())
}
