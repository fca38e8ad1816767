//! A randomized simulation of the engine against a model pipe.
//!
//! The simulated kernel holds a peer: the bytes (or messages) it sends on
//! the current connection, and what it has received. Operations start
//! pending or finish at once, at random; pending ones complete in random
//! order (reads in issue order among themselves, as the pipe serves them),
//! with random successes, partial writes and every error the table knows.
//! The user side makes random calls. After every step the invariants hold:
//! no kernel call after close, close once and only after a drop with no
//! write in flight, every buffer returned, the bytes read are exactly the
//! peer's stream of the current connection (whole messages in message
//! mode), the peer receives exactly what `write` accepted, in order, and
//! every `WouldBlock` leaves an operation in flight that will end it.

use std::collections::VecDeque;
use std::io;

use super::table::*;
use super::*;

/// splitmix64: small, fast and good enough to pick scenarios.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// What kind of operation a pending one is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Connect,
    Read,
    Write,
}

struct Pending {
    id: u32,
    kind: Kind,
    buf: Vec<u8>,
    /// Started on an earlier connection (before a disconnect).
    stale: bool,
    cancelled: bool,
}

/// The model pipe and its peer.
struct Sim {
    rng: Rng,
    message: bool,
    next_id: u32,
    pending: Vec<Pending>,
    /// Buffers handed to the kernel and not yet returned.
    out: usize,
    closed: u32,
    calls_after_close: u32,
    /// The connection's number; bumped by a disconnect.
    generation: u32,
    /// A client is connected on the peer side (for a listening server).
    peer_there: bool,
    /// The peer closed its end: reads end with ERROR_BROKEN_PIPE.
    peer_gone: bool,
    /// The peer's messages (byte mode: chunks of its stream) not yet read.
    to_read: VecDeque<Vec<u8>>,
    /// Every message the peer sent on this connection, in order.
    sent: Vec<Vec<u8>>,
    /// The same, as one stream.
    stream: Vec<u8>,
    /// What the peer received on this connection.
    received: Vec<u8>,
    peek_fails: bool,
}

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

const RANDOM_ERRORS: [i32; 6] = [
    ERROR_BROKEN_PIPE,
    ERROR_NO_DATA,
    ERROR_PIPE_LISTENING,
    ERROR_OPERATION_ABORTED,
    ERROR_PIPE_NOT_CONNECTED,
    31, // ERROR_GEN_FAILURE: anything else
];

impl Sim {
    fn id(&mut self) -> u32 {
        if self.closed > 0 {
            self.calls_after_close += 1;
        }
        self.next_id += 1;
        self.next_id
    }

    fn random_error(&mut self) -> i32 {
        RANDOM_ERRORS[self.rng.below(RANDOM_ERRORS.len())]
    }

    /// The peer sends a message (byte mode: a chunk of its stream). Its
    /// content encodes the connection, its index and each byte's position.
    fn peer_sends(&mut self) {
        let index = self.sent.len() as u32;
        let len = match self.rng.below(4) {
            0 => 1,
            1 => 1 + self.rng.below(100),
            2 => 1 + self.rng.below(MIN_READ * 3),
            _ => 1 + self.rng.below(40_000),
        };
        let seed = self
            .generation
            .wrapping_mul(7919)
            .wrapping_add(index.wrapping_mul(31));
        let msg: Vec<u8> = (0..len).map(|i| (seed as usize + i * 13) as u8).collect();
        self.stream.extend_from_slice(&msg);
        self.sent.push(msg.clone());
        self.to_read.push_back(msg);
    }

    /// Takes at most `room` bytes of what waits, as a real pipe serves a read:
    /// byte mode across chunks, message mode within one message. Returns the
    /// bytes and whether a message goes on (ERROR_MORE_DATA).
    fn take(&mut self, room: usize) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        while got.len() < room {
            let Some(front) = self.to_read.front_mut() else {
                break;
            };
            let n = front.len().min(room - got.len());
            got.extend(front.drain(..n));
            if front.is_empty() {
                self.to_read.pop_front();
                if self.message {
                    return (got, false);
                }
            } else if self.message {
                return (got, true);
            }
        }
        (got, false)
    }

    fn read_result(&mut self, mut buf: Vec<u8>, stale: bool) -> (Vec<u8>, Outcome) {
        if stale {
            // A read of the old connection: cancelled, or finished with old
            // data before the disconnect; either way nobody may see it.
            if self.rng.chance(50) {
                let n = 3.min(buf.capacity() - buf.len());
                buf.extend(std::iter::repeat(0xEE).take(n));
                return (
                    buf,
                    Outcome {
                        bytes: n,
                        error: None,
                    },
                );
            }
            return (buf, Outcome::err(os(ERROR_OPERATION_ABORTED)));
        }
        if self.rng.chance(3) {
            let e = self.random_error();
            return (buf, Outcome::err(os(e)));
        }
        if self.to_read.is_empty() && self.peer_gone {
            return (buf, Outcome::err(os(ERROR_BROKEN_PIPE)));
        }
        let room = buf.capacity() - buf.len();
        let (data, more) = self.take(room);
        let n = data.len();
        buf.extend_from_slice(&data);
        let error = more.then(|| os(ERROR_MORE_DATA));
        (buf, Outcome { bytes: n, error })
    }

    fn write_result(&mut self, buf: &[u8], stale: bool) -> Outcome {
        if stale {
            return Outcome::err(os(ERROR_PIPE_NOT_CONNECTED));
        }
        if self.rng.chance(3) {
            let e = self.random_error();
            return Outcome::err(os(e));
        }
        let n = if !self.message && self.rng.chance(10) {
            self.rng.below(buf.len() + 1)
        } else {
            buf.len()
        };
        self.received.extend_from_slice(&buf[..n]);
        Outcome {
            bytes: n,
            error: None,
        }
    }

    /// Whether pending operation `p` can finish now: a read of the current
    /// connection waits for data (or the peer's end).
    fn can_finish(&self, p: &Pending) -> bool {
        p.kind != Kind::Read || p.stale || p.cancelled || !self.to_read.is_empty() || self.peer_gone
    }

    /// Completes one pending operation, chosen at random (reads in order).
    fn complete_one(&mut self, e: &mut Engine<u32>) -> bool {
        let first_read = self.pending.iter().position(|p| p.kind == Kind::Read);
        let ready: Vec<usize> = (0..self.pending.len())
            .filter(|&i| self.pending[i].kind != Kind::Read || Some(i) == first_read)
            .filter(|&i| self.can_finish(&self.pending[i]))
            .collect();
        if ready.is_empty() {
            return false;
        }
        let i = ready[self.rng.below(ready.len())];
        let p = self.pending.remove(i);
        self.out -= 1;
        match p.kind {
            Kind::Connect => {
                let outcome = if p.cancelled || p.stale {
                    Outcome::err(os(ERROR_OPERATION_ABORTED))
                } else if self.rng.chance(10) {
                    Outcome::err(os(31))
                } else {
                    self.peer_there = true;
                    Outcome {
                        bytes: 0,
                        error: None,
                    }
                };
                e.complete(self, &p.id, None, outcome);
            }
            Kind::Read => {
                let (buf, outcome) = if p.cancelled && !p.stale {
                    (p.buf, Outcome::err(os(ERROR_OPERATION_ABORTED)))
                } else {
                    self.read_result(p.buf, p.stale)
                };
                e.complete(self, &p.id, Some(buf), outcome);
            }
            Kind::Write => {
                let outcome = self.write_result(&p.buf, p.stale);
                e.complete(self, &p.id, Some(p.buf), outcome);
            }
        }
        true
    }
}

impl Kernel for Sim {
    type Op = u32;

    fn start_connect(&mut self) -> Start<u32, ()> {
        let id = self.id();
        if self.rng.chance(20) {
            let code = [ERROR_PIPE_CONNECTED, ERROR_NO_DATA, 31][self.rng.below(3)];
            self.peer_there = code != 31;
            return Start::Done((), Outcome::err(os(code)));
        }
        self.out += 1;
        self.pending.push(Pending {
            id,
            kind: Kind::Connect,
            buf: Vec::new(),
            stale: false,
            cancelled: false,
        });
        Start::Pending(id)
    }

    fn start_read(&mut self, buf: Vec<u8>) -> Start<u32, Vec<u8>> {
        let id = self.id();
        assert!(buf.capacity() > buf.len(), "a read with no room");
        let reads_pending = self
            .pending
            .iter()
            .any(|p| p.kind == Kind::Read && !p.stale);
        // A read finishes at once only when nothing is queued before it.
        if !reads_pending && self.rng.chance(30) {
            if self.rng.chance(10) {
                let e = self.random_error();
                return Start::Done(buf, Outcome::err(os(e)));
            }
            // A message longer than the room ends in ERROR_MORE_DATA, which
            // completes through the port: such a read stays pending.
            let room = buf.capacity() - buf.len();
            let fits = !self.message || self.to_read.front().is_none_or(|m| m.len() <= room);
            if (!self.to_read.is_empty() || self.peer_gone) && fits {
                let (buf, outcome) = self.read_result(buf, false);
                return Start::Done(buf, outcome);
            }
        }
        self.out += 1;
        self.pending.push(Pending {
            id,
            kind: Kind::Read,
            buf,
            stale: false,
            cancelled: false,
        });
        Start::Pending(id)
    }

    fn start_write(&mut self, buf: Vec<u8>) -> Start<u32, Vec<u8>> {
        let id = self.id();
        let writes_pending = self
            .pending
            .iter()
            .any(|p| p.kind == Kind::Write && !p.stale);
        if !writes_pending && self.rng.chance(30) {
            let outcome = self.write_result(&buf, false);
            return Start::Done(buf, outcome);
        }
        self.out += 1;
        self.pending.push(Pending {
            id,
            kind: Kind::Write,
            buf,
            stale: false,
            cancelled: false,
        });
        Start::Pending(id)
    }

    fn cancel(&mut self, op: &u32) {
        if self.closed > 0 {
            self.calls_after_close += 1;
        }
        if let Some(p) = self.pending.iter_mut().find(|p| p.id == *op) {
            p.cancelled = true;
        }
    }

    fn disconnect(&mut self) -> io::Result<()> {
        self.id();
        if self.rng.chance(5) {
            return Err(os(31));
        }
        for p in &mut self.pending {
            p.stale = true;
        }
        self.generation += 1;
        self.peer_there = false;
        self.peer_gone = false;
        self.to_read.clear();
        self.sent.clear();
        self.stream.clear();
        self.received.clear();
        Ok(())
    }

    fn peek(&mut self) -> Option<Peek> {
        self.id();
        if self.peek_fails {
            return None;
        }
        let available = self.to_read.iter().map(Vec::len).sum();
        let message_left = if self.message {
            self.to_read.front().map_or(0, Vec::len)
        } else {
            0
        };
        Some(Peek {
            available,
            message_left,
        })
    }

    fn close(&mut self) {
        self.closed += 1;
    }
}

/// What the user side has seen of the current connection.
#[derive(Default)]
struct Seen {
    /// Bytes read, in order.
    read: Vec<u8>,
    /// Message mode: bytes read of the message in progress.
    in_message: usize,
    /// Bytes `write` accepted.
    accepted: Vec<u8>,
    /// A write error was reported: what was accepted may be lost from there.
    write_failed: bool,
    /// How much of `read` and of the peer's `received` was checked already.
    read_checked: usize,
    received_checked: usize,
}

fn run(seed: u64, message: bool, server: bool) {
    let mut sim = Sim {
        rng: Rng(seed),
        message,
        next_id: 0,
        pending: Vec::new(),
        out: 0,
        closed: 0,
        calls_after_close: 0,
        generation: 0,
        peer_there: !server,
        peer_gone: false,
        to_read: VecDeque::new(),
        sent: Vec::new(),
        stream: Vec::new(),
        received: Vec::new(),
        peek_fails: false,
    };
    let framing = Framing {
        message_reads: message,
        message_writes: message,
    };
    let mut e = if server {
        Engine::listening(framing)
    } else {
        Engine::connected(framing)
    };
    let mut seen = Seen::default();
    let mut dropped = false;
    let mut buf = vec![0u8; 100_000];
    let pattern = pattern();
    let ctx = |step: usize| format!("seed {seed} message {message} server {server} step {step}");

    for step in 0..400 {
        sim.peek_fails = sim.rng.chance(10);
        let action = sim.rng.below(100);
        if dropped {
            // Only the kernel moves now.
            if !sim.complete_one(&mut e) {
                break;
            }
        } else if action < 8 {
            if !e.is_registered() {
                e.register(&mut sim);
            }
        } else if action < 30 {
            sim.complete_one(&mut e);
        } else if action < 38 {
            if sim.peer_there && !sim.peer_gone && sim.sent.len() < 60 {
                sim.peer_sends();
            }
        } else if action < 40 {
            if sim.peer_there {
                sim.peer_gone = true;
            }
        } else if action < 58 {
            let n = 1 + sim.rng.below(buf.len());
            let readable = e.readiness().readable;
            match e.read(&mut sim, &mut buf[..n]) {
                Ok(0) => {}
                Ok(k) => {
                    seen.read.extend_from_slice(&buf[..k]);
                    check_message_read(&sim, &mut seen, k, &ctx(step));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    assert!(!readable, "{}: readable, but read would block", ctx(step));
                    assert_read_will_wake(&e, &ctx(step));
                }
                Err(_) => {}
            }
        } else if action < 64 {
            let mut out = Vec::new();
            match e.recv_msg(&mut sim, &mut out) {
                Ok(0) => {}
                Ok(k) => {
                    assert_eq!(k, out.len());
                    if message {
                        // A whole message, or the rest of one partly read.
                        let whole = &sim.sent[message_index(&sim, seen.read.len())];
                        assert_eq!(
                            out,
                            whole[seen.in_message..],
                            "{}: recv_msg returned no whole message",
                            ctx(step)
                        );
                        seen.in_message = 0;
                    }
                    seen.read.extend_from_slice(&out);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    assert_read_will_wake(&e, &ctx(step))
                }
                Err(_) => {}
            }
        } else if action < 82 {
            let max = if sim.rng.chance(1) {
                2 * WRITE_QUEUE
            } else {
                30_000
            };
            let n = 1 + sim.rng.below(max);
            let off = seen.accepted.len() % 251;
            let data = &pattern[off..off + n];
            match e.write(&mut sim, data) {
                Ok(k) => {
                    assert!(k > 0 && k <= n);
                    if message {
                        assert_eq!(k, n, "{}: a message accepted in part", ctx(step));
                    }
                    seen.accepted.extend_from_slice(&data[..k]);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    assert!(
                        !e.is_registered()
                            || e.write.inflight.is_some()
                            || !matches!(e.conn, Conn::Connected),
                        "{}: write would block with nothing in flight",
                        ctx(step)
                    );
                }
                Err(_) => seen.write_failed = true,
            }
        } else if action < 85 {
            match e.flush() {
                Ok(()) => assert!(e.write.idle(), "{}: flush Ok with data queued", ctx(step)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    assert!(
                        e.write.inflight.is_some(),
                        "{}: flush blocks with nothing in flight",
                        ctx(step)
                    )
                }
                Err(_) => seen.write_failed = true,
            }
        } else if action < 88 {
            if e.take_error().is_some() {
                seen.write_failed = true;
            }
        } else if action < 93 {
            if server {
                match e.connect(&mut sim) {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        assert!(
                            !e.is_registered() || matches!(e.conn, Conn::Connecting(_)),
                            "{}: connect would block with none in flight",
                            ctx(step)
                        )
                    }
                    _ => {}
                }
            }
        } else if action < 97 {
            if server && e.disconnect(&mut sim).is_ok() {
                seen = Seen::default();
            }
        } else if action < 99 {
            e.drop_pipe(&mut sim);
            dropped = true;
        }

        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!(
                "step {step} action {action}: read {} sent {:?} to_read {:?} pending {:?} engine {:?}",
                seen.read.len(),
                sim.sent.iter().map(Vec::len).collect::<Vec<_>>(),
                sim.to_read.iter().map(Vec::len).collect::<Vec<_>>(),
                sim.pending.iter().map(|p| (p.id, p.kind, p.buf.len(), p.buf.capacity(), p.stale, p.cancelled)).collect::<Vec<_>>(),
                e
            );
        }
        // Invariants after every step.
        let c = ctx(step);
        assert_eq!(sim.calls_after_close, 0, "{c}: a kernel call after close");
        assert!(sim.closed <= 1, "{c}: closed twice");
        if sim.closed == 1 {
            assert!(dropped, "{c}: closed while the pipe is in use");
            assert!(
                e.write.inflight.is_none(),
                "{c}: closed with a write in flight"
            );
        }
        let current = |k: Kind| {
            sim.pending
                .iter()
                .filter(|p| p.kind == k && !p.stale && !p.cancelled)
                .count()
        };
        assert!(current(Kind::Read) <= 1, "{c}: two reads in flight");
        assert!(current(Kind::Write) <= 1, "{c}: two writes in flight");
        assert!(current(Kind::Connect) <= 1, "{c}: two connects in flight");
        assert_eq!(sim.out, sim.pending.len(), "{c}: a buffer went missing");
        // What was read is exactly the peer's stream, so far.
        let (from, to) = (seen.read_checked, seen.read.len());
        assert!(to <= sim.stream.len(), "{c}: read more than was sent");
        assert!(
            seen.read[from..to] == sim.stream[from..to],
            "{c}: read bytes that were not sent, or not in order"
        );
        seen.read_checked = to;
        // What the peer received is what write accepted, in order.
        if !seen.write_failed {
            let (from, to) = (seen.received_checked, sim.received.len());
            assert!(
                to <= seen.accepted.len(),
                "{c}: the peer got bytes never accepted"
            );
            assert!(
                sim.received[from..to] == seen.accepted[from..to],
                "{c}: the peer got other bytes"
            );
            seen.received_checked = to;
        }
    }
    // Let everything finish: the kernel owes every buffer back.
    sim.peer_gone = true;
    while sim.complete_one(&mut e) {}
    assert_eq!(sim.out, 0, "seed {seed}: buffers still with the kernel");
    if !dropped {
        e.drop_pipe(&mut sim);
        while sim.complete_one(&mut e) {}
    }
    assert_eq!(
        sim.closed, 1,
        "seed {seed}: a dropped pipe with nothing in flight is closed once"
    );
    assert_eq!(
        sim.calls_after_close, 0,
        "seed {seed}: a kernel call after close"
    );
}

/// Bytes to write: a pattern long enough for the largest write, made once.
fn pattern() -> &'static [u8] {
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        (0..2 * WRITE_QUEUE + 300)
            .map(|i| (i % 251) as u8 ^ 0x5A)
            .collect()
    })
}

/// Which message the byte at stream offset `off` belongs to.
fn message_index(sim: &Sim, off: usize) -> usize {
    let mut end = 0;
    for (i, m) in sim.sent.iter().enumerate() {
        end += m.len();
        if off < end {
            return i;
        }
    }
    sim.sent.len()
}

/// Message mode: a read of `k` bytes ending at `seen.read.len()` stays within one message.
fn check_message_read(sim: &Sim, seen: &mut Seen, k: usize, ctx: &str) {
    if !sim.message {
        return;
    }
    let start = seen.read.len() - k;
    let first = message_index(sim, start);
    let last = message_index(sim, seen.read.len() - 1);
    assert_eq!(
        first, last,
        "{ctx}: one read returned bytes of two messages"
    );
    let end_of_msg: usize = sim.sent[..=first].iter().map(Vec::len).sum();
    seen.in_message = if seen.read.len() == end_of_msg {
        0
    } else {
        seen.read.len() - (end_of_msg - sim.sent[first].len())
    };
}

/// After a read returned `WouldBlock`, something will end the wait: a read
/// in flight, or a connect the user must make (or that is in flight).
fn assert_read_will_wake(e: &Engine<u32>, ctx: &str) {
    assert!(
        matches!(e.read, ReadState::Pending(_)) || !e.may_read(),
        "{ctx}: read would block with no read in flight"
    );
}

#[test]
fn thousands_of_random_interleavings() {
    // SIM_SEED=n replays one seed (with SIM_TRACE=1, step by step).
    if let Ok(seed) = std::env::var("SIM_SEED") {
        let seed: u64 = seed.parse().expect("SIM_SEED is a number");
        for (message, server) in [(false, false), (true, false), (false, true), (true, true)] {
            run(seed, message, server);
        }
        return;
    }
    for seed in 0..1500u64 {
        run(seed, false, false);
        run(seed, true, false);
        run(seed, seed % 2 == 0, true);
    }
}
