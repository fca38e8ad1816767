//! The three modes, on Windows: opening and serving pipes, and what each
//! failure means to the user (one line and an exit code).

use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::windows::io::{AsHandle, BorrowedHandle};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Poll, PollOpt, Ready, Token};
use mio_named_pipes::{
    ClientOptions, NamedPipe, PipeListener, PipeMode, PipeOwner, SecurityDescriptor, ServerOptions,
};

use crate::cli::{self, Clients, Eof, Open, Owner, PipeEof, Serve, StdinEof, Target};
use crate::pump::{self, Failed, Policy, Side};

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
fn open_failure(pipe: &str, open: &Open, e: &io::Error) -> Failure {
    let w = cli::words(e);
    match e.kind() {
        io::ErrorKind::NotFound => fail(NO_PIPE, format!("cannot open {pipe}: no such pipe")),
        io::ErrorKind::TimedOut => fail(
            BUSY,
            format!(
                "cannot open {pipe}: every instance stayed busy for {:.1} s",
                open.busy_timeout.as_secs_f64()
            ),
        ),
        _ if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => {
            fail(BUSY, format!("cannot open {pipe}: {w}"))
        }
        io::ErrorKind::PermissionDenied if e.raw_os_error().is_some() => {
            fail(DENIED, format!("cannot open {pipe}: {w}"))
        }
        // The owner check: the library's words name the owner found.
        io::ErrorKind::PermissionDenied => fail(
            DENIED,
            format!("cannot open {pipe}: not an owner we trust ({w}; see --expect-owner)"),
        ),
        _ => fail(FAILED, format!("cannot open {pipe}: {w}")),
    }
}

/// The relay's per-pipe buffers: larger than the library's defaults (made
/// for many pipes in one process), as a relay streams through few, and each
/// byte it reads ahead or queues is a kernel transition saved.
const MAX_READ: usize = 256 * 1024;
const WRITE_QUEUE: usize = 1024 * 1024;
/// A busy wait is made of waits this long at most, each logged with `-v`.
const BUSY_SLICE: Duration = Duration::from_secs(2);

/// Opens a client of `pipe`, waiting as `open` says; `-v` logs the wait
/// and the server's process id.
pub(crate) fn open_pipe(
    pipe: &str,
    open: &Open,
    verbose: bool,
    who: &str,
) -> Result<NamedPipe, Failure> {
    let mut opts = ClientOptions::new();
    opts.max_read(MAX_READ).write_queue(WRITE_QUEUE);
    match &open.owner {
        Owner::Trusted => {
            opts.expect_owner(&[
                PipeOwner::CurrentUser,
                PipeOwner::LocalSystem,
                PipeOwner::Administrators,
            ]);
        }
        Owner::Sid(sid) => {
            opts.expect_owner(&[PipeOwner::Sid(sid.clone())]);
        }
        Owner::Any => {}
    }
    let start = Instant::now();
    // (`--busy-timeout` takes up to 1e9 s: past what an Instant holds, the
    // wait has no end.)
    let deadline = start.checked_add(open.busy_timeout);
    // Every instance was found busy: waiting, in slices.
    let mut waiting = false;
    let mut announced_absence = false;
    loop {
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        opts.busy_timeout((waiting && !left.is_zero()).then(|| left.min(BUSY_SLICE)));
        let e = match opts.open(pipe) {
            Ok(p) => {
                let server = p
                    .server_process_id()
                    .map_or_else(|_| "?".to_string(), |id| id.to_string());
                let after = if waiting {
                    format!(" after {:.1} s", start.elapsed().as_secs_f64())
                } else {
                    String::new()
                };
                log(
                    verbose,
                    format_args!("{who}connected to {pipe}{after} (server process {server})"),
                );
                return Ok(p);
            }
            Err(e) => e,
        };
        let busy = e.raw_os_error() == Some(ERROR_PIPE_BUSY) || e.kind() == io::ErrorKind::TimedOut;
        let gone = e.kind() == io::ErrorKind::NotFound;
        if gone && !waiting && open.wait_for_pipe {
            if !announced_absence {
                log(
                    verbose,
                    format_args!("{who}{pipe} does not exist yet: waiting for it"),
                );
                announced_absence = true;
            }
            thread::sleep(Duration::from_millis(100));
            continue;
        }
        if busy && !open.busy_timeout.is_zero() && !waiting {
            log(
                verbose,
                format_args!(
                    "{who}every instance of {pipe} is busy: waiting up to {:.1} s",
                    open.busy_timeout.as_secs_f64()
                ),
            );
            waiting = true;
            continue;
        }
        if (busy || gone) && waiting && !left.is_zero() {
            if gone {
                // The server re-creating its instances: look again soon,
                // saying so once.
                if !announced_absence {
                    log(
                        verbose,
                        format_args!(
                            "{who}{pipe} is gone for a moment after {:.1} s: trying again",
                            start.elapsed().as_secs_f64()
                        ),
                    );
                    announced_absence = true;
                }
                thread::sleep(Duration::from_millis(50));
            } else {
                announced_absence = false;
                log(
                    verbose,
                    format_args!(
                        "{who}still busy after {:.1} s: trying again",
                        start.elapsed().as_secs_f64()
                    ),
                );
            }
            continue;
        }
        let e = if busy && waiting {
            io::Error::from(io::ErrorKind::TimedOut)
        } else {
            e
        };
        return Err(open_failure(pipe, open, &e));
    }
}

/// The time of day (UTC) for log lines, `HH:MM:SS.mmm`.
fn now() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (s, ms) = (t.as_secs() % 86_400, t.subsec_millis());
    format!("{:02}:{:02}:{:02}.{ms:03}", s / 3600, s / 60 % 60, s % 60)
}

fn log(verbose: bool, what: std::fmt::Arguments<'_>) {
    if verbose {
        eprintln!("pipe-relay: {} {what}", now());
    }
}

/// What ends a connection, for the pump.
pub(crate) fn policy(eof: Eof) -> Policy {
    Policy {
        close_on_other_end: eof.stdin == StdinEof::Close,
        zero_message_on_other_end: eof.stdin == StdinEof::ZeroMessage,
        drain_other_on_pipe_end: eof.pipe == PipeEof::DrainStdin,
        idle_timeout: eof.idle_timeout,
    }
}

/// The words of a connection's failure: which side, and what.
fn failed_words(f: &Failed, pipe: &str, reading: &str, writing: &str) -> String {
    let w = cli::words(&f.error);
    match f.side {
        Side::Pipe => format!("the pipe {pipe}: {w}"),
        Side::Reading => format!("reading {reading}: {w}"),
        Side::Writing => format!("writing {writing}: {w}"),
    }
}

/// `connect`: stdin and stdout to a client of `pipe`.
///
/// Call it first, on the main thread: it takes stdout over.
pub fn connect(pipe: &str, open: &Open, eof: Eof, verbose: bool) -> Result<(), Failure> {
    let (stdout, stdin) = (take_stdout()?, stdin_file()?);
    let p = open_pipe(pipe, open, verbose, "")?;
    let mut from = pump::incoming(stdin);
    let to = pump::outgoing(stdout);
    match pump::relay(&p, &mut from, to, policy(eof)) {
        Ok(t) => {
            log(verbose, format_args!("done: {}", totals(&t)));
            Ok(())
        }
        // `| head -c 1000`: the reader has what it wanted.
        Err(f) if f.side == Side::Writing && cli::reader_left(&f.error) => {
            log(verbose, format_args!("done: stdout's reader left"));
            Ok(())
        }
        Err(f) => Err(fail(FAILED, failed_words(&f, pipe, "stdin", "stdout"))),
    }
}

fn totals(t: &pump::Totals) -> String {
    let idle = if t.idle { " (idle timeout)" } else { "" };
    format!(
        "{} bytes to the pipe, {} from it{idle}",
        t.to_pipe, t.from_pipe
    )
}

/// Resolves a TCP address given on the command line (a name or an
/// address), refusing one that is not loopback unless allowed.
fn tcp_addr(addr: &str, allow_remote_tcp: bool) -> Result<SocketAddr, Failure> {
    let usage = |u: cli::Usage| fail(USAGE, u.0);
    let (host, port) = cli::host_port(addr).map_err(usage)?;
    let at = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            fail(
                USAGE,
                format!("cannot resolve `{host}` of `{addr}`: {}", cli::words(&e)),
            )
        })?
        .next()
        .ok_or_else(|| {
            fail(
                USAGE,
                format!("cannot resolve `{host}` of `{addr}`: no address"),
            )
        })?;
    cli::exposure(&at, allow_remote_tcp, addr).map_err(usage)?;
    Ok(at)
}

/// The connections being served, up to `--max-clients`.
#[derive(Clone)]
struct Slots {
    busy: Arc<AtomicUsize>,
    max: usize,
}

/// A connection's slot: freed when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slots {
    fn new(c: &Clients) -> Slots {
        Slots {
            busy: Arc::new(AtomicUsize::new(0)),
            max: c.max,
        }
    }

    /// A slot, or `None` when `max` connections are being served. Only the
    /// accepting thread takes slots, so the count cannot pass `max`.
    fn take(&self) -> Option<Slot> {
        if self.busy.load(Ordering::Acquire) >= self.max {
            return None;
        }
        self.busy.fetch_add(1, Ordering::AcqRel);
        Some(Slot(self.busy.clone()))
    }
}

/// `listen`: serves `pipe`, each client relayed to `to`.
pub fn listen(
    pipe: &str,
    serve: &Serve,
    to: &Target,
    eof: Eof,
    clients: &Clients,
    verbose: bool,
) -> Result<(), Failure> {
    // Current-user-only unless an SDDL says otherwise (ServerOptions' default).
    let mut opts = ServerOptions::new();
    opts.reject_remote_clients(!serve.allow_remote)
        .max_read(MAX_READ)
        .write_queue(WRITE_QUEUE);
    if serve.message {
        opts.pipe_mode(PipeMode::Message);
    }
    if let Some(sddl) = &serve.sddl {
        let sd = SecurityDescriptor::from_sddl(sddl).map_err(|_| {
            fail(
                USAGE,
                format!("bad SDDL `{sddl}`: Windows cannot read it as a security descriptor"),
            )
        })?;
        opts.security_descriptor(&sd);
    }
    let tcp = match to {
        Target::Tcp(addr) => Some(tcp_addr(addr, clients.allow_remote_tcp)?),
        _ => None,
    };
    let listener = opts.listen(pipe, serve.instances).map_err(|e| {
        let w = cli::words(&e);
        match e.kind() {
            _ if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => fail(
                DENIED,
                format!("cannot serve {pipe}: the name is taken, with no instance left"),
            ),
            io::ErrorKind::PermissionDenied => fail(
                DENIED,
                format!("cannot serve {pipe}: the name is taken, or {w}"),
            ),
            io::ErrorKind::InvalidInput => fail(USAGE, format!("cannot serve {pipe}: {w}")),
            _ => fail(FAILED, format!("cannot serve {pipe}: {w}")),
        }
    })?;
    log(verbose, format_args!("serving {pipe}"));
    let mut stdin = match to {
        Target::Stdio => Some(pump::incoming(stdin_file()?)),
        _ => None,
    };
    let mut accepting = Accepting::new(&listener)?;
    let slots = Slots::new(clients);
    static IDS: AtomicU64 = AtomicU64::new(1);
    loop {
        let client = accepting.next(&listener)?;
        client.set_report_empty_messages(true);
        let id = IDS.fetch_add(1, Ordering::Relaxed);
        let peer = client
            .client_process_id()
            .map_or_else(|_| "?".to_string(), |p| p.to_string());
        let Some(slot) = slots.take() else {
            eprintln!(
                "pipe-relay: {} [{id}] client (process {peer}) refused: {} clients already (--max-clients)",
                now(),
                slots.max
            );
            continue;
        };
        log(
            verbose,
            format_args!("[{id}] client connected (process {peer})"),
        );
        match (to, &mut stdin) {
            (Target::Stdio, Some(stdin)) => {
                // One client at a time, on this thread. The end of stdin
                // ends this client and the relay: nothing is left to send.
                // A handle of its own on stdout for each client: closing it
                // leaves the process's stdout open for the next.
                let r = pump::relay(&client, stdin, pump::outgoing(stdout_file()?), policy(eof));
                done(verbose, id, r, pipe, "stdin", "stdout");
                drop(slot);
                if stdin.ended() {
                    return Ok(());
                }
            }
            (Target::Exec(program), _) => {
                let program = program.clone();
                let pipe = pipe.to_string();
                thread::spawn(move || {
                    exec(client, &program, id, eof, verbose, &pipe);
                    drop(slot);
                });
            }
            (Target::Tcp(_), _) => {
                let Some(addr) = tcp else {
                    unreachable!("resolved above")
                };
                let pipe = pipe.to_string();
                thread::spawn(move || {
                    to_tcp(client, addr, id, eof, verbose, &pipe);
                    drop(slot);
                });
            }
            (Target::Stdio, None) => unreachable!("stdin is read for --stdio"),
        }
    }
}

fn done(
    verbose: bool,
    id: u64,
    r: Result<pump::Totals, Failed>,
    pipe: &str,
    reading: &str,
    writing: &str,
) {
    match r {
        Ok(t) => log(verbose, format_args!("[{id}] done: {}", totals(&t))),
        // One connection failing ends that connection and nothing else.
        Err(f) => eprintln!(
            "pipe-relay: {} [{id}] ended: {}",
            now(),
            failed_words(&f, pipe, reading, writing)
        ),
    }
}

/// Waits for the listener's clients.
struct Accepting {
    poll: Poll,
    events: Events,
}

impl Accepting {
    fn new(listener: &PipeListener) -> Result<Accepting, Failure> {
        let setup = |e: io::Error| {
            fail(
                FAILED,
                format!("cannot wait for clients: {}", cli::words(&e)),
            )
        };
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
                    self.poll.poll(&mut self.events, None).map_err(|e| {
                        fail(FAILED, format!("waiting for clients: {}", cli::words(&e)))
                    })?;
                }
                Err(e) => {
                    return Err(fail(
                        FAILED,
                        format!("accepting a client: {}", cli::words(&e)),
                    ))
                }
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

/// This process's stdout, taken over: closing it at the pipe's end (with
/// `--pipe-eof drain`) is then the end of the stream for its reader, while
/// the relay goes on sending stdin. A handle of our own alone would not do:
/// the process's would keep the stream open.
// The relay's one `unsafe`: a call whose contract only `main` can keep.
#[allow(unsafe_code)]
fn take_stdout() -> Result<File, Failure> {
    // SAFETY: `connect` calls this first, from `main`, before any other
    // thread starts and before anything borrowed stdout's handle; the relay
    // writes nothing to stdout through std afterwards (it logs to stderr).
    match unsafe { named_pipes_core::take_stdout() } {
        Ok(Some(h)) => Ok(File::from(h)),
        Ok(None) => Err(fail(FAILED, "cannot use stdout: there is none".into())),
        Err(e) => Err(fail(
            FAILED,
            format!("cannot use stdout: {}", cli::words(&e)),
        )),
    }
}

/// This process's stdout as a plain file handle of its own (see [`stdin_file`]).
fn stdout_file() -> Result<File, Failure> {
    own(io::stdout().as_handle(), "stdout")
}

/// A handle of our own on a standard stream.
fn own(h: BorrowedHandle<'_>, what: &str) -> Result<File, Failure> {
    h.try_clone_to_owned()
        .map(File::from)
        .map_err(|e| fail(FAILED, format!("cannot use {what}: {}", cli::words(&e))))
}

/// A client relayed to a new child process's stdin and stdout.
fn exec(client: NamedPipe, program: &[String], id: u64, eof: Eof, verbose: bool, pipe: &str) {
    let child = Command::new(&program[0])
        .args(&program[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "pipe-relay: {} [{id}] cannot start {}: {}",
                now(),
                program[0],
                cli::words(&e)
            );
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
    // The child's output ending (it exited) is the other side's end; the
    // client's end closes the child's stdin.
    let r = pump::relay(
        &client,
        &mut pump::incoming(stdout),
        pump::outgoing(stdin),
        policy(eof),
    );
    drop(client);
    let name = &program[0];
    done(
        verbose,
        id,
        r,
        pipe,
        &format!("{name}'s output"),
        &format!("{name}'s input"),
    );
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

/// Relays `pipe` to `stream` until the connection ends as `eof` says,
/// then closes the stream: its reading thread ends, and the caller drops
/// the pipe, freeing its instance.
fn pipe_and_tcp(pipe: &NamedPipe, stream: TcpStream, eof: Eof) -> Result<pump::Totals, Failed> {
    let _ = stream.set_nodelay(true);
    let clone = |s: &TcpStream| {
        s.try_clone().map_err(|error| Failed {
            side: Side::Reading,
            error,
        })
    };
    let reader = clone(&stream)?;
    let closer = clone(&stream)?;
    let r = pump::relay(
        pipe,
        &mut pump::incoming(reader),
        pump::outgoing(TcpWrite(stream)),
        policy(eof),
    );
    // Ends the reading thread too.
    let _ = closer.shutdown(Shutdown::Both);
    r
}

/// A client relayed to a new TCP connection to `addr`.
fn to_tcp(client: NamedPipe, addr: SocketAddr, id: u64, eof: Eof, verbose: bool, pipe: &str) {
    let stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "pipe-relay: {} [{id}] cannot connect to {addr}: {}",
                now(),
                cli::words(&e)
            );
            return;
        }
    };
    log(verbose, format_args!("[{id}] connected to {addr}"));
    let tcp = format!("the TCP connection to {addr}");
    done(
        verbose,
        id,
        pipe_and_tcp(&client, stream, eof),
        pipe,
        &tcp,
        &tcp,
    );
}

/// Whether a TCP peer on this machine runs as the relay's user; says why
/// not. A peer on another machine (with `--allow-remote-tcp`) cannot be
/// asked: it passes, logged.
fn same_user(stream: &TcpStream, id: u64, verbose: bool) -> bool {
    let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
        eprintln!(
            "pipe-relay: {} [{id}] refused: the connection is gone",
            now()
        );
        return false;
    };
    if !peer.ip().is_loopback() {
        log(
            verbose,
            format_args!("[{id}] {peer} is not on this machine: its user is not checked"),
        );
        return true;
    }
    // One lookup at a time, tried again a few times: Wine 8 names process
    // 0 now and then for lookups made at the same moment.
    static LOOKUP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let mut found = Err(io::Error::from(io::ErrorKind::NotFound));
    for attempt in 0..3 {
        if attempt > 0 {
            thread::sleep(Duration::from_millis(20));
        }
        let _one = LOOKUP.lock().unwrap_or_else(|e| e.into_inner());
        found = named_pipes_core::tcp_peer(local, peer);
        if found.is_ok() {
            break;
        }
    }
    match found {
        Ok(p) if p.same_user => {
            log(
                verbose,
                format_args!("[{id}] {peer} is process {}, of this user", p.process_id),
            );
            true
        }
        Ok(p) => {
            eprintln!(
                "pipe-relay: {} [{id}] connection from {peer} refused: its process {} runs as {}, not as this user (--any-tcp-peer lets it in)",
                now(),
                p.process_id,
                p.user_sid
            );
            false
        }
        Err(e) => {
            eprintln!(
                "pipe-relay: {} [{id}] connection from {peer} refused: cannot tell which user it is: {} (--any-tcp-peer lets it in)",
                now(),
                cli::words(&e)
            );
            false
        }
    }
}

/// `tcp-listen`: each TCP connection to `addr` relayed to a new client of `pipe`.
pub fn tcp_listen(
    addr: &str,
    pipe: &str,
    open: &Open,
    eof: Eof,
    clients: &Clients,
    verbose: bool,
) -> Result<(), Failure> {
    let at = tcp_addr(addr, clients.allow_remote_tcp)?;
    let listener = TcpListener::bind(at)
        .map_err(|e| fail(FAILED, format!("cannot listen on {at}: {}", cli::words(&e))))?;
    log(verbose, format_args!("listening on {at} for {pipe}"));
    let slots = Slots::new(clients);
    let check_user = !clients.any_tcp_peer;
    for (id, stream) in (1u64..).zip(listener.incoming()) {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "pipe-relay: {} accepting a TCP connection: {}",
                    now(),
                    cli::words(&e)
                );
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        let Some(slot) = slots.take() else {
            eprintln!(
                "pipe-relay: {} [{id}] connection from {peer} refused: {} connections already (--max-clients)",
                now(),
                slots.max
            );
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        };
        log(verbose, format_args!("[{id}] connection from {peer}"));
        let (pipe, open) = (pipe.to_string(), open.clone());
        thread::spawn(move || {
            if check_user && !same_user(&stream, id, verbose) {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            let who = format!("[{id}] ");
            let client = match open_pipe(&pipe, &open, verbose, &who) {
                Ok(c) => c,
                Err(f) => {
                    eprintln!("pipe-relay: {} [{id}] {}", now(), f.message);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            };
            let tcp = format!("the TCP connection from {peer}");
            done(
                verbose,
                id,
                pipe_and_tcp(&client, stream, eof),
                &pipe,
                &tcp,
                &tcp,
            );
            drop(client);
            drop(slot);
        });
    }
    Ok(())
}
