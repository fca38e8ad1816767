//! A deterministic randomized simulation of the engine against a model pipe.
//!
//! The simulated kernel holds a peer: the bytes (or messages) it sends on
//! the current connection, and what it receives. Operations start pending
//! or finish at once, at random; pending ones complete in random order
//! (reads in issue order among themselves, as the pipe serves them, but
//! interleaved arbitrarily with writes, connects and user calls), with
//! random successes, partial writes, random `PeekNamedPipe` answers and
//! every error the table knows (and some it does not). Errors act on the
//! model as they would on a real pipe: `ERROR_BROKEN_PIPE` on a read means
//! the peer vanished (what it sent and was not read is lost), and
//! `ERROR_PIPE_LISTENING` means the pipe was reset under the engine (the
//! client and everything in flight are gone; a later connect brings a new
//! client). The user side makes random calls: reads with random buffer
//! sizes, `recv_msg`, writes of random sizes, flush, connect, disconnect,
//! `take_error`, drop and release. After every step the invariants hold:
//!
//! - no kernel call after close; close at most once, only after a drop and
//!   with no write in flight; `release` never closes; a dropped pipe with
//!   no write left is closed; no cancel of an operation not in flight;
//! - at most one current read, write and connect in flight;
//! - every buffer handed to the kernel comes back exactly once;
//! - the bytes read are exactly a prefix of the peer's stream on the current
//!   connection, in order; in message read mode no `read` spans two
//!   messages and `recv_msg` returns whole messages (or the rest of one);
//! - the peer receives exactly what `write` accepted, in order; after a
//!   write error a tail may be lost, never reordered or duplicated; on a
//!   message pipe every message arrives as one write;
//! - readiness is consistent: `readable` is false exactly when `read` would
//!   block, and every `WouldBlock` leaves an operation in flight whose
//!   completion ends the wait, or an engine waiting for the user's connect;
//!   a connected pipe with no read in flight is readable, and with no write
//!   in flight writable (no lost wakeup);
//! - at the end, with the peer gone and everything completed: `flush` is
//!   `Ok` only if every accepted byte arrived, and reading to the end of
//!   file yields the peer's whole stream;
//! - buffers grow only with bytes of the budget (see `budget`): a dropped
//!   pipe holds no read growth, a closed or released one nothing, and at
//!   the end of every run the budget is whole again.
//!
//! Two events model cleanup (see `sys::kernel::Shared::sweep` and
//! `sys::reaper`). *Linger expired*: after a drop, the limit passes and
//! the engine must cancel its write and close at once. *Poll gone*: from
//! a random step on, no completion is ever delivered again; the kernel
//! only finishes operations. After a drop (or release), the sweep frees the
//! buffer of every operation the engine no longer
//! [`tracks`](Engine::tracks) and the kernel has finished — the rule the
//! Win32 layer applies — and the simulation checks that no buffer of an
//! operation still current (one the engine did not cancel) is ever freed,
//! that a completion arriving after its buffer was freed changes nothing,
//! and, with the Poll gone, that after the linger every buffer the kernel
//! had is back or freed and the handle is closed: only the operations'
//! small cells are left for a port that will never hand them back.
//!
//! Each seed runs six configurations (client or server; byte pipe, message
//! pipe read as bytes, message pipe read as messages), with a random error
//! rate and rate of immediate results, the default buffer limits or small
//! ones, and a budget with no room, room for one growth, or plenty. Four in ten server runs are a
//! listener's instance: registered quiet (no read ahead), later watched,
//! asked whether the peer left (`peer_left`, which must never say so while
//! the peer is there or has data), registered by the user, and quieted
//! again after a disconnect; a quiet pipe's first read may finish at once. `SIM_SEED=n` replays one seed;
//! `SIM_SEEDS=n` runs `n` seeds (deep runs: `cargo test --release`);
//! `SIM_TRACE=1` prints every step.

use std::io;

use super::budget::Budget;
use super::table::*;
use super::*;

/// splitmix64: small, fast, and good enough to pick scenarios.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    /// A size with a spread: tiny, small, around `MIN_READ`, or large.
    fn size(&mut self, large: usize) -> usize {
        match self.below(4) {
            0 => 1 + self.below(4),
            1 => 1 + self.below(200),
            2 => 1 + self.below(MIN_READ * 3),
            _ => 1 + self.below(large),
        }
    }
}

/// The splitmix64 finalizer: a well-mixed function of `x`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `ERROR_INVALID_FUNCTION`: `ConnectNamedPipe`/`DisconnectNamedPipe` on a client.
const ERROR_INVALID_FUNCTION: i32 = 1;

/// Errors a read may end with (besides data and end of file).
const READ_ERRORS: [i32; 10] = [
    ERROR_BROKEN_PIPE,
    ERROR_PIPE_NOT_CONNECTED,
    ERROR_PIPE_LISTENING,
    ERROR_NO_DATA,
    ERROR_OPERATION_ABORTED,
    ERROR_PIPE_CONNECTED,
    6,    // ERROR_INVALID_HANDLE
    31,   // ERROR_GEN_FAILURE
    87,   // ERROR_INVALID_PARAMETER
    1450, // ERROR_NO_SYSTEM_RESOURCES
];

/// Errors a write may end with.
const WRITE_ERRORS: [i32; 9] = [
    ERROR_BROKEN_PIPE,
    ERROR_NO_DATA,
    ERROR_PIPE_LISTENING,
    ERROR_PIPE_NOT_CONNECTED,
    ERROR_OPERATION_ABORTED,
    ERROR_MORE_DATA,
    6,
    31,
    1450,
];

/// Errors a connect may fail with.
const CONNECT_ERRORS: [i32; 5] = [
    ERROR_OPERATION_ABORTED,
    ERROR_BROKEN_PIPE,
    ERROR_PIPE_LISTENING,
    31,
    1450,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Connect,
    Read,
    Write,
}

#[derive(Debug)]
struct Pending {
    id: u32,
    kind: Kind,
    buf: Vec<u8>,
    /// Started on an earlier connection (before a `disconnect`).
    stale: bool,
    /// The engine asked to cancel it.
    cancelled: bool,
    /// The pipe was reset under it (`ERROR_PIPE_LISTENING`): it fails.
    doomed: bool,
    /// Writes: the write epoch the bytes belong to.
    epoch: usize,
    /// The kernel is done with it (its status is no longer pending); the
    /// completion may still be waiting in the port.
    finished: bool,
    /// The sweep freed its buffer (it was finished and forgotten).
    buf_freed: bool,
}

impl Pending {
    /// In flight for the current connection, as far as the engine should know.
    fn current(&self) -> bool {
        !self.stale && !self.cancelled
    }
}

/// The model pipe, its peer, and the bookkeeping of what the engine did to it.
struct Sim {
    rng: Rng,
    server: bool,
    /// The handle is in message read mode.
    msg_reads: bool,
    /// The pipe is of message type: the peer gets one message per write.
    msg_pipe: bool,
    /// Percent of operations that fail at random.
    err_rate: usize,
    /// The error rate the scenario started with (the end runs without errors).
    initial_err_rate: usize,
    /// Half the random read and write errors are `ERROR_PIPE_LISTENING`:
    /// the pipe is reset under the engine again and again.
    listening_bias: bool,
    /// Percent of starts that finish at once.
    now_rate: usize,
    next_id: u32,
    pending: Vec<Pending>,
    /// Buffers handed to the kernel, buffers given back, and buffers the
    /// sweep freed.
    given: usize,
    returned: usize,
    freed: usize,
    /// A buffer freed while its operation was current.
    bad_frees: u32,
    /// No completion is delivered any more.
    poll_gone: bool,
    closed: u32,
    calls_after_close: u32,
    /// `cancel` of an operation that is not in flight.
    bad_cancels: u32,
    /// Bumped by a disconnect.
    generation: u32,
    /// A client is connected (on a server: after a connect).
    peer_there: bool,
    /// The peer closed its end: once its data is read, reads end with
    /// `ERROR_BROKEN_PIPE`.
    peer_gone: bool,
    /// Messages sent (byte pipe: chunks of the stream): where each ends
    /// in `stream`.
    sent_ends: Vec<usize>,
    /// Everything the peer sent on this connection (that can still be read).
    stream: Vec<u8>,
    /// How much of `stream` reads took.
    read_pos: usize,
    /// The first message (or chunk) not read to its end.
    next_msg: usize,
    /// The current write epoch (set by the user side; a new one starts
    /// whenever the user sees a write error).
    epoch: usize,
    /// What the peer received, by write epoch.
    received: Vec<Vec<u8>>,
    /// Message pipe: whole messages received, as (epoch, end in that epoch).
    received_msgs: Vec<(usize, usize)>,
    /// The last immediate write result was `ERROR_PIPE_LISTENING`.
    write_listening_now: bool,
    /// The end of the scenario: every client leaves once connected.
    peer_leaves: bool,
    /// What the first `PeekNamedPipe` since this was reset said: a client
    /// is there (or came and left), or none is.
    first_peek_saw_client: Option<bool>,
    /// Where the data of the client before the last reset to listening
    /// ends in `stream` (a client that opened early since sends after it).
    old_end: usize,
}

impl Sim {
    fn new(seed: u64, server: bool, msg_pipe: bool, msg_reads: bool) -> Sim {
        let mut rng = Rng(seed);
        let err_rate = rng.pick(&[0, 1, 3, 8, 20]);
        let listening_bias = rng.chance(25);
        let now_rate = rng.pick(&[0, 30, 30, 90]);
        Sim {
            rng,
            server,
            msg_reads,
            msg_pipe,
            err_rate,
            initial_err_rate: err_rate,
            listening_bias,
            now_rate,
            next_id: 0,
            pending: Vec::new(),
            given: 0,
            returned: 0,
            freed: 0,
            bad_frees: 0,
            poll_gone: false,
            closed: 0,
            calls_after_close: 0,
            bad_cancels: 0,
            generation: 0,
            peer_there: !server,
            peer_gone: false,
            read_pos: 0,
            next_msg: 0,
            sent_ends: Vec::new(),
            stream: Vec::new(),
            epoch: 0,
            received: Vec::new(),
            received_msgs: Vec::new(),
            write_listening_now: false,
            peer_leaves: false,
            first_peek_saw_client: None,
            old_end: 0,
        }
    }

    fn id(&mut self) -> u32 {
        if self.closed > 0 {
            self.calls_after_close += 1;
        }
        self.next_id += 1;
        self.next_id
    }

    fn current(&self, kind: Kind) -> usize {
        self.pending
            .iter()
            .filter(|p| p.kind == kind && p.current())
            .count()
    }

    /// Keeps an operation in flight.
    fn push(&mut self, id: u32, kind: Kind, buf: Vec<u8>) {
        self.pending.push(Pending {
            id,
            kind,
            buf,
            stale: false,
            cancelled: false,
            doomed: false,
            epoch: self.epoch,
            finished: false,
            buf_freed: false,
        });
    }

    /// The kernel finishes an operation at random (without delivering it).
    fn kernel_finishes_one(&mut self) -> bool {
        let open: Vec<usize> = (0..self.pending.len())
            .filter(|&i| !self.pending[i].finished)
            .collect();
        if open.is_empty() {
            return false;
        }
        let i = open[self.rng.below(open.len())];
        self.pending[i].finished = true;
        true
    }

    /// The Win32 layer's sweep of a dropped pipe: frees the buffer of every
    /// operation the kernel finished and the engine no longer tracks.
    fn sweep(&mut self, e: &Engine<u32>) {
        for p in &mut self.pending {
            if p.kind == Kind::Connect || p.buf_freed || !p.finished || e.tracks(&p.id) {
                continue;
            }
            if p.current() {
                self.bad_frees += 1;
            }
            p.buf = Vec::new();
            p.buf_freed = true;
            self.freed += 1;
        }
    }

    // ------------------------------------------------------------ the peer

    /// The peer sends a message (byte pipe: a chunk of its stream), possibly
    /// empty. Its content is a function of the connection, its index, its
    /// length and each byte's position, so any misplaced byte shows.
    fn peer_sends(&mut self) {
        let index = self.sent_ends.len() as u64;
        let len = if self.rng.chance(3) {
            0
        } else {
            self.rng.size(40_000)
        };
        let at = mix(u64::from(self.generation) << 48 ^ index << 24 ^ len as u64) as usize % PERIOD;
        self.stream.extend_from_slice(&pattern()[at..at + len]);
        self.sent_ends.push(self.stream.len());
    }

    /// A client opens a server instance that no connect is waiting on: a
    /// real pipe lets it, and `ConnectNamedPipe` then finds it there.
    fn peer_opens_early(&mut self) {
        if self.server && !self.peer_there && self.current(Kind::Connect) == 0 {
            self.peer_connects();
        }
    }

    /// A client connected.
    fn peer_connects(&mut self) {
        self.peer_there = true;
        self.peer_gone = self.peer_leaves;
    }

    /// What can no longer be read is cut from the stream: the unread data,
    /// and in message read mode the message a read is in the middle of.
    fn cut_stream(&mut self) {
        let keep = if self.msg_reads {
            self.next_msg
                .checked_sub(1)
                .map_or(0, |i| self.sent_ends[i])
        } else {
            self.read_pos
        };
        self.stream.truncate(keep);
        self.sent_ends.retain(|&end| end <= keep);
        self.read_pos = keep;
        self.next_msg = self.sent_ends.len();
    }

    /// The peer went away at once: what it sent and was not read is lost.
    fn peer_vanishes(&mut self) {
        self.cut_stream();
        self.peer_gone = true;
    }

    /// The pipe was reset to listening under the engine (someone else
    /// disconnected it): the client and its unread data are gone, and every
    /// operation in flight fails.
    fn reset_to_listening(&mut self) {
        self.cut_stream();
        self.old_end = self.stream.len();
        self.peer_there = false;
        self.peer_gone = false;
        for p in &mut self.pending {
            if p.kind != Kind::Connect {
                p.doomed = true;
            }
        }
    }

    /// Takes at most `room` bytes of what waits, as a real pipe serves a
    /// read: byte mode across messages, message mode within one. Returns
    /// where the bytes start in `stream`, how many, and whether the
    /// message goes on (`ERROR_MORE_DATA`).
    fn take(&mut self, room: usize) -> (usize, usize, bool) {
        let start = self.read_pos;
        if self.msg_reads {
            let end = self.sent_ends[self.next_msg];
            let n = room.min(end - start);
            self.read_pos += n;
            if self.read_pos < end {
                return (start, n, true);
            }
            self.next_msg += 1;
            return (start, n, false);
        }
        let n = room.min(self.stream.len() - start);
        self.read_pos += n;
        self.next_msg = self.sent_ends.partition_point(|&end| end <= self.read_pos);
        (start, n, false)
    }

    /// Whether messages (or chunks, maybe empty) wait to be read.
    fn unread(&self) -> bool {
        self.next_msg < self.sent_ends.len()
    }

    /// Whether a read would finish now (with data or end of file).
    fn read_ready(&self) -> bool {
        self.unread() || self.peer_gone || !self.peer_there
    }

    fn random_error(&mut self, codes: &[i32]) -> i32 {
        if self.listening_bias && self.rng.chance(50) {
            ERROR_PIPE_LISTENING
        } else {
            self.rng.pick(codes)
        }
    }

    /// A random read failure; the ones that end the connection act on the model.
    fn read_failure(&mut self) -> Outcome {
        let code = self.random_error(&READ_ERRORS);
        match code {
            ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED => self.peer_vanishes(),
            ERROR_PIPE_LISTENING => self.reset_to_listening(),
            _ => {}
        }
        Outcome::err(os(code))
    }

    /// The result of a read of the current connection into `buf`.
    fn read_result(&mut self, mut buf: Vec<u8>) -> (Vec<u8>, Outcome) {
        if !self.peer_there {
            return (buf, Outcome::err(os(ERROR_PIPE_LISTENING)));
        }
        if self.rng.chance(self.err_rate) || !self.read_ready() {
            return (buf, self.read_failure());
        }
        if !self.unread() {
            return (buf, Outcome::err(os(ERROR_BROKEN_PIPE)));
        }
        let room = buf.capacity() - buf.len();
        let (start, n, more) = self.take(room);
        buf.extend_from_slice(&self.stream[start..start + n]);
        let error = more.then(|| os(ERROR_MORE_DATA));
        (buf, Outcome { bytes: n, error })
    }

    /// The result of writing `buf` on the current connection, in `epoch`.
    fn write_result(&mut self, buf: &[u8], epoch: usize) -> Outcome {
        if !self.peer_there {
            return Outcome::err(os(ERROR_PIPE_LISTENING));
        }
        if self.rng.chance(self.err_rate) {
            let code = self.random_error(&WRITE_ERRORS);
            if code == ERROR_PIPE_LISTENING {
                self.reset_to_listening();
            }
            return Outcome::err(os(code));
        }
        let n = if !self.msg_pipe && self.rng.chance(10) {
            self.rng.below(buf.len() + 1)
        } else if self.msg_pipe && self.rng.chance(self.err_rate) {
            // A message pipe that takes part of a message: the engine must
            // report it, not send the rest as a message of its own.
            self.rng.below(buf.len())
        } else {
            buf.len()
        };
        if self.received.len() <= epoch {
            self.received.resize(epoch + 1, Vec::new());
        }
        self.received[epoch].extend_from_slice(&buf[..n]);
        if self.msg_pipe && n == buf.len() {
            self.received_msgs.push((epoch, self.received[epoch].len()));
        }
        Outcome {
            bytes: n,
            error: None,
        }
    }

    /// Completes one pending operation chosen at random (reads in order).
    /// Returns false if none can complete.
    fn complete_one(&mut self, e: &mut Engine<u32>) -> bool {
        if self.poll_gone {
            return false;
        }
        let first_read = self.pending.iter().position(|p| p.kind == Kind::Read);
        let forced_failure = self.rng.chance(self.err_rate);
        let ready: Vec<usize> = (0..self.pending.len())
            .filter(|&i| {
                let p = &self.pending[i];
                match p.kind {
                    Kind::Read => {
                        Some(i) == first_read
                            && (!p.current() || p.doomed || forced_failure || self.read_ready())
                    }
                    _ => true,
                }
            })
            .collect();
        if ready.is_empty() {
            return false;
        }
        let p = self.pending.remove(ready[self.rng.below(ready.len())]);
        match p.kind {
            Kind::Connect => {
                let outcome = if !p.current() {
                    Outcome::err(os(ERROR_OPERATION_ABORTED))
                } else if self.rng.chance(self.err_rate * 2) {
                    Outcome::err(os(self.rng.pick(&CONNECT_ERRORS)))
                } else {
                    self.peer_connects();
                    Outcome {
                        bytes: 0,
                        error: None,
                    }
                };
                e.complete(self, &p.id, None, outcome);
            }
            Kind::Read => {
                self.returned += usize::from(!p.buf_freed);
                let (buf, outcome) = if !p.current() {
                    // Cancelled or of an old connection: it may still have
                    // read something before the cancel. Nobody may see it.
                    let mut buf = p.buf;
                    if self.rng.chance(50) {
                        let n = 5.min(buf.capacity() - buf.len());
                        buf.extend(std::iter::repeat(0xEE).take(n));
                        (
                            buf,
                            Outcome {
                                bytes: n,
                                error: None,
                            },
                        )
                    } else {
                        (buf, Outcome::err(os(ERROR_OPERATION_ABORTED)))
                    }
                } else if p.doomed {
                    (p.buf, Outcome::err(os(ERROR_PIPE_LISTENING)))
                } else {
                    self.read_result(p.buf)
                };
                e.complete(self, &p.id, Some(buf), outcome);
            }
            Kind::Write => {
                self.returned += usize::from(!p.buf_freed);
                let outcome = if p.stale {
                    Outcome::err(os(ERROR_PIPE_NOT_CONNECTED))
                } else if p.cancelled {
                    Outcome::err(os(ERROR_OPERATION_ABORTED))
                } else if p.doomed {
                    Outcome::err(os(ERROR_PIPE_LISTENING))
                } else {
                    self.write_result(&p.buf, p.epoch)
                };
                e.complete(self, &p.id, Some(p.buf), outcome);
            }
        }
        true
    }
}

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Kernel for Sim {
    type Op = u32;

    fn start_connect(&mut self) -> Start<u32, ()> {
        let id = self.id();
        if !self.server {
            return Start::Done((), Outcome::err(os(ERROR_INVALID_FUNCTION)));
        }
        if self.peer_there {
            // A client opened the pipe before this connect: it finishes at
            // once, whatever the rate of immediate results.
            let code = if self.peer_gone && !self.unread() {
                ERROR_NO_DATA
            } else {
                ERROR_PIPE_CONNECTED
            };
            return Start::Done((), Outcome::err(os(code)));
        }
        if self.rng.chance(self.now_rate) {
            let error = match self.rng.below(5) {
                0 => None,
                1 | 2 => Some(ERROR_PIPE_CONNECTED),
                3 => Some(ERROR_NO_DATA),
                _ => Some(self.rng.pick(&CONNECT_ERRORS)),
            };
            match error {
                None | Some(ERROR_PIPE_CONNECTED) => self.peer_connects(),
                Some(ERROR_NO_DATA) => {
                    // A client came and left already.
                    self.peer_connects();
                    self.peer_gone = true;
                }
                _ => {}
            }
            return Start::Done(
                (),
                Outcome {
                    bytes: 0,
                    error: error.map(os),
                },
            );
        }
        self.push(id, Kind::Connect, Vec::new());
        Start::Pending(id)
    }

    fn start_read(&mut self, buf: Vec<u8>) -> Start<u32, Vec<u8>> {
        let id = self.id();
        self.given += 1;
        assert!(buf.capacity() > buf.len(), "a read with no room");
        let reads_queued = self.pending.iter().any(|p| p.kind == Kind::Read);
        // A read finishes at once only when no read is queued before it.
        if !reads_queued && self.rng.chance(self.now_rate) {
            if !self.peer_there || self.rng.chance(self.err_rate) {
                self.returned += 1;
                let (buf, outcome) = if self.peer_there {
                    (buf, self.read_failure())
                } else {
                    (buf, Outcome::err(os(ERROR_PIPE_LISTENING)))
                };
                return Start::Done(buf, outcome);
            }
            if self.read_ready() || self.rng.chance(5) {
                // Data, end of file, or (rarely) a read that finishes empty.
                self.returned += 1;
                if !self.read_ready() {
                    return Start::Done(
                        buf,
                        Outcome {
                            bytes: 0,
                            error: None,
                        },
                    );
                }
                let (buf, outcome) = self.read_result(buf);
                return Start::Done(buf, outcome);
            }
        }
        self.push(id, Kind::Read, buf);
        Start::Pending(id)
    }

    fn start_write(&mut self, buf: Vec<u8>) -> Start<u32, Vec<u8>> {
        let id = self.id();
        self.given += 1;
        self.write_listening_now = false;
        let writes_queued = self.pending.iter().any(|p| p.kind == Kind::Write);
        if !writes_queued && self.rng.chance(self.now_rate) {
            self.returned += 1;
            let outcome = self.write_result(&buf, self.epoch);
            self.write_listening_now = matches!(
                outcome.error.as_ref().and_then(io::Error::raw_os_error),
                Some(ERROR_PIPE_LISTENING)
            );
            return Start::Done(buf, outcome);
        }
        self.push(id, Kind::Write, buf);
        Start::Pending(id)
    }

    fn cancel(&mut self, op: &u32) {
        if self.closed > 0 {
            self.calls_after_close += 1;
        }
        match self.pending.iter_mut().find(|p| p.id == *op) {
            Some(p) => p.cancelled = true,
            None => self.bad_cancels += 1,
        }
    }

    fn disconnect(&mut self) -> io::Result<()> {
        self.id();
        if !self.server {
            return Err(os(ERROR_INVALID_FUNCTION));
        }
        if self.rng.chance(5) {
            return Err(os(31));
        }
        for p in &mut self.pending {
            p.stale = true;
        }
        self.generation += 1;
        self.peer_there = false;
        self.peer_gone = false;
        self.read_pos = 0;
        self.next_msg = 0;
        self.sent_ends.clear();
        self.stream.clear();
        self.epoch = 0;
        self.received.clear();
        self.received_msgs.clear();
        self.old_end = 0;
        Ok(())
    }

    fn peek(&mut self) -> io::Result<Peek> {
        let r = self.peek_answer();
        let saw_client = match &r {
            Ok(_) => true,
            Err(e) => e.raw_os_error() == Some(ERROR_BROKEN_PIPE),
        };
        self.first_peek_saw_client.get_or_insert(saw_client);
        r
    }

    fn close(&mut self) {
        self.closed += 1;
    }
}

impl Sim {
    /// What `PeekNamedPipe` answers now.
    fn peek_answer(&mut self) -> io::Result<Peek> {
        self.id();
        // What a real pipe says of a client that left (once its data is
        // read), or of no client at all.
        if !self.peer_there {
            return Err(os(ERROR_PIPE_LISTENING));
        }
        if self.peer_gone && !self.unread() {
            return Err(os(ERROR_BROKEN_PIPE));
        }
        match self.rng.below(10) {
            0 => Err(io::Error::from_raw_os_error(1)),
            1 => Ok(Peek {
                available: self.rng.below(2 * MAX_READ),
                message_left: self.rng.below(60_000),
            }),
            _ => Ok(Peek {
                available: self.stream.len() - self.read_pos,
                message_left: match self.sent_ends.get(self.next_msg) {
                    Some(end) if self.msg_reads => end - self.read_pos,
                    _ => 0,
                },
            }),
        }
    }
}

/// What the user side has seen of the current connection.
struct Seen {
    /// Bytes read, in order.
    read: Vec<u8>,
    read_checked: usize,
    /// Bytes `write` accepted, in order.
    accepted: Vec<u8>,
    /// Message pipe: where each accepted message ends in `accepted`.
    accepted_ends: Vec<usize>,
    /// Where each write epoch starts in `accepted`: a new one starts when
    /// the user sees a write error (what was accepted before may be lost).
    epochs: Vec<usize>,
    /// How much of each epoch's received bytes was checked.
    received_checked: Vec<usize>,
    received_msgs_checked: usize,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            read: Vec::new(),
            read_checked: 0,
            accepted: Vec::new(),
            accepted_ends: Vec::new(),
            epochs: vec![0],
            received_checked: Vec::new(),
            received_msgs_checked: 0,
        }
    }

    /// The user saw a write error.
    fn write_error(&mut self, sim: &mut Sim) {
        self.epochs.push(self.accepted.len());
        sim.epoch = self.epochs.len() - 1;
    }
}

/// The period of [`pattern`].
const PERIOD: usize = 4 * WRITE_QUEUE;

/// Random bytes, made once: the data of both ends are windows of it. Its
/// first bytes repeat after `PERIOD`, so that any window of up to
/// `2 * WRITE_QUEUE` bytes is one slice.
fn pattern() -> &'static [u8] {
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut p = Vec::with_capacity(PERIOD + 2 * WRITE_QUEUE + 8);
        let mut w = 0;
        while p.len() < PERIOD {
            p.extend_from_slice(&mix(w).to_le_bytes());
            w += 1;
        }
        p.extend_from_within(..2 * WRITE_QUEUE);
        p
    })
}

/// `n` bytes to write at offset `pos` of the accepted stream: a function
/// of the connection and the position that does not repeat within
/// `PERIOD`, so a lost, repeated or misplaced run shows.
fn write_data(generation: u32, pos: usize, n: usize) -> &'static [u8] {
    let at = (pos + mix(u64::from(generation) ^ 0x5EED) as usize) % PERIOD;
    &pattern()[at..at + n]
}

/// One scenario.
struct Run {
    seed: u64,
    sim: Sim,
    e: Engine<u32>,
    seen: Seen,
    dropped: bool,
    released: bool,
    buf: Vec<u8>,
    trace: bool,
    /// A listener's instance: registered `quiet` (no read ahead until the
    /// user reads, registers it again, or it is watched).
    quiet: bool,
    /// What the engine's buffers grow with.
    budget: Budget,
    /// Reads, and the write queue, grew at some step.
    grew: (bool, bool),
    /// Messages over `max_message` reported (`InvalidData`).
    rejected: usize,
    /// The engine's count of resets under it, as last seen.
    resets_seen: usize,
}

fn would_block<T>(r: &io::Result<T>) -> bool {
    matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// A read or `recv_msg` would block exactly when the pipe was not readable
/// before it — except on a quiet pipe, whose first read starts reading,
/// which may finish at once.
fn readiness_told_the_truth<T: fmt::Debug>(
    readable: bool,
    quiet: bool,
    r: &io::Result<T>,
    c: &str,
) {
    if !quiet || readable {
        assert_eq!(
            readable,
            !would_block(r),
            "{c}: readable {readable}, but the read returned {r:?}"
        );
    }
}

impl Run {
    fn ctx(&self, step: usize) -> String {
        format!(
            "seed {} (server {}, message pipe {}, message reads {}, err {}%{}, now {}%) step {step}",
            self.seed,
            self.sim.server,
            self.sim.msg_pipe,
            self.sim.msg_reads,
            self.sim.initial_err_rate,
            if self.sim.listening_bias {
                " mostly listening"
            } else {
                ""
            },
            self.sim.now_rate
        )
    }

    /// After a user call returned `WouldBlock`: something will end the wait.
    /// `what` is the operation whose completion the caller waits for.
    fn assert_will_wake(&self, what: Kind, c: &str) {
        let e = &self.e;
        if !e.is_registered() {
            return; // registering is the wakeup
        }
        if what != Kind::Connect && !matches!(e.conn, Conn::Connected) {
            match e.conn {
                // Waiting for the user's connect.
                Conn::Listening => return,
                Conn::Connecting(_) => {
                    assert_eq!(
                        self.sim.current(Kind::Connect),
                        1,
                        "{c}: connecting with no connect in flight"
                    );
                    return;
                }
                Conn::Connected => unreachable!(),
            }
        }
        assert!(
            self.sim.current(what) > 0,
            "{c}: {what:?} would block with no {what:?} in flight (engine {e:?})"
        );
    }

    fn got_bytes(&mut self, k: usize, whole_message: bool, c: &str) {
        let start = self.seen.read.len() - k;
        if !self.sim.msg_reads {
            return;
        }
        let i = self.sim.sent_ends.partition_point(|&end| end <= start);
        let end = self.sim.sent_ends.get(i).copied().unwrap_or(usize::MAX);
        assert!(
            start + k <= end,
            "{c}: one read returned bytes of two messages ({k} bytes at {start}, message ends at {end})"
        );
        let begin = i.checked_sub(1).map_or(0, |j| self.sim.sent_ends[j]);
        // (The message may be gone from the model: cut when the peer vanished.)
        assert!(
            k == 0 || end == usize::MAX || end - begin <= self.e.limits.max_message,
            "{c}: bytes of a message of {} bytes, over max_message ({}), were handed out",
            end - begin,
            self.e.limits.max_message
        );
        if whole_message {
            assert_eq!(
                start + k,
                end,
                "{c}: recv_msg returned part of a message ({k} bytes at {start})"
            );
        }
    }

    /// A read failed with `e`: if it is the engine's report of a message
    /// over the cap, that message is the next one not read, it is over the
    /// cap, and none of it was handed out; it counts as read from now on
    /// (its bytes are added to what was seen, so that what was read stays
    /// the peer's stream). The message may be gone from the model already
    /// (the peer vanished before it was drained).
    fn read_failed(&mut self, e: &io::Error, c: &str) {
        if e.kind() != io::ErrorKind::InvalidData || e.raw_os_error().is_some() {
            return;
        }
        assert!(self.sim.msg_reads, "{c}: a byte-mode read reported {e}");
        self.rejected += 1;
        let start = self.seen.read.len();
        let i = self.sim.sent_ends.partition_point(|&end| end <= start);
        let Some(&end) = self.sim.sent_ends.get(i) else {
            return;
        };
        let begin = i.checked_sub(1).map_or(0, |j| self.sim.sent_ends[j]);
        assert_eq!(begin, start, "{c}: {e}, but a message was half read");
        assert!(
            end - begin > self.e.limits.max_message,
            "{c}: {e}, but the next message has {} bytes, max_message {}",
            end - begin,
            self.e.limits.max_message
        );
        assert!(
            end <= self.sim.read_pos,
            "{c}: {e}, before the message was drained from the pipe"
        );
        self.seen
            .read
            .extend_from_slice(&self.sim.stream[start..end]);
    }

    fn read(&mut self, step: usize) {
        let n = self.sim.rng.size(self.buf.len());
        let readable = self.e.readiness().readable;
        let quiet = !self.e.read_ahead;
        let r = self.e.read(&mut self.sim, &mut self.buf[..n]);
        let c = self.ctx(step);
        readiness_told_the_truth(readable, quiet, &r, &c);
        match r {
            Ok(k) => {
                assert!(k <= n);
                self.seen.read.extend_from_slice(&self.buf[..k]);
                self.got_bytes(k, false, &c);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.assert_will_wake(Kind::Read, &c)
            }
            Err(e) => self.read_failed(&e, &c),
        }
    }

    fn recv_msg(&mut self, step: usize) {
        // The old contents of `out` must never come out.
        let mut out = vec![0xAB; self.sim.rng.below(10)];
        let readable = self.e.readiness().readable;
        let quiet = !self.e.read_ahead;
        let r = self.e.recv_msg(&mut self.sim, &mut out);
        let c = self.ctx(step);
        readiness_told_the_truth(readable, quiet, &r, &c);
        match r {
            Ok(k) => {
                assert_eq!(k, out.len(), "{c}: recv_msg length");
                self.seen.read.extend_from_slice(&out);
                if k > 0 {
                    self.got_bytes(k, true, &c);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.assert_will_wake(Kind::Read, &c)
            }
            Err(e) => self.read_failed(&e, &c),
        }
    }

    fn write(&mut self, step: usize) {
        let large = if self.sim.rng.chance(2) {
            2 * WRITE_QUEUE
        } else {
            30_000
        };
        let n = self.sim.rng.size(large);
        let data = write_data(self.sim.generation, self.seen.accepted.len(), n);
        let readiness = self.e.readiness();
        let error_waits = self.e.connect_error.is_some();
        self.sim.write_listening_now = false;
        let r = self.e.write(&mut self.sim, data);
        let c = self.ctx(step);
        match r {
            Ok(k) => {
                assert!(k > 0 && k <= n, "{c}: write took {k} of {n}");
                if self.sim.msg_pipe {
                    assert_eq!(k, n, "{c}: a message accepted in part");
                }
                self.seen.accepted.extend_from_slice(&data[..k]);
                self.seen.accepted_ends.push(self.seen.accepted.len());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    !readiness.writable || error_waits || self.sim.write_listening_now,
                    "{c}: writable, but write would block"
                );
                self.assert_will_wake(Kind::Write, &c);
            }
            Err(_) => self.seen.write_error(&mut self.sim),
        }
    }

    fn flush(&mut self, step: usize) {
        let r = self.e.flush();
        let c = self.ctx(step);
        match r {
            Ok(()) => {
                // Everything accepted since the last error was handed over.
                let epoch = self.seen.epochs.len() - 1;
                let got = self.sim.received.get(epoch).map_or(0, Vec::len);
                assert_eq!(
                    self.seen.epochs[epoch] + got,
                    self.seen.accepted.len(),
                    "{c}: flush Ok, but not everything accepted was written"
                );
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // (Writable also reports a connect error that waits.)
                assert!(
                    !self.e.readiness().writable || self.e.connect_error.is_some(),
                    "{c}: writable while a flush waits"
                );
                assert!(
                    self.sim.current(Kind::Write) > 0,
                    "{c}: flush would block with no write in flight"
                );
            }
            Err(_) => self.seen.write_error(&mut self.sim),
        }
    }

    fn take_error(&mut self) {
        let connect_error = self.e.connect_error.is_some();
        if self.e.take_error().is_some() && !connect_error {
            self.seen.write_error(&mut self.sim);
        }
    }

    fn connect(&mut self, step: usize) {
        let r = self.e.connect(&mut self.sim);
        let c = self.ctx(step);
        if would_block(&r) {
            self.assert_will_wake(Kind::Connect, &c);
        } else if r.is_ok() {
            // (Unless the first read found the pipe reset to listening.)
            assert!(
                matches!(self.e.conn, Conn::Connected) || !self.sim.peer_there,
                "{c}: connect Ok, but not connected"
            );
        }
    }

    /// `accept`'s question: has the client gone?
    fn peer_left(&mut self, step: usize) {
        let had_eof = self.e.at_end_of_file();
        let left = self.e.peer_left(&mut self.sim);
        let c = self.ctx(step);
        if left && !had_eof {
            assert!(
                self.sim.peer_gone && !self.sim.unread(),
                "{c}: the peer left, says the engine, but it is there or has data"
            );
        }
        if left {
            let r = self.e.read(&mut self.sim, &mut self.buf[..1]);
            assert!(
                matches!(r, Ok(0)),
                "{c}: the peer left, but read gave {r:?}"
            );
        }
    }

    /// Registers the engine with the user's event loop. A server instance
    /// that still listens asks whether a client came before any connect,
    /// and must act on the answer: serve the client (connected, reading,
    /// writable: the first poll's event), or wait for `connect` with
    /// nothing in flight and nothing reported.
    fn register(&mut self, step: usize) {
        let listening = matches!(self.e.conn, Conn::Listening)
            && self.e.connect_error.is_none()
            && !self.e.is_registered();
        self.sim.first_peek_saw_client = None;
        self.e.register(&mut self.sim);
        if !listening {
            return;
        }
        let c = self.ctx(step);
        let Some(client) = self.sim.first_peek_saw_client else {
            panic!("{c}: a listening instance registered without asking for a client");
        };
        if client && !self.sim.peer_there {
            // The first read found the pipe reset under the engine: the
            // client is gone again, and the instance listens.
            assert!(matches!(self.e.conn, Conn::Listening), "{c}");
        } else if client {
            assert!(
                matches!(self.e.conn, Conn::Connected),
                "{c}: a client was there, but the instance still listens"
            );
            let r = self.e.readiness();
            assert!(
                r.writable || self.e.write.error.is_some(),
                "{c}: an early client is not reported writable"
            );
            assert!(
                r.readable || self.sim.current(Kind::Read) == 1,
                "{c}: an early client is not read from"
            );
        } else {
            assert!(
                matches!(self.e.conn, Conn::Listening),
                "{c}: no client, but the instance says connected"
            );
            assert_eq!(self.e.readiness(), Readiness::default(), "{c}");
            assert_eq!(
                self.sim.current(Kind::Read),
                0,
                "{c}: a read before a client"
            );
        }
    }

    fn disconnect(&mut self, step: usize) {
        if self.e.disconnect(&mut self.sim).is_ok() {
            self.seen = Seen::new();
            assert_eq!(
                self.e.readiness(),
                Readiness::default(),
                "{}: readiness after disconnect",
                self.ctx(step)
            );
        }
    }

    /// The engine found the pipe reset under it: what the old client sent
    /// that the user had not read is gone (`stream[seen..old_end]`); what a
    /// client that opened since sent stays, after it.
    fn engine_reset(&mut self) {
        let seen = self.seen.read.len();
        let sim = &mut self.sim;
        let old_end = sim.old_end.clamp(seen, sim.stream.len());
        let gone = old_end - seen;
        sim.stream.drain(seen..old_end);
        let mut ends: Vec<usize> = sim
            .sent_ends
            .iter()
            .copied()
            .filter(|&e| e <= seen)
            .collect();
        if seen > ends.last().copied().unwrap_or(0) {
            // The user saw part of a message (bytes): it ends here.
            ends.push(seen);
        }
        let kept = ends.len();
        ends.extend(
            sim.sent_ends
                .iter()
                .filter(|&&e| e > old_end)
                .map(|&e| e - gone),
        );
        sim.sent_ends = ends;
        sim.read_pos = if sim.read_pos >= old_end {
            sim.read_pos - gone
        } else {
            seen
        };
        sim.next_msg = if sim.read_pos == seen {
            kept
        } else {
            sim.sent_ends.partition_point(|&e| e <= sim.read_pos)
        };
        sim.old_end = seen;
    }

    fn check(&mut self, step: usize) {
        if self.e.resets != self.resets_seen {
            self.resets_seen = self.e.resets;
            self.engine_reset();
        }
        let c = self.ctx(step);
        let sim = &self.sim;
        assert_eq!(sim.calls_after_close, 0, "{c}: a kernel call after close");
        assert_eq!(
            sim.bad_cancels, 0,
            "{c}: cancel of an operation not in flight"
        );
        assert_eq!(
            sim.bad_frees, 0,
            "{c}: freed the buffer of an operation the engine still waits for"
        );
        assert!(sim.closed <= 1, "{c}: closed twice");
        let e = &self.e;
        if sim.closed > 0 || self.released {
            assert!(
                e.read_grant.is_none() && e.queue_grant.is_none() && self.budget.is_whole(),
                "{c}: a closed or released pipe holds budget: {:?}",
                self.budget
            );
        }
        if self.dropped {
            assert!(
                e.read_grant.is_none(),
                "{c}: a dropped pipe holds read growth"
            );
        }
        self.grew.0 |= e.read_grant.is_some();
        self.grew.1 |= e.queue_grant.is_some();
        if self.released {
            assert_eq!(sim.closed, 0, "{c}: closed after release");
        } else if self.dropped {
            let writing = sim.current(Kind::Write) > 0;
            assert_eq!(
                sim.closed,
                u32::from(!writing),
                "{c}: a dropped pipe closes exactly when its last write is done"
            );
        } else {
            assert_eq!(sim.closed, 0, "{c}: closed while the pipe is in use");
        }
        for kind in [Kind::Read, Kind::Write, Kind::Connect] {
            assert!(sim.current(kind) <= 1, "{c}: two {kind:?}s in flight");
        }
        // No lost wakeup: a connected pipe with no read in flight has
        // something to hand out, and with no write in flight takes writes.
        let e = &self.e;
        if e.is_registered() && !self.dropped && !self.released && matches!(e.conn, Conn::Connected)
        {
            let r = e.readiness();
            // (A quiet pipe reads only once asked.)
            assert!(
                r.readable || sim.current(Kind::Read) > 0 || !e.read_ahead,
                "{c}: not readable, and no read in flight"
            );
            assert!(
                r.writable || sim.current(Kind::Write) > 0,
                "{c}: not writable, and no write in flight"
            );
        }
        assert_eq!(
            sim.given - sim.returned - sim.freed,
            sim.pending
                .iter()
                .filter(|p| p.kind != Kind::Connect && !p.buf_freed)
                .count(),
            "{c}: a buffer went missing"
        );

        // What was read is exactly the peer's stream, so far.
        let seen = &mut self.seen;
        let (from, to) = (seen.read_checked, seen.read.len());
        assert!(
            to <= sim.stream.len(),
            "{c}: read {to} bytes, more than the {} sent",
            sim.stream.len()
        );
        if seen.read[from..to] != sim.stream[from..to] {
            let i = (from..to).find(|&i| seen.read[i] != sim.stream[i]);
            panic!("{c}: byte {i:?} read is not the byte sent there");
        }
        seen.read_checked = to;

        // What the peer received is what write accepted, in order, epoch by epoch.
        assert!(
            sim.received.len() <= seen.epochs.len(),
            "{c}: bytes of an epoch not begun"
        );
        seen.received_checked.resize(sim.received.len(), 0);
        for (epoch, got) in sim.received.iter().enumerate() {
            let start = seen.epochs[epoch];
            let limit = seen
                .epochs
                .get(epoch + 1)
                .copied()
                .unwrap_or(seen.accepted.len());
            assert!(
                start + got.len() <= limit,
                "{c}: the peer got more than was accepted (epoch {epoch})"
            );
            let from = seen.received_checked[epoch];
            if got[from..] != seen.accepted[start + from..start + got.len()] {
                panic!("{c}: the peer got other bytes than accepted (epoch {epoch})");
            }
            seen.received_checked[epoch] = got.len();
        }
        if sim.msg_pipe {
            for &(epoch, end) in &sim.received_msgs[seen.received_msgs_checked..] {
                let at = seen.epochs[epoch] + end;
                assert!(
                    seen.accepted_ends.binary_search(&at).is_ok(),
                    "{c}: the peer got a message that is not one write"
                );
            }
            seen.received_msgs_checked = sim.received_msgs.len();
        }
    }

    fn trace(&self, step: usize, action: usize) {
        if self.trace {
            eprintln!(
                "step {step} action {action}: read {} stream {} unread ends {:?} pending {:?} engine {:?}",
                self.seen.read.len(),
                self.sim.stream.len(),
                &self.sim.sent_ends[self.sim.next_msg..],
                self.sim
                    .pending
                    .iter()
                    .map(|p| (p.id, p.kind, p.buf.len(), p.stale, p.cancelled, p.doomed))
                    .collect::<Vec<_>>(),
                self.e
            );
        }
    }

    /// One move after a drop or release: the kernel finishes or completes
    /// an operation, the reaper sweeps, or the linger limit passes. Returns
    /// false once nothing is left to move.
    fn after_drop(&mut self) -> bool {
        if self.dropped && self.sim.rng.chance(10) {
            // The reaper at the linger limit.
            self.e.linger_expired(&mut self.sim);
            self.sim.sweep(&self.e);
            return true;
        }
        if self.sim.poll_gone || self.sim.rng.chance(30) {
            let moved = self.sim.kernel_finishes_one();
            self.sim.sweep(&self.e);
            if moved || self.sim.poll_gone {
                return moved;
            }
        }
        self.sim.complete_one(&mut self.e)
    }

    /// The end of a run whose Poll went away: the user's pipe is dropped
    /// (if it was not), the linger limit passes, the kernel finishes every
    /// operation and the reaper sweeps. The handle is closed, and every
    /// buffer the kernel had is back or freed; only the operations' cells
    /// remain, for a port that will never hand them back.
    fn end_without_poll(mut self, step: usize) {
        if !self.dropped && !self.released {
            self.e.drop_pipe(&mut self.sim);
            self.dropped = true;
            self.sim.sweep(&self.e);
            self.check(step);
        }
        if self.dropped {
            self.e.linger_expired(&mut self.sim);
            self.check(step);
        }
        while self.sim.kernel_finishes_one() {}
        self.sim.sweep(&self.e);
        self.check(step);
        let c = self.ctx(step);
        assert_eq!(
            self.sim.closed,
            u32::from(!self.released),
            "{c}: closed at the end"
        );
        for p in &self.sim.pending {
            assert!(!self.e.tracks(&p.id), "{c}: still tracked: {p:?}");
            assert!(
                p.kind == Kind::Connect || p.buf_freed,
                "{c}: a buffer the kernel is done with was kept: {p:?}"
            );
        }
        assert_eq!(
            self.sim.given,
            self.sim.returned + self.sim.freed,
            "{c}: buffers neither back nor freed"
        );
        assert!(
            self.budget.is_whole(),
            "{c}: budget not whole: {:?}",
            self.budget
        );
    }

    fn drain(&mut self, step: usize) {
        while self.sim.complete_one(&mut self.e) {
            self.check(step);
        }
    }
}

/// Runs one scenario; returns whether reads, and the write queue, grew.
fn run(
    seed: u64,
    server: bool,
    msg_pipe: bool,
    msg_reads: bool,
    trace: bool,
) -> (bool, bool, usize) {
    let sim = Sim::new(
        mix(seed
            ^ u64::from(server) << 62
            ^ u64::from(msg_pipe) << 61
            ^ u64::from(msg_reads) << 60),
        server,
        msg_pipe,
        msg_reads,
    );
    let framing = Framing {
        message_reads: msg_reads,
        message_writes: msg_pipe,
    };
    // The default limits, or small ones that the simulated traffic
    // outgrows often; a budget with no room, room for one growth, or plenty.
    // (Drawn apart from the scenario's own numbers.)
    let mut rng = Rng(mix(seed ^ 0x00b0_d6e7));
    let limits = if rng.chance(50) {
        Limits::default()
    } else {
        Limits {
            max_read: MIN_READ + rng.below(MIN_READ),
            write_queue: MIN_READ + rng.below(4 * MIN_READ),
            grown_read: rng.size(4 * MAX_READ),
            grown_queue: rng.size(4 * WRITE_QUEUE),
            max_message: MAX_MESSAGE,
        }
    };
    // A cap on messages that some of the peer's messages (up to 40,000
    // bytes) are over, in four of ten runs; 0 refuses every message but
    // empty ones.
    let mut limits = limits;
    if rng.chance(40) {
        limits.max_message = if rng.chance(5) { 0 } else { rng.size(30_000) };
    }
    let room = match rng.below(4) {
        0 => 0,
        1 => limits.read_growth(),
        2 => limits.queue_growth() + rng.below(limits.read_growth() + 1),
        _ => usize::MAX / 2,
    };
    let budget = Budget::new(room);
    let e = if server {
        Engine::listening(framing)
    } else {
        Engine::connected(framing)
    }
    .with_limits(limits)
    .with_budget(budget.clone());
    let mut r = Run {
        seed,
        sim,
        e,
        seen: Seen::new(),
        dropped: false,
        released: false,
        buf: vec![0u8; 100_000],
        trace,
        quiet: false,
        budget,
        grew: (false, false),
        rejected: 0,
        resets_seen: 0,
    };
    r.quiet = server && r.sim.rng.chance(40);
    if server && r.sim.rng.chance(30) {
        // A client opens the instance before it is registered and before
        // any connect; it may send, and leave, at once.
        r.sim.peer_opens_early();
        for _ in 0..r.sim.rng.below(3) {
            r.sim.peer_sends();
        }
        r.sim.peer_gone = r.sim.rng.chance(20);
    }
    const STEPS: usize = 250;
    let drop_at = if r.sim.rng.chance(50) {
        r.sim.rng.below(STEPS)
    } else {
        usize::MAX
    };
    let release_at = if r.sim.rng.chance(5) {
        r.sim.rng.below(STEPS)
    } else {
        usize::MAX
    };
    let poll_gone_at = if r.sim.rng.chance(20) {
        r.sim.rng.below(STEPS)
    } else {
        usize::MAX
    };

    for step in 0..STEPS {
        if step == poll_gone_at {
            r.sim.poll_gone = true;
        }
        let action = r.sim.rng.below(100);
        if r.dropped || r.released {
            // Only the kernel and the reaper move now.
            if !r.after_drop() {
                break;
            }
        } else if step == drop_at {
            r.e.drop_pipe(&mut r.sim);
            r.dropped = true;
            r.sim.sweep(&r.e);
        } else if step == release_at {
            r.e.release(&mut r.sim);
            r.released = true;
            r.sim.sweep(&r.e);
        } else if action < 5 {
            if !r.e.is_registered() && r.quiet {
                r.e.quiet();
            } else if !r.e.is_registered() || (r.quiet && r.sim.rng.chance(20)) {
                // (A quiet pipe: accepted, and registered by the user.)
                r.register(step);
            }
        } else if action < 30 {
            if r.sim.poll_gone || r.sim.rng.chance(10) {
                r.sim.kernel_finishes_one();
            } else {
                r.sim.complete_one(&mut r.e);
            }
        } else if action < 37 {
            if r.sim.peer_there && !r.sim.peer_gone && r.sim.sent_ends.len() < 60 {
                r.sim.peer_sends();
            }
        } else if action < 38 {
            if r.sim.peer_there {
                r.sim.peer_gone = true;
            } else if r.sim.rng.chance(50) {
                r.sim.peer_opens_early();
            }
        } else if action < 55 {
            r.read(step);
        } else if action < 62 {
            r.recv_msg(step);
        } else if action < 78 {
            r.write(step);
        } else if action < 81 {
            r.flush(step);
        } else if action < 84 {
            r.take_error();
        } else if action < 90 {
            r.connect(step);
        } else if action < 93 {
            r.disconnect(step);
            if r.quiet && r.sim.rng.chance(50) {
                // The listener makes an instance listen again.
                r.e.quiet();
            }
        } else if action < 95 && r.quiet {
            r.e.watch(&mut r.sim);
        } else if action < 97 && r.quiet {
            r.peer_left(step);
        }
        r.trace(step, action);
        r.check(step);
    }

    let step = STEPS;
    if r.sim.poll_gone {
        let (grew, rejected) = (r.grew, r.rejected);
        r.end_without_poll(step);
        return (grew.0, grew.1, rejected);
    }
    if !r.dropped && !r.released {
        // The peer leaves and everything completes, without failures: every
        // accepted byte must arrive, and reading must yield the whole stream.
        r.sim.err_rate = 0;
        r.sim.peer_leaves = true;
        r.sim.peer_gone |= r.sim.peer_there;
        r.drain(step);
        match r.e.flush() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                panic!("{}: flush would block with nothing in flight", r.ctx(step))
            }
            Err(_) => r.seen.write_error(&mut r.sim),
            Ok(()) => r.flush(step),
        }
        if r.e.is_registered() && matches!(r.e.conn, Conn::Connected) {
            let mut end_of_file = false;
            for _ in 0..100_000 {
                let readable = r.e.readiness().readable;
                let quiet = !r.e.read_ahead;
                let n = if r.sim.rng.chance(80) {
                    r.buf.len()
                } else {
                    r.sim.rng.size(r.buf.len())
                };
                let res = r.e.read(&mut r.sim, &mut r.buf[..n]);
                let c = r.ctx(step);
                readiness_told_the_truth(readable, quiet, &res, &c);
                match res {
                    Ok(0) => {
                        end_of_file = true;
                        break;
                    }
                    Ok(k) => {
                        r.seen.read.extend_from_slice(&r.buf[..k]);
                        r.got_bytes(k, false, &c);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        r.assert_will_wake(Kind::Read, &c);
                        if !r.sim.complete_one(&mut r.e) {
                            break;
                        }
                    }
                    Err(e) => r.read_failed(&e, &c),
                }
                r.check(step);
            }
            let c = r.ctx(step);
            // (A reset to listening under the engine ends reading too.)
            let connected = matches!(r.e.conn, Conn::Connected);
            assert!(
                end_of_file || !connected,
                "{c}: the peer left, but reads never end: read {} of {}, engine {:?}, pending {:?}",
                r.seen.read.len(),
                r.sim.stream.len(),
                r.e,
                r.sim.pending
            );
            if end_of_file {
                assert_eq!(
                    r.seen.read.len(),
                    r.sim.stream.len(),
                    "{c}: end of file before the whole stream was read"
                );
            }
        }
        r.e.drop_pipe(&mut r.sim);
        r.dropped = true;
    }
    r.drain(step);
    r.check(step);
    let c = r.ctx(step);
    assert!(r.sim.pending.is_empty(), "{c}: operations never completed");
    assert_eq!(
        r.sim.given,
        r.sim.returned + r.sim.freed,
        "{c}: buffers still with the kernel"
    );
    assert_eq!(
        r.sim.closed,
        u32::from(!r.released),
        "{c}: closed at the end"
    );
    assert!(r.budget.is_whole(), "{c}: budget not whole: {:?}", r.budget);
    // Nothing reaches the kernel any more.
    let calls = r.sim.next_id;
    r.e.drop_pipe(&mut r.sim);
    r.e.register(&mut r.sim);
    assert!(would_block(&r.e.read(&mut r.sim, &mut [0; 8])));
    assert!(would_block(&r.e.write(&mut r.sim, b"x")));
    assert!(r.e.disconnect(&mut r.sim).is_err());
    assert_eq!(
        (r.sim.next_id, r.sim.calls_after_close),
        (calls, 0),
        "{c}: a kernel call after close"
    );
    (r.grew.0, r.grew.1, r.rejected)
}

/// The configurations: (server, message pipe, message reads).
const CONFIGS: [(bool, bool, bool); 6] = [
    (false, false, false),
    (false, true, true),
    (false, true, false),
    (true, false, false),
    (true, true, true),
    (true, true, false),
];

#[test]
fn thousands_of_random_interleavings() {
    let trace = std::env::var_os("SIM_TRACE").is_some();
    if let Ok(seed) = std::env::var("SIM_SEED") {
        let seed: u64 = seed.parse().expect("SIM_SEED is a number");
        for (server, msg_pipe, msg_reads) in CONFIGS {
            run(seed, server, msg_pipe, msg_reads, trace);
        }
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .map_or(500, |s| s.parse().expect("SIM_SEEDS is a number"));
    let (mut reads, mut queues, mut rejected) = (0, 0, 0);
    for seed in 0..seeds {
        for (server, msg_pipe, msg_reads) in CONFIGS {
            let grew = run(seed, server, msg_pipe, msg_reads, trace);
            reads += usize::from(grew.0);
            queues += usize::from(grew.1);
            rejected += grew.2;
        }
    }
    eprintln!(
        "{} runs: reads grew in {reads}, the write queue in {queues}; {rejected} messages over max_message",
        seeds as usize * CONFIGS.len()
    );
    if seeds >= 100 {
        assert!(reads > 0 && queues > 0, "the runs never grew a buffer");
        assert!(rejected > 0, "no message was ever over max_message");
    }
}
