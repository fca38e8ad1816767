//! `pipe-relay unix-listen` from Linux, with real Linux clients (curl, and
//! Unix sockets of this process): the relay built for Linux in front of
//! the Windows relay and a Docker-like server (`examples/http_pipe_server`),
//! both run through Wine.
//!
//! The Windows programs are named by the environment (`cargo xtask test`
//! builds them and sets it):
//! - `PIPE_RELAY_EXE`: `pipe-relay.exe`;
//! - `PIPE_RELAY_TEST_SERVER`: `http_pipe_server.exe`;
//! - `PIPE_RELAY_WINE`: how to run a Windows program (default `wine`).
//!
//! Without them the tests that need Windows say `NOT RUN` loudly and pass,
//! unless `PIPE_RELAY_REQUIRE_WINDOWS=1` (as in `cargo xtask test`): then
//! they fail. Every test is bounded in time.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const RELAY: &str = env!("CARGO_BIN_EXE_pipe-relay");

/// The byte at `i` of the stream of `seed` (as `http_pipe_server` makes it).
fn byte(i: u64, seed: u64) -> u8 {
    ((i.wrapping_add(seed.wrapping_mul(7919))).wrapping_mul(2_654_435_761) >> 13) as u8
}

/// The Windows programs, or `None` (said loudly) when not given.
fn windows() -> Option<(Vec<String>, String, String)> {
    let exe = std::env::var("PIPE_RELAY_EXE").ok();
    let server = std::env::var("PIPE_RELAY_TEST_SERVER").ok();
    let wine: Vec<String> = std::env::var("PIPE_RELAY_WINE")
        .unwrap_or_else(|_| "wine".into())
        .split_whitespace()
        .map(str::to_string)
        .collect();
    match (exe, server) {
        (Some(e), Some(s)) if Path::new(&e).is_file() && Path::new(&s).is_file() => {
            Some((wine, e, s))
        }
        (e, s) => {
            let why = format!(
                "the Windows programs are missing (PIPE_RELAY_EXE={e:?}, PIPE_RELAY_TEST_SERVER={s:?}): \
                 run `cargo xtask test`, which builds them"
            );
            if std::env::var_os("PIPE_RELAY_REQUIRE_WINDOWS").is_some() {
                panic!("{why}");
            }
            // Straight to stderr, past the test harness's capture, once.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\nNOT RUN: the unix-listen tests that need Windows programs pass without \
                     checking anything here: {why}\n"
                );
            });
            None
        }
    }
}

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let d = std::env::temp_dir().join(unique("pipe-relay-unix-test"));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server under Wine and `unix-listen` in front of it.
struct Fixture {
    server: Child,
    relay: Child,
    sock: PathBuf,
    log: Arc<Mutex<String>>,
    _dir: Dir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // The relay's end closes the Windows side's stdin: it ends too.
        let _ = self.relay.kill();
        let _ = self.relay.wait();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Collects the lines of `r` into `log` on a thread.
fn collect(r: impl Read + Send + 'static, log: Arc<Mutex<String>>) {
    thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            eprintln!("  | {line}");
            let mut l = log.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
}

fn wait_for(log: &Mutex<String>, what: &str, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if log.lock().unwrap().contains(what) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Fixture {
    fn start(extra: &[&str]) -> Option<Fixture> {
        let (wine, exe, server_exe) = windows()?;
        let pipe = format!("//./pipe/{}", unique("mux-test"));
        let dir = Dir::new();
        let sock = dir.0.join("relay.sock");
        let mut server = Command::new(&wine[0])
            .args(&wine[1..])
            .arg(&server_exe)
            .arg(&pipe)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the test server under Wine");
        let log = Arc::new(Mutex::new(String::new()));
        collect(server.stdout.take().unwrap(), log.clone());
        assert!(
            wait_for(&log, "ready", Duration::from_secs(60)),
            "the test server did not start"
        );
        let windows_relay = format!("{} {exe}", wine.join(" "));
        let mut relay = Command::new(RELAY)
            .arg("-v")
            .arg("unix-listen")
            .arg(&sock)
            .arg(&pipe)
            .args(["--windows-relay", &windows_relay])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start unix-listen");
        collect(relay.stderr.take().unwrap(), log.clone());
        let f = Fixture {
            server,
            relay,
            sock,
            log,
            _dir: dir,
        };
        assert!(
            wait_for(&f.log, "listening on", Duration::from_secs(60)),
            "unix-listen did not start: {}",
            f.log.lock().unwrap()
        );
        Some(f)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// Runs `f` on a thread; fails if it takes longer than `secs`.
fn bounded<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("not done in {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the test's thread panicked"),
    }
}

/// `curl --unix-socket SOCK http://localhost/PATH`: the body, or what failed.
fn curl(sock: &Path, path: &str) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "-m", "30", "--unix-socket"])
        .arg(sock)
        .arg(format!("http://localhost{path}"))
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).expect("connect to the relay's socket");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(120))).unwrap();
    s
}

/// Reads a response's head; returns what came after it.
fn read_head(s: &mut UnixStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            return (head, buf[i + 4..].to_vec());
        }
        let n = s.read(&mut chunk).expect("read the response head");
        assert!(n > 0, "the stream ended inside the head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads `len` bytes of the stream of `seed`, checking each; `already`
/// came with the head.
fn read_checked(s: &mut UnixStream, already: Vec<u8>, len: u64, seed: u64) {
    let mut at = 0u64;
    let check = |got: &[u8], at: &mut u64| {
        for b in got {
            assert_eq!(*b, byte(*at, seed), "byte {at} of stream {seed} differs");
            *at += 1;
        }
    };
    check(&already, &mut at);
    let mut buf = vec![0u8; 256 * 1024];
    while at < len {
        let want = ((len - at) as usize).min(buf.len());
        let n = s.read(&mut buf[..want]).expect("read the body");
        assert!(n > 0, "stream {seed} ended at {at} of {len}");
        check(&buf[..n], &mut at);
    }
}

#[test]
fn http_requests_sequential_and_8_parallel_all_succeed() {
    let Some(f) = Fixture::start(&[]) else { return };
    let sock = f.sock.clone();
    let failures = bounded(600, move || {
        let mut failures = Vec::new();
        for i in 0..200 {
            match curl(&sock, "/ping") {
                Ok(b) if b == "pong" => {}
                other => failures.push(format!("sequential {i}: {other:?}")),
            }
        }
        let par: Vec<_> = (0..8)
            .map(|t| {
                let sock = sock.clone();
                thread::spawn(move || {
                    let mut f = Vec::new();
                    for i in 0..25 {
                        match curl(&sock, "/ping") {
                            Ok(b) if b == "pong" => {}
                            other => f.push(format!("parallel {t}/{i}: {other:?}")),
                        }
                    }
                    f
                })
            })
            .collect();
        for t in par {
            failures.extend(t.join().unwrap());
        }
        failures
    });
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}",
        failures.len()
    );
}

#[test]
fn thirty_two_concurrent_4_mib_transfers_each_checked() {
    let Some(f) = Fixture::start(&[]) else { return };
    let sock = f.sock.clone();
    const LEN: u64 = 4 << 20;
    bounded(600, move || {
        let ts: Vec<_> = (0..32u64)
            .map(|seed| {
                let sock = sock.clone();
                thread::spawn(move || {
                    let mut s = connect(&sock);
                    let mut w = s.try_clone().unwrap();
                    // Both ways at once: the body goes up while the echo
                    // comes down.
                    let up = thread::spawn(move || {
                        w.write_all(
                            format!("POST /echo HTTP/1.1\r\nContent-Length: {LEN}\r\n\r\n")
                                .as_bytes(),
                        )
                        .unwrap();
                        let body: Vec<u8> = (0..LEN).map(|i| byte(i, seed)).collect();
                        for c in body.chunks(100_000) {
                            w.write_all(c).unwrap();
                        }
                    });
                    let (head, rest) = read_head(&mut s);
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    read_checked(&mut s, rest, LEN, seed);
                    up.join().unwrap();
                })
            })
            .collect();
        for t in ts {
            t.join().expect("a transfer failed");
        }
    });
    drop(f);
}

#[test]
fn a_slow_client_does_not_stall_the_others() {
    let Some(f) = Fixture::start(&[]) else { return };
    let sock = f.sock.clone();
    let relay = f.relay.id();
    const LEN: u64 = 64 << 20;
    bounded(300, move || {
        // A client that asks for 64 MiB and reads none of it for now.
        let mut slow = connect(&sock);
        slow.write_all(format!("GET /bytes/{LEN}/7 HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
        thread::sleep(Duration::from_millis(500));
        for i in 0..50 {
            assert_eq!(curl(&sock, "/ping").as_deref(), Ok("pong"), "request {i}");
        }
        // What the slow client does not read waits in the pipe, not in
        // the Linux relay: it holds at most the connection's window.
        let status = std::fs::read_to_string(format!("/proc/{relay}/status")).unwrap();
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .expect("VmRSS");
        assert!(rss_kib < 32 * 1024, "unix-listen holds {rss_kib} KiB");
        // Nothing of the slow one was lost while it was held back.
        let (head, rest) = read_head(&mut slow);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        read_checked(&mut slow, rest, LEN, 7);
    });
    drop(f);
}

#[test]
fn the_windows_side_killed_mid_run_the_next_connection_works() {
    let Some(f) = Fixture::start(&[]) else { return };
    let log = f.log();
    let pid: u32 = log
        .lines()
        .find_map(|l| l.split("(process ").nth(1)?.split(')').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no process id in the log: {log}"));
    let sock = f.sock.clone();
    bounded(300, move || {
        // A connection in flight: 1 GiB asked for, 1 MiB read.
        let mut s = connect(&sock);
        s.write_all(b"GET /bytes/1073741824/3 HTTP/1.1\r\n\r\n")
            .unwrap();
        let (_, rest) = read_head(&mut s);
        read_checked(&mut s, rest, 1 << 20, 3);
        let st = Command::new("kill").args(["-9", &pid.to_string()]).status();
        assert!(st.unwrap().success(), "kill -9 {pid}");
        // The connection in flight fails: its stream ends early.
        let mut rest = Vec::new();
        let got = s.read_to_end(&mut rest);
        assert!(
            got.is_err() || (rest.len() as u64) < (1 << 30) - (1 << 20),
            "the connection in flight went on"
        );
        // The next one starts a new Windows side, and works.
        assert_eq!(curl(&sock, "/ping").as_deref(), Ok("pong"));
        assert_eq!(curl(&sock, "/ping").as_deref(), Ok("pong"));
    });
    let log = f.log();
    assert!(log.contains("restarting the Windows side"), "{log}");
    assert!(log.contains("connection(s) in flight failed"), "{log}");
}

#[test]
fn the_servers_zero_byte_message_half_closes_that_connection() {
    let Some(f) = Fixture::start(&["--pipe-eof", "drain"]) else {
        return;
    };
    let sock = f.sock.clone();
    bounded(120, move || {
        let mut s = connect(&sock);
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"GET /halfclose HTTP/1.1\r\n\r\n").unwrap();
        // The server keeps its pipe open after the zero-byte message: the
        // client's stream must end all the same.
        let mut got = Vec::new();
        s.read_to_end(&mut got)
            .expect("the client's stream ended at the zero-byte message");
        assert!(
            got.ends_with(b"\r\n\r\nbye"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        // With `--pipe-eof drain` only that direction ended: the client may
        // still send (by default the connection ends there, so a write may
        // find the socket closed).
        s.write_all(b"x")
            .expect("the other direction is still open");
    });
    drop(f);
}

#[test]
fn a_clients_half_close_keeps_the_answer_coming() {
    let Some(f) = Fixture::start(&[]) else { return };
    let sock = f.sock.clone();
    bounded(120, move || {
        let mut s = connect(&sock);
        s.write_all(b"GET /bytes/1000000/5 HTTP/1.1\r\n\r\n")
            .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let (head, rest) = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        read_checked(&mut s, rest, 1_000_000, 5);
    });
    assert!(f.log().contains("the client's half-close"), "{}", f.log());
}

#[test]
fn the_socket_is_private_and_a_stale_one_is_replaced() {
    // A socket file left by a process that is gone.
    let dir = Dir::new();
    let sock = dir.0.join("stale.sock");
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let Some(f) = Fixture::start(&[]) else { return };
    // The fixture's own socket: 0600 by default.
    let mode = std::fs::metadata(&f.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // unix-listen on the stale path replaces it, with the mode asked for.
    let (wine, exe, _) = windows().unwrap();
    let mut r = Command::new(RELAY)
        .arg("unix-listen")
        .arg(&sock)
        .arg(format!("//./pipe/{}", unique("nobody-serves-this")))
        .args(["--windows-relay", &format!("{} {exe}", wine.join(" "))])
        .args(["--mode", "660"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    collect(r.stderr.take().unwrap(), log.clone());
    let t = Instant::now();
    while UnixStream::connect(&sock).is_err() && t.elapsed() < Duration::from_secs(60) {
        thread::sleep(Duration::from_millis(50));
    }
    let mode = std::fs::metadata(&sock).map(|m| m.permissions().mode() & 0o777);
    // A pipe that cannot be opened fails that connection, with the reason
    // in the log, and nothing else: the next connection is served the same.
    let sock2 = sock.clone();
    let ended = bounded(120, move || {
        (0..2)
            .map(|_| {
                let mut s = connect(&sock2);
                let _ = s.write_all(b"GET /ping HTTP/1.1\r\n\r\n");
                let mut got = Vec::new();
                s.read_to_end(&mut got).map(|_| got.len()).ok()
            })
            .collect::<Vec<_>>()
    });
    let said = wait_for(&log, "no such pipe", Duration::from_secs(10));
    let alive = r.try_wait().unwrap().is_none();
    let _ = r.kill();
    let _ = r.wait();
    assert_eq!(
        mode.ok(),
        Some(0o660),
        "unix-listen did not replace the stale socket"
    );
    assert_eq!(
        ended,
        [Some(0), Some(0)],
        "each connection ends with nothing"
    );
    assert!(said, "the reason is logged: {}", log.lock().unwrap());
    assert!(alive, "unix-listen went on");
}

/// Refusals that need no Windows side: each a clear line and a failure.
#[test]
fn refusals_are_clear() {
    let dir = Dir::new();
    // Something listens on the path: it is left alone.
    let busy = dir.0.join("busy.sock");
    let _held = UnixListener::bind(&busy).unwrap();
    // A file that is not a socket is not replaced.
    let file = dir.0.join("file");
    std::fs::write(&file, "keep me").unwrap();
    for (path, relay, says) in [
        (&busy, "true", "something listens on this socket already"),
        (&file, "true", "is not a socket"),
        (
            &dir.0.join("new.sock"),
            "/nonexistent/pipe-relay.exe",
            "cannot start the Windows side",
        ),
        (&dir.0.join("new2.sock"), "true", "ended before its hello"),
    ] {
        let out = bounded(60, {
            let path = path.clone();
            move || {
                Command::new(RELAY)
                    .arg("unix-listen")
                    .arg(&path)
                    .arg("//./pipe/x")
                    .args(["--windows-relay", relay])
                    .output()
                    .unwrap()
            }
        });
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{path:?}: {err}");
        assert!(err.contains(says), "{path:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{path:?}: one line: {err}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    assert!(
        UnixStream::connect(&busy).is_ok(),
        "the busy socket was left alone"
    );
    assert!(
        !dir.0.join("new.sock").exists(),
        "a failed start leaves no socket"
    );
}

/// The Windows side against a peer that is not `unix-listen`: one clear
/// line and a failure, never a panic.
#[test]
fn mux_serve_refuses_a_bad_peer_clearly() {
    let Some((wine, exe, _)) = windows() else {
        return;
    };
    let hello = |version: u16| {
        let mut v = vec![0u8, 0, 0, 0, 0, 0, 0, 0, 16];
        v.extend_from_slice(b"pipe-relay-mux");
        v.extend_from_slice(&version.to_be_bytes());
        v
    };
    let mut huge = hello(1);
    huge.extend_from_slice(&[2, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
    let mut cheat = hello(1);
    cheat.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 0]);
    cheat.extend_from_slice(&[5, 0, 0, 0, 1, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]);
    for (input, says) in [
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "does not speak"),
        (hello(9), "version 9"),
        (huge, "at most"),
        (cheat, "credit of"),
        (hello(1)[..5].to_vec(), "ended inside a frame"),
    ] {
        let (wine, exe) = (wine.clone(), exe.clone());
        let out = bounded(120, move || {
            let mut c = Command::new(&wine[0])
                .args(&wine[1..])
                .arg(&exe)
                .args(["mux-serve", "//./pipe/x"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut i = c.stdin.take().unwrap();
            let _ = i.write_all(&input);
            drop(i);
            c.wait_with_output().unwrap()
        });
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{says}: {err}");
        assert!(err.contains(says), "{says}: {err}");
        assert!(!err.contains("panicked"), "{says}: {err}");
    }
}

#[test]
fn connections_beyond_the_limit_are_refused_and_the_others_go_on() {
    let Some(f) = Fixture::start(&["--max-connections", "2"]) else {
        return;
    };
    let sock = f.sock.clone();
    bounded(120, move || {
        let held: Vec<UnixStream> = (0..2u64)
            .map(|seed| {
                let mut s = connect(&sock);
                s.write_all(format!("GET /bytes/1000000/{seed} HTTP/1.1\r\n\r\n").as_bytes())
                    .unwrap();
                s
            })
            .collect();
        thread::sleep(Duration::from_millis(500));
        let mut third = connect(&sock);
        let _ = third.write_all(b"GET /ping HTTP/1.1\r\n\r\n");
        let mut got = Vec::new();
        let _ = third.read_to_end(&mut got);
        assert!(got.is_empty(), "the third connection was served");
        for (seed, mut s) in (0..2u64).zip(held) {
            let (head, rest) = read_head(&mut s);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            read_checked(&mut s, rest, 1_000_000, seed);
        }
    });
    assert!(f.log().contains("(--max-connections)"), "{}", f.log());
}
