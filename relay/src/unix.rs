//! `pipe-relay unix-listen SOCKET PIPE`: the Linux side. It listens on a
//! Unix socket, starts ONE Windows-side process (`pipe-relay.exe
//! mux-serve PIPE`, through WSL interop or Wine) and carries every accepted
//! connection over that process's stdin and stdout with the framed
//! protocol of `mux`. If the Windows side dies, the connections in flight
//! fail and the next connection starts a new one.
//!
//! Threads: one reads the Windows side's frames (it never waits on a
//! client: what it hands a connection is bounded by that connection's
//! credit), and two per connection (socket to frames, frames to socket).
//! A slow client holds back only its own connection.

use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::mux::args::{UnixArgs, WINDOWS_RELAY_ENV};
use crate::mux::window::Credit;
use crate::mux::{read_frame, read_hello, Dir, Frame, Link, RecvWindow, Table, MAX_DATA, VERSION};

/// A failure of the command: exit code and one line.
type Fail = (u8, String);

/// How long the Windows side may take to answer the hello (a cold Wine
/// prefix takes seconds).
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);

fn log(verbose: bool, what: std::fmt::Arguments<'_>) {
    if verbose {
        static START: OnceLock<Instant> = OnceLock::new();
        let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
        eprintln!("pipe-relay: {t:9.3} {what}");
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs until the listener fails.
pub fn run(a: &UnixArgs) -> Result<(), Fail> {
    let cmd = windows_command(a)?;
    let listener = bind(&a.socket, a.mode, a.verbose)?;
    let sup = Supervisor {
        cmd,
        a: a.clone(),
        current: Mutex::new(None),
        starts: AtomicU64::new(0),
    };
    // Started at once, so that a wrong command says so now.
    if let Err(e) = sup.session() {
        let _ = fs::remove_file(&a.socket);
        return Err((1, e));
    }
    log(
        a.verbose,
        format_args!(
            "listening on {} (mode {:o}) for {}",
            a.socket, a.mode, a.pipe
        ),
    );
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, say: wait a little rather than spin.
                eprintln!("pipe-relay: accepting a connection on {}: {e}", a.socket);
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // A Windows side that died a moment ago is started again, once.
        let mut stream = Some(stream);
        for _ in 0..2 {
            let session = match sup.session() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("pipe-relay: a connection refused: {e}");
                    break;
                }
            };
            if lock(&session.conns).is_full() {
                eprintln!(
                    "pipe-relay: a connection refused: {} connections are open (--max-connections)",
                    a.max_conns
                );
                break;
            }
            match Session::start_conn(&session, stream.take().expect("once")) {
                Ok(()) => break,
                Err(s) => stream = Some(s),
            }
        }
    }
    Ok(())
}

/// The command that runs the Windows side: `--windows-relay`, the
/// environment variable, `pipe-relay.exe` next to this program, or on PATH.
fn windows_command(a: &UnixArgs) -> Result<Vec<String>, Fail> {
    if let Some(c) = &a.windows_relay {
        return Ok(c.clone());
    }
    if let Ok(v) = std::env::var(WINDOWS_RELAY_ENV) {
        let words: Vec<String> = v.split_whitespace().map(str::to_string).collect();
        if !words.is_empty() {
            return Ok(words);
        }
    }
    let exe = "pipe-relay.exe";
    let next_to_us = std::env::current_exe()
        .ok()
        .map(|p| p.with_file_name(exe))
        .filter(|p| p.is_file());
    let on_path = || {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(exe))
                .find(|p| p.is_file())
        })
    };
    match next_to_us.or_else(on_path) {
        Some(p) => Ok(vec![p.to_string_lossy().into_owned()]),
        None => Err((
            1,
            format!(
                "cannot find {exe}, the Windows side: put it next to this program or on PATH, \
                 or name it with --windows-relay 'COMMAND' or {WINDOWS_RELAY_ENV}"
            ),
        )),
    }
}

/// Binds the socket with `mode` from the start: in a private directory
/// next to it, then renamed into place. A socket file left by a relay that
/// is gone is replaced; one that something listens on is not.
fn bind(path: &str, mode: u32, verbose: bool) -> Result<UnixListener, Fail> {
    let p = Path::new(path);
    let fail = |what: String| (1u8, format!("{path}: {what}"));
    match fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_socket() => match UnixStream::connect(p) {
            Ok(_) => return Err(fail("something listens on this socket already".into())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                fs::remove_file(p)
                    .map_err(|e| fail(format!("cannot remove the stale socket file: {e}")))?;
                log(
                    verbose,
                    format_args!("removed the stale socket file {path}"),
                );
            }
            Err(e) => return Err(fail(format!("cannot check the socket file there: {e}"))),
        },
        Ok(_) => return Err(fail("exists and is not a socket: not replaced".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".pipe-relay-{}-{nanos}", std::process::id()));
    let private = fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .and_then(|()| {
            let tp = tmp.join("s");
            let l = UnixListener::bind(&tp)?;
            fs::set_permissions(&tp, fs::Permissions::from_mode(mode))?;
            fs::rename(&tp, p)?;
            Ok(l)
        });
    let _ = fs::remove_dir(&tmp);
    match private {
        Ok(l) => Ok(l),
        // A path too long for the private directory's detour, say: bind in
        // place and set the mode right after.
        Err(_) => {
            let l = UnixListener::bind(p).map_err(|e| fail(format!("cannot listen: {e}")))?;
            fs::set_permissions(p, fs::Permissions::from_mode(mode))
                .map_err(|e| fail(format!("cannot set the mode: {e}")))?;
            Ok(l)
        }
    }
}

/// Starts the Windows side when there is none alive.
struct Supervisor {
    cmd: Vec<String>,
    a: UnixArgs,
    current: Mutex<Option<Arc<Session>>>,
    starts: AtomicU64,
}

impl Supervisor {
    fn session(&self) -> Result<Arc<Session>, String> {
        let mut cur = lock(&self.current);
        if let Some(s) = cur.as_ref().filter(|s| !s.dead.load(Ordering::SeqCst)) {
            return Ok(s.clone());
        }
        let n = self.starts.fetch_add(1, Ordering::Relaxed);
        if n > 0 {
            log(self.a.verbose, format_args!("restarting the Windows side"));
        }
        let s = Session::start(&self.cmd, &self.a)?;
        *cur = Some(s.clone());
        Ok(s)
    }
}

/// What the frame reader hands a connection's socket writer.
enum Out {
    Data(Vec<u8>),
    /// The pipe's half-close.
    End,
    /// The connection is over (the reason, empty if nothing failed).
    Close(String),
}

/// One connection, as the frame reader sees it.
struct Conn {
    tx: Sender<Out>,
    credit: Credit,
    recv: Mutex<RecvWindow>,
}

/// One Windows-side process and the connections it carries.
struct Session {
    link: Link<ChildStdin>,
    conns: Mutex<Table<Arc<Conn>>>,
    dead: AtomicBool,
    /// The hello was answered: its end is news.
    started: AtomicBool,
    next: AtomicU32,
    child: Mutex<Child>,
    verbose: bool,
}

impl Session {
    fn start(cmd: &[String], a: &UnixArgs) -> Result<Arc<Session>, String> {
        let shown = cmd.join(" ");
        let mut c = Command::new(&cmd[0]);
        c.args(&cmd[1..]).arg("mux-serve");
        if a.verbose {
            c.arg("-v");
        }
        c.args(&a.serve_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot start the Windows side `{shown}`: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the Windows side has no stdin or stdout".into());
        };
        log(
            a.verbose,
            format_args!(
                "started the Windows side `{shown}` (process {})",
                child.id()
            ),
        );
        let s = Arc::new(Session {
            link: Link::new(stdin),
            conns: Mutex::new(Table::new(a.max_conns)),
            dead: AtomicBool::new(false),
            started: AtomicBool::new(false),
            next: AtomicU32::new(1),
            child: Mutex::new(child),
            verbose: a.verbose,
        });
        let (htx, hrx) = mpsc::channel();
        let s2 = s.clone();
        let peer = format!("the Windows side `{shown}`");
        let p2 = peer.clone();
        thread::spawn(move || s2.read_loop(stdout, htx, &p2));
        let sent = s.link.send(&Frame::Hello { version: VERSION });
        let said = match hrx.recv_timeout(HELLO_TIMEOUT) {
            Ok(r) => r.and_then(|()| sent.map_err(|e| format!("{peer}: {e}"))),
            Err(_) => Err(format!(
                "{peer} did not answer in {} s",
                HELLO_TIMEOUT.as_secs()
            )),
        };
        if let Err(e) = said {
            s.die("it failed to start");
            return Err(e);
        }
        s.started.store(true, Ordering::SeqCst);
        Ok(s)
    }

    /// Reads the Windows side's frames until it ends.
    fn read_loop(self: Arc<Self>, out: ChildStdout, hello: Sender<Result<(), String>>, peer: &str) {
        let mut r = BufReader::with_capacity(256 * 1024, out);
        let ok = read_hello(&mut r, peer).map_err(|e| e.0);
        let failed = ok.is_err();
        let _ = hello.send(ok);
        if failed {
            self.die("a bad start");
            return;
        }
        let why = loop {
            match read_frame(&mut r) {
                Ok(Some(f)) => {
                    if let Err(e) = self.dispatch(f) {
                        break format!("it broke the protocol: {e}");
                    }
                }
                Ok(None) => break "it ended".to_string(),
                Err(e) => break format!("reading it failed: {e}"),
            }
        };
        self.die(&why);
    }

    fn dispatch(&self, f: Frame) -> Result<(), String> {
        let get = |c: u32| lock(&self.conns).get(c).cloned();
        match f {
            Frame::Data(c, v) => {
                if let Some(conn) = get(c) {
                    lock(&conn.recv).on_data(v.len()).map_err(|e| e.0)?;
                    let _ = conn.tx.send(Out::Data(v));
                }
            }
            Frame::HalfClose(c, Dir::FromPipe) => {
                if let Some(conn) = get(c) {
                    let _ = conn.tx.send(Out::End);
                }
            }
            Frame::Close(c, reason) => {
                if let Some(conn) = lock(&self.conns).remove(c) {
                    conn.credit.close();
                    let _ = conn.tx.send(Out::Close(reason));
                }
            }
            Frame::Credit(c, n) => {
                if let Some(conn) = get(c) {
                    conn.credit.grant(n).map_err(|e| e.0)?;
                }
            }
            Frame::Hello { .. } | Frame::Open(_) | Frame::HalfClose(_, Dir::ToPipe) => {
                return Err("a frame only the Linux side sends".into())
            }
        }
        Ok(())
    }

    /// The Windows side is gone (or must go): every connection in flight
    /// fails; the next connection starts a new one.
    fn die(&self, why: &str) {
        let conns: Vec<Arc<Conn>> = {
            let mut m = lock(&self.conns);
            if self.dead.swap(true, Ordering::SeqCst) {
                return;
            }
            m.drain()
        };
        let reason = format!("the Windows side ended ({why})");
        for c in &conns {
            c.credit.close();
            let _ = c.tx.send(Out::Close(reason.clone()));
        }
        let mut child = lock(&self.child);
        let _ = child.kill();
        let status = child.wait();
        if !self.started.load(Ordering::SeqCst) {
            return;
        }
        eprintln!(
            "pipe-relay: the Windows side ended: {why} ({}); {} connection(s) in flight failed; \
             the next connection starts it again",
            status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            conns.len()
        );
    }

    fn live(&self, c: u32) -> bool {
        lock(&self.conns).get(c).is_some()
    }

    /// Ends connection `c` from this side, telling the Windows side why.
    fn end(&self, c: u32, why: String) {
        if let Some(conn) = lock(&self.conns).remove(c) {
            conn.credit.close();
            let _ = conn.tx.send(Out::Close(String::new()));
            let _ = self.link.send(&Frame::Close(c, why));
        }
    }

    /// Carries `stream` as a new connection; gives it back if this
    /// Windows side is dead.
    fn start_conn(s: &Arc<Session>, stream: UnixStream) -> Result<(), UnixStream> {
        let c = loop {
            let c = s.next.fetch_add(1, Ordering::Relaxed);
            if c != 0 {
                break c;
            }
        };
        let (tx, rx) = mpsc::channel();
        let conn = Arc::new(Conn {
            tx,
            credit: Credit::default(),
            recv: Mutex::default(),
        });
        let writer = match stream.try_clone() {
            Ok(w) => w,
            Err(e) => {
                eprintln!("pipe-relay: [{c}] cannot use the connection: {e}");
                return Ok(());
            }
        };
        {
            let mut m = lock(&s.conns);
            if s.dead.load(Ordering::SeqCst) {
                return Err(stream);
            }
            if let Err(e) = m.insert(c, conn.clone()) {
                eprintln!("pipe-relay: a connection refused: {e}");
                return Ok(());
            }
        }
        log(s.verbose, format_args!("[{c}] connection"));
        if let Err(e) = s.link.send(&Frame::Open(c)) {
            lock(&s.conns).remove(c);
            s.die(&format!("writing to it failed: {e}"));
            return Err(stream);
        }
        let (s1, s2) = (s.clone(), s.clone());
        let conn2 = conn.clone();
        thread::spawn(move || s1.pipe_to_client(c, writer, rx, &conn2));
        thread::spawn(move || s2.client_to_pipe(c, stream, &conn));
        Ok(())
    }

    /// The pipe's bytes to the client; credit back as they are written.
    fn pipe_to_client(&self, c: u32, mut s: UnixStream, rx: Receiver<Out>, conn: &Conn) {
        let mut sent = 0u64;
        for m in rx.iter() {
            match m {
                Out::Data(v) => {
                    if let Err(e) = s.write_all(&v) {
                        log(
                            self.verbose,
                            format_args!("[{c}] the client went away: {e}"),
                        );
                        self.end(c, format!("the Unix socket's client went away: {e}"));
                        break;
                    }
                    sent += v.len() as u64;
                    let grant = lock(&conn.recv).on_consumed(v.len());
                    if let Some(g) = grant {
                        let _ = self.link.send(&Frame::Credit(c, g));
                    }
                }
                Out::End => {
                    log(self.verbose, format_args!("[{c}] the pipe's half-close"));
                    let _ = s.shutdown(Shutdown::Write);
                }
                Out::Close(reason) => {
                    if reason.is_empty() {
                        log(
                            self.verbose,
                            format_args!("[{c}] done: {sent} bytes to the client"),
                        );
                    } else {
                        eprintln!("pipe-relay: [{c}] {reason}");
                    }
                    break;
                }
            }
        }
        let _ = s.shutdown(Shutdown::Both);
    }

    /// The client's bytes to the pipe, as credit allows.
    fn client_to_pipe(&self, c: u32, mut s: UnixStream, conn: &Conn) {
        let mut buf = vec![0u8; MAX_DATA];
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) => return self.client_ended(c, &s),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.end(c, format!("reading the Unix socket's client failed: {e}"));
                    return;
                }
            };
            let mut off = 0;
            while off < n {
                let Some(k) = conn.credit.wait_take(n - off) else {
                    return;
                };
                let f = Frame::Data(c, buf[off..off + k].to_vec());
                if let Err(e) = self.link.send(&f) {
                    self.die(&format!("writing to it failed: {e}"));
                    return;
                }
                off += k;
            }
        }
    }

    /// The client's stream ended: a close (its socket hung up) ends the
    /// connection; a half-close (`shutdown(SHUT_WR)`, Docker's attach and
    /// exec) goes to the pipe and the connection goes on until the pipe ends
    /// or the client closes.
    fn client_ended(&self, c: u32, s: &UnixStream) {
        if !self.live(c) {
            return;
        }
        if hung_up(s, 0) {
            log(self.verbose, format_args!("[{c}] the client closed"));
            self.end(c, String::new());
            return;
        }
        log(self.verbose, format_args!("[{c}] the client's half-close"));
        let _ = self.link.send(&Frame::HalfClose(c, Dir::ToPipe));
        while self.live(c) {
            if hung_up(s, 1000) {
                log(self.verbose, format_args!("[{c}] the client closed"));
                self.end(c, String::new());
                return;
            }
        }
    }
}

/// Whether the peer of `s` closed its socket (not just its sending
/// direction), waiting at most `ms` milliseconds for it.
fn hung_up(s: &UnixStream, ms: i32) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(s, PollFlags::empty())];
    match poll(&mut fds, ms) {
        Ok(_) => fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR),
        Err(_) => false,
    }
}
