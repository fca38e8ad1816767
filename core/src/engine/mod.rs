//! The engine: every decision of a named pipe, as plain Rust.
//!
//! Windows completes pipe I/O through IOCP; mio wants readiness. The engine
//! holds the state of connect, read and write, decides which operation to
//! issue next and which readiness to report, and never calls the OS itself:
//! it asks a [`Kernel`] to start operations and is told of their completions
//! through [`Engine::complete`]. The Win32 layer implements [`Kernel`] with
//! real overlapped calls; the tests implement it with a simulated pipe in
//! which every call can fail and completions arrive in any order.
//!
//! Buffers move by value: a read or write buffer belongs to the kernel from
//! [`Kernel::start_read`]/[`Kernel::start_write`] until it comes back with
//! the outcome, so the engine can never touch memory the OS may still write.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::mem;

pub(crate) mod budget;
pub(crate) mod policy;
pub(crate) mod table;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use budget::{Budget, Grant};
use table::{user_error, verdict, OpKind, Verdict, ERROR_PIPE_LISTENING};

/// The smallest read buffer, and the one an idle pipe keeps pending.
pub(crate) const MIN_READ: usize = 4 * 1024;
/// The default largest byte-mode read: reads grow towards it while data
/// streams ([`Limits::max_read`]).
pub(crate) const MAX_READ: usize = 64 * 1024;
/// The default of how many bytes `write` accepts while a write is in
/// flight, before it reports `WouldBlock` ([`Limits::write_queue`]).
pub(crate) const WRITE_QUEUE: usize = 64 * 1024;
/// The largest byte-mode read of a streaming pipe with the default limits
/// while the [`Budget`] has room ([`Limits::grown_read`]).
pub(crate) const GROWN_READ: usize = 256 * 1024;
/// The write queue of a streaming pipe with the default limits while the
/// [`Budget`] has room ([`Limits::grown_queue`]).
pub(crate) const GROWN_QUEUE: usize = 1024 * 1024;
/// The default largest message a message-mode read takes
/// ([`Limits::max_message`]): 4 MiB.
pub(crate) const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// The largest `max_read` and `write_queue` a user may set: 1 GiB.
pub(crate) const MAX_LIMIT: usize = 1024 * 1024 * 1024;
/// The largest message one `WriteFile` can send (its length is a `u32`).
pub(crate) const MAX_MESSAGE_WRITE: usize = u32::MAX as usize;
/// The reads that drain a message over the cap, unread, are this large.
const SKIP_READ: usize = 64 * 1024;
/// At most this many messages wait behind a write in flight.
pub(crate) const MAX_QUEUED_MESSAGES: usize = 1024;
/// Write buffers up to this size are kept for reuse; larger ones are freed
/// once written, so an idle pipe pins no large buffer.
const KEEP_WRITE_BUFFER: usize = 64 * 1024;
/// A read loop that keeps finishing at once with nothing read gives up after this many.
const MAX_EMPTY_READS: usize = 1024;

/// How much memory one pipe may hold in buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The largest byte-mode read: reads grow towards it while data streams
    /// (at least [`MIN_READ`]; message reads are sized to the message).
    pub(crate) max_read: usize,
    /// Bytes `write` accepts while a write is in flight, before it reports
    /// `WouldBlock`; also the most one write call takes (byte mode).
    pub(crate) write_queue: usize,
    /// Byte-mode reads of a pipe whose reads keep filling their buffer grow
    /// up to this, beyond `max_read`, while the engine's [`Budget`] has
    /// room for the difference. `max_read` or less: never.
    pub(crate) grown_read: usize,
    /// The write queue of a pipe whose queue keeps filling grows up to
    /// this, beyond `write_queue`, while the engine's [`Budget`] has room
    /// for twice the difference (the queue and the write in flight before
    /// it). `write_queue` or less: never.
    pub(crate) grown_queue: usize,
    /// The largest message a message-mode read takes: a longer one is
    /// drained from the pipe unread and reported as `InvalidData`
    /// ([`Engine`]'s reads); `usize::MAX`: no cap.
    pub(crate) max_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_read: MAX_READ,
            write_queue: WRITE_QUEUE,
            grown_read: GROWN_READ,
            grown_queue: GROWN_QUEUE,
            max_message: MAX_MESSAGE,
        }
    }
}

impl Limits {
    /// Exactly `max_read` and `write_queue`, never more.
    #[cfg(test)]
    pub(crate) fn fixed(max_read: usize, write_queue: usize) -> Limits {
        let mut l = Limits::default();
        l.set_max_read(max_read);
        l.set_write_queue(write_queue);
        l
    }

    /// Reads of at most `bytes`, set by the user: exact, never grown.
    pub(crate) fn set_max_read(&mut self, bytes: usize) {
        self.max_read = bytes;
        self.grown_read = bytes;
    }

    /// Messages of at most `bytes`, set by the user (`usize::MAX`: any).
    pub(crate) fn set_max_message(&mut self, bytes: usize) {
        self.max_message = bytes;
    }

    /// A write queue of `bytes`, set by the user: exact, never grown.
    pub(crate) fn set_write_queue(&mut self, bytes: usize) {
        self.write_queue = bytes;
        self.grown_queue = bytes;
    }

    /// Checks the limits a user set: `max_read` and `write_queue` from
    /// `min` to [`MAX_LIMIT`]. The error names both.
    pub(crate) fn check(&self, min: usize) -> Result<(), String> {
        let ok = |v: usize| (min..=MAX_LIMIT).contains(&v);
        if ok(self.max_read) && ok(self.write_queue) {
            return Ok(());
        }
        Err(format!(
            "max_read and write_queue must be {min} to {MAX_LIMIT} bytes (1 GiB), not {} and {}",
            self.max_read, self.write_queue
        ))
    }

    /// What a pipe must take from the budget to read up to `grown_read`.
    fn read_growth(&self) -> usize {
        self.grown_read.saturating_sub(self.max_read)
    }

    /// What a pipe must take from the budget to queue up to `grown_queue`:
    /// the queue and the write in flight are each that much larger.
    fn queue_growth(&self) -> usize {
        2 * self.grown_queue.saturating_sub(self.write_queue)
    }
}

/// The outcome of one operation: bytes transferred, and the error if it failed.
///
/// A message read that fills its buffer fails with `ERROR_MORE_DATA` and still
/// transferred bytes, so both are kept.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Bytes transferred (appended to a read buffer by the kernel).
    pub(crate) bytes: usize,
    /// The error, if the operation did not succeed.
    pub(crate) error: Option<io::Error>,
}

impl Outcome {
    /// A failure.
    pub(crate) fn err(error: io::Error) -> Outcome {
        Outcome {
            bytes: 0,
            error: Some(error),
        }
    }
}

/// What became of a request to start an operation.
#[derive(Debug)]
pub(crate) enum Start<Op, B> {
    /// The operation is in flight: the kernel keeps the buffer, and the
    /// outcome arrives later through [`Engine::complete`] with this `Op`.
    Pending(Op),
    /// The operation finished (or failed) at once; no completion will follow.
    /// For reads, the bytes read were appended to the buffer.
    Done(B, Outcome),
}

/// What `PeekNamedPipe` says is waiting to be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Peek {
    /// All bytes waiting in the pipe.
    pub(crate) available: usize,
    /// In message read mode, the bytes left of the message being read.
    pub(crate) message_left: usize,
}

/// The operations the engine asks of the OS.
///
/// Every method but `close` may be called only before `close`; the engine
/// guarantees it.
pub(crate) trait Kernel {
    /// Identifies one operation in flight.
    type Op: PartialEq;
    /// Starts `ConnectNamedPipe`.
    fn start_connect(&mut self) -> Start<Self::Op, ()>;
    /// Starts a `ReadFile` into `buf`'s spare capacity (after its contents).
    fn start_read(&mut self, buf: Vec<u8>) -> Start<Self::Op, Vec<u8>>;
    /// Starts a `WriteFile` of all of `buf`.
    fn start_write(&mut self, buf: Vec<u8>) -> Start<Self::Op, Vec<u8>>;
    /// Asks the OS to cancel `op` (`CancelIoEx`); its completion still follows.
    fn cancel(&mut self, op: &Self::Op);
    /// `DisconnectNamedPipe`.
    fn disconnect(&mut self) -> io::Result<()>;
    /// `PeekNamedPipe`: what waits in the pipe, or the error it failed with
    /// (`ERROR_BROKEN_PIPE` once the peer left and its data is read).
    fn peek(&mut self) -> io::Result<Peek>;
    /// Closes the handle. Called once, last.
    fn close(&mut self);
}

/// The readiness the engine reports to the event loop (for fronts, which
/// pass it on: a mio `Ready`, task wakers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A read, `recv_msg` or error report would not block.
    pub readable: bool,
    /// A write would be accepted, or a connect finished, or an error waits.
    pub writable: bool,
}

/// How this end of the pipe transfers data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Framing {
    /// The handle is in message read mode: one read never spans two messages.
    pub(crate) message_reads: bool,
    /// The pipe is of message type: every `WriteFile` is one message, so
    /// writes are never coalesced.
    pub(crate) message_writes: bool,
}

/// Where the connection with the other end stands.
#[derive(Debug)]
enum Conn<Op> {
    /// Connected to the other end, as far as the engine knows: clients, and
    /// servers once a connect finished. Handles from `from_raw_handle` start here.
    Connected,
    /// A server instance with no client: new, or after `disconnect`, or
    /// after a read or write reported `ERROR_PIPE_LISTENING`.
    Listening,
    /// `ConnectNamedPipe` is in flight.
    Connecting(Op),
}

/// The read side.
enum ReadState<Op> {
    /// Nothing buffered and no read in flight.
    Idle,
    /// A read is in flight; the kernel owns its buffer.
    Pending(Op),
    /// Bytes to hand out, `buf[pos..]`: in message read mode, the rest of
    /// exactly one whole message.
    Ready {
        /// The data.
        buf: Vec<u8>,
        /// How much of `buf` was handed out already.
        pos: usize,
    },
    /// The other end has gone: reads return `Ok(0)` until a `disconnect`.
    Eof,
    /// A read failed; the error is handed out once, then reading resumes.
    Failed(io::Error),
}

/// The write side.
struct WriteState<Op> {
    /// The write in flight; the kernel owns its buffer.
    inflight: Option<Op>,
    /// Byte mode: bytes accepted while a write was in flight, sent next in one write.
    queue: Vec<u8>,
    /// Message mode: whole messages accepted while a write was in flight.
    messages: VecDeque<Vec<u8>>,
    /// Bytes in `messages`.
    message_bytes: usize,
    /// A write of accepted data failed; reported by the next `write` or `flush`.
    error: Option<io::Error>,
    /// `flush` returned `WouldBlock`: writable stays off until everything is
    /// written, so that the end of the flush is an edge the event loop sees.
    flush_waiting: bool,
    /// A buffer kept for the next write.
    spare: Vec<u8>,
}

impl<Op> WriteState<Op> {
    fn new() -> Self {
        WriteState {
            inflight: None,
            queue: Vec::new(),
            messages: VecDeque::new(),
            message_bytes: 0,
            error: None,
            flush_waiting: false,
            spare: Vec::new(),
        }
    }

    fn queued(&self) -> usize {
        self.queue.len() + self.message_bytes
    }

    fn has_room(&self, limit: usize) -> bool {
        self.inflight.is_none()
            || (self.queued() < limit && self.messages.len() < MAX_QUEUED_MESSAGES)
    }

    fn idle(&self) -> bool {
        self.inflight.is_none() && self.queued() == 0
    }

    /// Drops everything accepted but not yet written.
    fn discard(&mut self) {
        self.queue.clear();
        self.messages.clear();
        self.message_bytes = 0;
    }
}

/// The state machine of one pipe handle.
pub(crate) struct Engine<Op> {
    framing: Framing,
    limits: Limits,
    /// Associated with an event loop: until then every I/O call would block.
    registered: bool,
    /// Reads start on their own (after a connect, at registration) rather
    /// than only when the user reads.
    read_ahead: bool,
    /// A read that completes with no data (a zero-byte message) is handed
    /// out as one `Ok(0)` instead of being skipped.
    report_empty: bool,
    /// The user's `NamedPipe` is gone; only pending writes still matter.
    dropped: bool,
    /// The handle was closed or given away: no kernel call may follow.
    closed: bool,
    conn: Conn<Op>,
    read: ReadState<Op>,
    write: WriteState<Op>,
    /// A connect failed in the background; `connect` or `take_error` reports it.
    connect_error: Option<io::Error>,
    /// The last read filled its buffer: data is streaming, so size the next
    /// read from what `PeekNamedPipe` says is waiting.
    streaming: bool,
    /// A read buffer kept for the next read.
    spare_read: Vec<u8>,
    /// Message mode: the first part of a message whose continuation read
    /// failed. The next read resumes it, so the message still arrives whole.
    partial_message: Option<Vec<u8>>,
    /// Message mode: the message being read is over `limits.max_message`
    /// (or its buffer could not be allocated); its rest is being read and
    /// thrown away, and this error is reported once it is gone.
    skipping: Option<io::Error>,
    /// The bytes the last read brought.
    last_bytes: usize,
    /// How many times the pipe was found reset under the engine (for the
    /// simulation, which must drop the old client's unread data then too).
    #[cfg(test)]
    pub(crate) resets: usize,
    /// Where grown buffers take their bytes from; `None`: never grow.
    budget: Option<Budget>,
    /// Held while reads may be up to `limits.grown_read`.
    read_grant: Option<Grant>,
    /// The bytes of the last read that succeeded.
    last_read: usize,
    /// Held while the write queue may hold up to `limits.grown_queue`.
    queue_grant: Option<Grant>,
}

impl<Op> fmt::Debug for Engine<Op> {
    /// A summary: states and byte counts, never the data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conn = match self.conn {
            Conn::Connected => "connected",
            Conn::Listening => "listening",
            Conn::Connecting(_) => "connecting",
        };
        let read = match &self.read {
            ReadState::Idle => "idle".to_string(),
            ReadState::Pending(_) => "pending".to_string(),
            ReadState::Ready { buf, pos } => format!("{} bytes ready", buf.len() - pos),
            ReadState::Eof => "end of file".to_string(),
            ReadState::Failed(e) => format!("failed: {e}"),
        };
        f.debug_struct("Engine")
            .field("framing", &self.framing)
            .field("registered", &self.registered)
            .field("conn", &conn)
            .field("read", &read)
            .field("write_in_flight", &self.write.inflight.is_some())
            .field("write_queued", &self.write.queued())
            .field("write_error", &self.write.error)
            .field("connect_error", &self.connect_error)
            .field("read_grant", &self.read_grant)
            .field("queue_grant", &self.queue_grant)
            .field("dropped", &self.dropped)
            .field("closed", &self.closed)
            .finish()
    }
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

fn other_error(what: &'static str) -> io::Error {
    io::Error::other(what)
}

/// The error of a message of `len` bytes over the cap `max`.
fn over_cap(len: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a message of {len} bytes is over max_message ({max} bytes); it was discarded"),
    )
}

/// The error of a message of at least `len` bytes over the cap `max`.
fn over_cap_at_least(len: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "a message of {len} bytes or more is over max_message ({max} bytes); it was discarded"
        ),
    )
}

/// Refuses a message write that one `WriteFile` cannot send whole (its
/// length is a `u32`): it would be cut, and delivered as if whole.
fn check_message_write(len: usize) -> io::Result<()> {
    if len <= MAX_MESSAGE_WRITE {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a message of {len} bytes is longer than a pipe message can be (u32::MAX bytes)"),
    ))
}

impl<Op: PartialEq> Engine<Op> {
    /// An engine for a handle whose peer may already be connected (clients,
    /// and handles from `from_raw_handle`).
    pub(crate) fn connected(framing: Framing) -> Self {
        Self::new(framing, Conn::Connected)
    }

    /// An engine for a new server instance, waiting for `connect`.
    pub(crate) fn listening(framing: Framing) -> Self {
        Self::new(framing, Conn::Listening)
    }

    fn new(framing: Framing, conn: Conn<Op>) -> Self {
        Engine {
            framing,
            limits: Limits::default(),
            registered: false,
            read_ahead: true,
            report_empty: false,
            dropped: false,
            closed: false,
            conn,
            read: ReadState::Idle,
            write: WriteState::new(),
            connect_error: None,
            streaming: false,
            spare_read: Vec::new(),
            partial_message: None,
            skipping: None,
            last_bytes: 0,
            #[cfg(test)]
            resets: 0,
            budget: None,
            read_grant: None,
            last_read: 0,
            queue_grant: None,
        }
    }

    /// The same engine with other buffer limits (before any I/O).
    pub(crate) fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same engine, growing its buffers beyond the limits' defaults
    /// with bytes of `budget` (before any I/O). Without one it never grows.
    pub(crate) fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Whether a read that completes with no data — a zero-byte message,
    /// which go-winio's `CloseWrite` sends as the end of one direction — is
    /// handed out as one `Ok(0)` (`true`) or skipped (`false`, the default).
    /// Reading goes on after it either way.
    pub(crate) fn set_report_empty(&mut self, on: bool) {
        self.report_empty = on;
    }

    /// The largest byte-mode read now.
    fn read_cap(&self) -> usize {
        if self.read_grant.is_some() {
            self.limits.grown_read
        } else {
            self.limits.max_read
        }
    }

    /// The write queue's size now.
    fn queue_cap(&self) -> usize {
        if self.queue_grant.is_some() {
            self.limits.grown_queue
        } else {
            self.limits.write_queue
        }
    }

    /// Takes `bytes` from the budget, if there is one with room.
    fn grant(&self, bytes: usize) -> Option<Grant> {
        if bytes == 0 || self.dropped || self.closed {
            return None;
        }
        self.budget.as_ref()?.take(bytes)
    }

    /// Gives back the read growth: reads shrink to `max_read`, and a spare
    /// buffer larger than that goes.
    fn shrink_reads(&mut self) {
        if self.read_grant.take().is_some() && self.spare_read.capacity() > self.read_cap() {
            self.spare_read = Vec::new();
        }
    }

    /// Gives back the write queue's growth; call only when nothing is queued
    /// and no write is in flight, or when the queue is dropped.
    fn shrink_queue(&mut self) {
        if self.queue_grant.take().is_some() && self.write.queue.capacity() > KEEP_WRITE_BUFFER {
            self.write.queue = Vec::new();
        }
    }

    /// Whether a write of `len` bytes may be queued now (some of it, in
    /// byte mode); a queue too small for it grows first if the budget allows.
    fn queue_room(&mut self, len: usize) -> bool {
        if self.queue_grant.is_none() && self.write.queued() + len > self.queue_cap() {
            self.queue_grant = self.grant(self.limits.queue_growth());
        }
        self.write.has_room(self.queue_cap())
    }

    /// The handle is now associated with an event loop: start reading.
    ///
    /// A server instance that was never connected by [`connect`] may have a
    /// client already: a client can open the pipe before
    /// `ConnectNamedPipe` is called. Registering asks the pipe
    /// (`PeekNamedPipe`) and, if a client is there (or came and left),
    /// serves it as if a connect had finished: it reads ahead and reports
    /// writable, as mio-named-pipes 0.1 did. With no client yet the
    /// instance waits for `connect` as before: nothing is read, nothing is
    /// reported, and nothing is asked again.
    ///
    /// [`connect`]: Engine::connect
    pub(crate) fn register<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        if self.closed {
            return;
        }
        self.registered = true;
        self.read_ahead = true;
        if matches!(self.conn, Conn::Listening) && self.connect_error.is_none() && !self.dropped {
            self.adopt_early_client(k);
        }
        self.kick_read(k);
    }

    /// A listening instance asks the pipe whether a client is connected
    /// already; if so, it is connected from now on. Any answer but data
    /// waiting, nothing waiting, or the client gone
    /// (`ERROR_PIPE_LISTENING` above all) means no client.
    fn adopt_early_client<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        let client = match k.peek() {
            Ok(_) => true,
            Err(e) => verdict(OpKind::Read, Some(&e)) == Verdict::EndOfFile,
        };
        if client {
            self.on_connect(
                k,
                Outcome {
                    bytes: 0,
                    error: None,
                },
            );
        }
    }

    /// Registered with an event loop that is not the user's (a listener's):
    /// I/O works, but nothing is read until the pipe is registered again,
    /// read from, or [`watch`](Engine::watch)ed — not even after a connect.
    /// Also after a `disconnect`, for an instance that will listen again.
    pub(crate) fn quiet(&mut self) {
        if !self.closed {
            self.registered = true;
            self.read_ahead = false;
        }
    }

    /// Reads ahead from now on, so that the peer leaving is noticed (reads
    /// report end of file, and the pipe turns readable).
    pub(crate) fn watch<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        if self.registered {
            self.read_ahead = true;
            self.kick_read(k);
        }
    }

    /// Whether the peer has gone with nothing left to read: known from a
    /// read, or — when no read is in flight or buffered — asked of the pipe
    /// (`PeekNamedPipe`), in which case reads report end of file from now on.
    pub(crate) fn peer_left<K: Kernel<Op = Op>>(&mut self, k: &mut K) -> bool {
        match self.read {
            ReadState::Eof => true,
            ReadState::Idle if self.may_read() => {
                let gone = matches!(
                    k.peek(),
                    Err(e) if verdict(OpKind::Read, Some(&e)) == Verdict::EndOfFile
                );
                if gone {
                    self.read = ReadState::Eof;
                }
                gone
            }
            _ => false,
        }
    }

    /// How this end frames data.
    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether reads report end of file (the peer has gone) with nothing
    /// buffered before it.
    pub(crate) fn at_end_of_file(&self) -> bool {
        matches!(self.read, ReadState::Eof)
    }

    /// Whether the engine was registered.
    pub(crate) fn is_registered(&self) -> bool {
        self.registered
    }

    /// The readiness to report now.
    pub(crate) fn readiness(&self) -> Readiness {
        if !self.registered || self.dropped || self.closed {
            return Readiness::default();
        }
        let readable = matches!(
            self.read,
            ReadState::Ready { .. } | ReadState::Eof | ReadState::Failed(_)
        );
        let writable = self.write.error.is_some()
            || self.connect_error.is_some()
            || (matches!(self.conn, Conn::Connected)
                && self.write.has_room(self.queue_cap())
                && !self.write.flush_waiting);
        Readiness { readable, writable }
    }

    // ------------------------------------------------------------ connect

    /// `NamedPipe::connect`.
    pub(crate) fn connect<K: Kernel<Op = Op>>(&mut self, k: &mut K) -> io::Result<()> {
        if !self.registered || self.closed {
            return Err(would_block());
        }
        if let Some(e) = self.connect_error.take() {
            return Err(e);
        }
        match self.conn {
            Conn::Connected => Ok(()),
            Conn::Connecting(_) => Err(would_block()),
            Conn::Listening => match k.start_connect() {
                Start::Pending(op) => {
                    self.conn = Conn::Connecting(op);
                    Err(would_block())
                }
                Start::Done((), outcome) => {
                    self.on_connect(k, outcome);
                    match self.connect_error.take() {
                        Some(e) => Err(e),
                        None => Ok(()),
                    }
                }
            },
        }
    }

    fn on_connect<K: Kernel<Op = Op>>(&mut self, k: &mut K, outcome: Outcome) {
        match verdict(OpKind::Connect, outcome.error.as_ref()) {
            Verdict::Connected => {
                self.conn = Conn::Connected;
                // A new client: the end of file or half a message of an
                // earlier one (the pipe was found listening) is no part of it.
                self.partial_message = None;
                self.skipping = None;
                if matches!(self.read, ReadState::Eof) {
                    self.read = ReadState::Idle;
                }
                if self.read_ahead {
                    self.kick_read(k);
                }
            }
            _ => {
                self.conn = Conn::Listening;
                self.connect_error = outcome.error;
            }
        }
    }

    /// `NamedPipe::disconnect`: ends the connection and forgets everything of it.
    pub(crate) fn disconnect<K: Kernel<Op = Op>>(&mut self, k: &mut K) -> io::Result<()> {
        if self.closed {
            return Err(other_error("the pipe handle is closed"));
        }
        k.disconnect()?;
        self.forget_ops(k);
        self.conn = Conn::Listening;
        self.read = ReadState::Idle;
        self.partial_message = None;
        self.skipping = None;
        self.write.discard();
        self.shrink_queue();
        self.write.error = None;
        self.write.flush_waiting = false;
        self.connect_error = None;
        self.streaming = false;
        self.shrink_reads();
        Ok(())
    }

    /// Cancels every operation in flight and stops tracking it: whatever it
    /// completes with is ignored.
    fn forget_ops<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        if let Conn::Connecting(op) = mem::replace(&mut self.conn, Conn::Listening) {
            k.cancel(&op);
        }
        if let ReadState::Pending(op) = mem::replace(&mut self.read, ReadState::Idle) {
            k.cancel(&op);
        }
        if let Some(op) = self.write.inflight.take() {
            k.cancel(&op);
        }
    }

    /// Takes the error of a connect or write that failed in the background.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.connect_error
            .take()
            .or_else(|| self.write.error.take())
    }

    // ------------------------------------------------------------ read

    fn may_read(&self) -> bool {
        self.registered && !self.dropped && !self.closed && matches!(self.conn, Conn::Connected)
    }

    /// Starts a read if none is in flight and nothing is buffered.
    fn kick_read<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        if !self.may_read() || !matches!(self.read, ReadState::Idle) {
            return;
        }
        if let Some(partial) = self.partial_message.take() {
            return self.read_into(k, partial);
        }
        if self.skipping.is_some() {
            let buf = self.skip_buffer(Vec::new());
            return self.read_into(k, buf);
        }
        let want = self.next_read_size(k);
        let mut buf = mem::take(&mut self.spare_read);
        if buf.capacity() < want || buf.capacity() > want.max(MIN_READ) * 2 {
            // A size a peer chose (a message's length) may be more than
            // the process can allocate: then read a little, and let the
            // rest of the message decide.
            buf = Vec::new();
            if buf.try_reserve_exact(want).is_err() {
                buf = Vec::with_capacity(MIN_READ);
            }
        }
        buf.clear();
        self.read_into(k, buf);
    }

    fn next_read_size<K: Kernel<Op = Op>>(&mut self, k: &mut K) -> usize {
        if !mem::take(&mut self.streaming) {
            self.shrink_reads();
            return MIN_READ;
        }
        if !self.framing.message_reads {
            // A byte-mode read returns what is there without waiting for
            // more, so a streaming pipe reads the most it may without asking
            // first (a `PeekNamedPipe` per read is one more kernel transition).
            self.size_reads(self.last_read);
            return self.read_cap().max(MIN_READ);
        }
        let Ok(p) = k.peek() else { return MIN_READ };
        let waiting = if self.framing.message_reads && p.message_left > 0 {
            // Never more than the cap: a longer message is found out by
            // its continuation (`ERROR_MORE_DATA` with the buffer full).
            p.message_left.min(self.limits.max_message)
        } else {
            p.available.min(self.limits.max_read)
        };
        waiting.max(MIN_READ)
    }

    /// Issues reads into `buf` until one is pending or one produced a result.
    fn read_into<K: Kernel<Op = Op>>(&mut self, k: &mut K, mut buf: Vec<u8>) {
        let mut empty = 0;
        loop {
            if buf.capacity() == buf.len() {
                buf.reserve(MIN_READ);
            }
            match k.start_read(buf) {
                Start::Pending(op) => {
                    self.read = ReadState::Pending(op);
                    return;
                }
                Start::Done(b, outcome) => match self.on_read(k, b, outcome) {
                    Some(next) => {
                        // (Reads that drain an overlong message bring
                        // bytes into an emptied buffer.)
                        empty += usize::from(next.is_empty() && self.last_bytes == 0);
                        if empty > MAX_EMPTY_READS {
                            self.read = ReadState::Failed(other_error(
                                "the pipe keeps finishing reads with no data",
                            ));
                            return;
                        }
                        buf = next;
                    }
                    None => return,
                },
            }
        }
    }

    /// Takes in a read's outcome. Returns a buffer to read into again when
    /// the read must go on (the rest of a message, or an empty message).
    fn on_read<K: Kernel<Op = Op>>(
        &mut self,
        k: &mut K,
        mut buf: Vec<u8>,
        outcome: Outcome,
    ) -> Option<Vec<u8>> {
        self.read = ReadState::Idle;
        self.last_bytes = outcome.bytes;
        if self.skipping.is_some() {
            return self.on_skipped_read(k, buf, outcome);
        }
        match verdict(OpKind::Read, outcome.error.as_ref()) {
            Verdict::Done if buf.is_empty() && self.report_empty => {
                // An empty message, reported: one `Ok(0)` for the reader,
                // then reading goes on (`take_read` kicks the next read).
                self.read = ReadState::Ready { buf, pos: 0 };
                None
            }
            Verdict::Done if buf.is_empty() => {
                // An empty message (or an empty write on a byte pipe): not an
                // end of file, and nothing to hand out. Read on.
                Some(buf)
            }
            Verdict::Done if self.framing.message_reads && buf.len() > self.limits.max_message => {
                // A whole message, over the cap: not handed out.
                self.read = ReadState::Failed(over_cap(buf.len(), self.limits.max_message));
                self.recycle_read(buf);
                None
            }
            Verdict::Done => {
                self.streaming = buf.len() == buf.capacity() || outcome.bytes >= MIN_READ * 4;
                self.last_read = buf.len();
                self.read = ReadState::Ready { buf, pos: 0 };
                None
            }
            Verdict::MoreData => {
                // The rest of this message follows: make room for all of it,
                // so the message is handed out whole.
                // Room for the rest as `PeekNamedPipe` tells it, never
                // beyond the cap: a message still going on with `max_message`
                // bytes read is over it, whatever the peek said.
                let cap = self.limits.max_message;
                if buf.len() >= cap {
                    let e = over_cap_at_least(buf.len().saturating_add(1), cap);
                    return Some(self.start_skipping(buf, e));
                }
                let left = k.peek().map_or(0, |p| p.message_left);
                let more = if left > 0 {
                    left
                } else {
                    buf.len().max(MIN_READ)
                };
                let more = more.min(cap - buf.len());
                if buf.try_reserve_exact(more).is_err() {
                    let e = io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        format!(
                            "no memory for a message of {} bytes or more; it was discarded",
                            buf.len() + more
                        ),
                    );
                    return Some(self.start_skipping(buf, e));
                }
                self.streaming = true;
                Some(buf)
            }
            Verdict::EndOfFile => {
                self.read = ReadState::Eof;
                self.shrink_reads();
                None
            }
            Verdict::Listening => {
                // (A connect in flight stays tracked.)
                self.reset_under_us(k);
                self.shrink_reads();
                self.recycle_read(buf);
                None
            }
            Verdict::Connected | Verdict::Aborted | Verdict::Failed => {
                if buf.is_empty() {
                    self.recycle_read(buf);
                } else {
                    // The rest of a message failed to arrive; it is still in
                    // the pipe. Keep the first part, so that reading resumes
                    // the same message instead of handing out its tail.
                    self.partial_message = Some(buf);
                }
                self.read =
                    ReadState::Failed(outcome.error.unwrap_or_else(|| other_error("read failed")));
                None
            }
        }
    }

    /// The message being read is over the cap (or too large to allocate):
    /// what was read of it goes, and the rest is drained; `e` is reported
    /// once it is gone. Returns the buffer to drain into.
    fn start_skipping(&mut self, buf: Vec<u8>, e: io::Error) -> Vec<u8> {
        self.skipping = Some(e);
        self.streaming = false;
        self.skip_buffer(buf)
    }

    /// An empty buffer for reads that drain a message: `buf` if it is
    /// small, else a new one of [`SKIP_READ`] bytes.
    fn skip_buffer(&mut self, mut buf: Vec<u8>) -> Vec<u8> {
        buf.clear();
        if buf.capacity() > SKIP_READ || buf.capacity() < MIN_READ {
            buf = mem::take(&mut self.spare_read);
            buf.clear();
            if buf.capacity() < MIN_READ || buf.capacity() > SKIP_READ {
                buf = Vec::with_capacity(SKIP_READ);
            }
        }
        buf
    }

    /// Takes in the outcome of a read that drains a message over the cap.
    fn on_skipped_read<K: Kernel<Op = Op>>(
        &mut self,
        k: &mut K,
        buf: Vec<u8>,
        outcome: Outcome,
    ) -> Option<Vec<u8>> {
        match verdict(OpKind::Read, outcome.error.as_ref()) {
            // More of it: read on, into the same buffer emptied.
            Verdict::MoreData => Some(self.skip_buffer(buf)),
            // The peer has gone: the rest of the message never comes.
            Verdict::EndOfFile => {
                self.skipping = None;
                self.read = ReadState::Eof;
                self.shrink_reads();
                self.recycle_read(buf);
                None
            }
            // Its end: report the message, then read on.
            Verdict::Done => {
                let e = self.skipping.take();
                self.recycle_read(buf);
                self.read =
                    ReadState::Failed(e.unwrap_or_else(|| other_error("message over the cap")));
                None
            }
            Verdict::Listening => {
                self.skipping = None;
                self.reset_under_us(k);
                self.recycle_read(buf);
                None
            }
            // The rest is still in the pipe: the next read drains on.
            Verdict::Connected | Verdict::Aborted | Verdict::Failed => {
                self.recycle_read(buf);
                self.read =
                    ReadState::Failed(outcome.error.unwrap_or_else(|| other_error("read failed")));
                None
            }
        }
    }

    /// The last read of a streaming byte-mode pipe brought `got` bytes, and
    /// its buffer is free again: the next reads grow if it filled the
    /// default size and the budget has room. They shrink back only once
    /// the stream stops: giving the bytes back at every smaller read, for
    /// another pipe to take, was measured to leave the heap fragmented
    /// (256 streaming pipes peaked at 67 to 73 MiB instead of 62 to 63).
    fn size_reads(&mut self, got: usize) {
        if self.read_grant.is_none() && got >= self.limits.max_read {
            self.read_grant = self.grant(self.limits.read_growth());
        }
    }

    fn recycle_read(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= self.read_cap().max(MIN_READ)
            && buf.capacity() > self.spare_read.capacity()
        {
            buf.clear();
            self.spare_read = buf;
        }
    }

    /// `Read::read`: never returns bytes of two messages in one call.
    pub(crate) fn read<K: Kernel<Op = Op>>(
        &mut self,
        k: &mut K,
        dst: &mut [u8],
    ) -> io::Result<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        self.take_read(k, |buf, pos| {
            let n = (buf.len() - *pos).min(dst.len());
            dst[..n].copy_from_slice(&buf[*pos..*pos + n]);
            *pos += n;
            n
        })
    }

    /// `Read::read_vectored`: fills `dsts` in turn from the one ready buffer
    /// (so never with bytes of two messages, as [`read`](Engine::read)).
    pub(crate) fn read_vectored<K: Kernel<Op = Op>>(
        &mut self,
        k: &mut K,
        dsts: &mut [io::IoSliceMut<'_>],
    ) -> io::Result<usize> {
        if dsts.iter().all(|d| d.is_empty()) {
            return Ok(0);
        }
        self.take_read(k, |buf, pos| {
            let mut n = 0;
            for dst in dsts.iter_mut() {
                let m = (buf.len() - *pos).min(dst.len());
                dst[..m].copy_from_slice(&buf[*pos..*pos + m]);
                *pos += m;
                n += m;
            }
            n
        })
    }

    /// `NamedPipe::recv_msg`: the next whole message (message read mode), or
    /// everything buffered (byte mode), into `out`.
    pub(crate) fn recv_msg<K: Kernel<Op = Op>>(
        &mut self,
        k: &mut K,
        out: &mut Vec<u8>,
    ) -> io::Result<usize> {
        out.clear();
        self.take_read(k, |buf, pos| {
            if *pos == 0 {
                // Hand the buffer itself over; the caller's (empty) one is
                // recycled for the next read.
                mem::swap(buf, out);
            } else {
                out.extend_from_slice(&buf[*pos..]);
            }
            *pos = buf.len();
            out.len()
        })
    }

    /// The common part of `read` and `recv_msg`: `copy` takes bytes out of
    /// the ready buffer and advances its position.
    fn take_read<K: Kernel<Op = Op>>(
        &mut self,
        k: &mut K,
        mut copy: impl FnMut(&mut Vec<u8>, &mut usize) -> usize,
    ) -> io::Result<usize> {
        if !self.registered || self.closed {
            return Err(would_block());
        }
        self.read_ahead = true;
        if matches!(self.read, ReadState::Idle) {
            self.kick_read(k);
        }
        match mem::replace(&mut self.read, ReadState::Idle) {
            ReadState::Ready { mut buf, mut pos } => {
                let n = copy(&mut buf, &mut pos);
                if pos < buf.len() {
                    self.read = ReadState::Ready { buf, pos };
                } else {
                    self.recycle_read(buf);
                    self.kick_read(k);
                }
                Ok(n)
            }
            ReadState::Eof => {
                self.read = ReadState::Eof;
                Ok(0)
            }
            ReadState::Failed(e) => {
                self.kick_read(k);
                Err(e)
            }
            other => {
                self.read = other;
                Err(would_block())
            }
        }
    }

    // ------------------------------------------------------------ write

    /// `Write::write`. Byte mode: accepts what fits, coalescing while a write
    /// is in flight. Message mode: accepts the whole buffer as one message
    /// (an empty one too), or nothing.
    pub(crate) fn write<K: Kernel<Op = Op>>(&mut self, k: &mut K, src: &[u8]) -> io::Result<usize> {
        if !self.registered || self.closed {
            return Err(would_block());
        }
        if let Some(e) = self.write.error.take() {
            return Err(e);
        }
        // On a byte pipe an empty write sends nothing. On a message pipe it
        // is an empty message, which some peers read as the end of a stream.
        if src.is_empty() && !self.framing.message_writes {
            return Ok(0);
        }
        if self.framing.message_writes {
            check_message_write(src.len())?;
        }
        if !matches!(self.conn, Conn::Connected) {
            return Err(would_block());
        }
        if self.write.inflight.is_some() {
            if !self.queue_room(src.len()) {
                return Err(would_block());
            }
            if self.framing.message_writes {
                self.write.messages.push_back(src.to_vec());
                self.write.message_bytes += src.len();
                return Ok(src.len());
            }
            let room = self.queue_cap() - self.write.queue.len();
            let n = src.len().min(room);
            if self.queue_grant.is_some()
                && self.write.queue.capacity() - self.write.queue.len() < n
            {
                // A grown queue takes its whole size at once: neither a
                // copy per doubling nor room beyond what was granted.
                self.write.queue.reserve_exact(room);
            }
            self.write.queue.extend_from_slice(&src[..n]);
            return Ok(n);
        }
        // Nothing in flight: write now. A failure that happens at once is
        // reported here, and nothing counts as accepted. A byte-mode write
        // takes at most `write_queue` bytes, so one call never copies an
        // unbounded buffer.
        let src = if self.framing.message_writes {
            src
        } else {
            &src[..src.len().min(self.queue_cap())]
        };
        let mut buf = mem::take(&mut self.write.spare);
        buf.clear();
        buf.extend_from_slice(src);
        match k.start_write(buf) {
            Start::Pending(op) => {
                self.write.inflight = Some(op);
                Ok(src.len())
            }
            Start::Done(buf, outcome) => match verdict(OpKind::Write, outcome.error.as_ref()) {
                Verdict::Done => {
                    if let Some(next) = self.finish_write(k, buf, outcome) {
                        self.send(k, next);
                    }
                    Ok(src.len())
                }
                Verdict::Listening => {
                    self.reset_under_us(k);
                    Err(would_block())
                }
                _ => Err(user_error(
                    outcome.error.unwrap_or_else(|| other_error("write failed")),
                )),
            },
        }
    }

    /// Issues `buf` and, while writes finish at once, whatever was queued behind it.
    fn send<K: Kernel<Op = Op>>(&mut self, k: &mut K, mut buf: Vec<u8>) {
        loop {
            match k.start_write(buf) {
                Start::Pending(op) => {
                    self.write.inflight = Some(op);
                    return;
                }
                Start::Done(b, outcome) => match self.finish_write(k, b, outcome) {
                    Some(next) => buf = next,
                    None => return,
                },
            }
        }
    }

    /// Takes in a write's outcome; returns the next buffer to write, if any.
    fn finish_write<K: Kernel<Op = Op>>(
        &mut self,
        k: &mut K,
        mut buf: Vec<u8>,
        outcome: Outcome,
    ) -> Option<Vec<u8>> {
        self.write.inflight = None;
        let v = verdict(OpKind::Write, outcome.error.as_ref());
        if v == Verdict::Listening {
            self.reset_under_us(k);
        }
        if v != Verdict::Done {
            // Accepted data can no longer be delivered: report the error on
            // the next write, and drop what was queued behind it.
            self.fail_writes(
                k,
                outcome.error.unwrap_or_else(|| other_error("write failed")),
            );
            return None;
        }
        let written = outcome.bytes.min(buf.len());
        if written == 0 && !buf.is_empty() {
            // A write that succeeds moving nothing would be re-sent forever.
            let e = io::Error::new(
                io::ErrorKind::WriteZero,
                "the pipe accepted no byte of a write",
            );
            self.fail_writes(k, e);
            return None;
        }
        if written < buf.len() {
            if self.framing.message_writes {
                let e = io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the pipe accepted only part of a message",
                );
                self.fail_writes(k, e);
                return None;
            }
            // Send the rest first, then everything queued behind it.
            buf.drain(..written);
            buf.extend_from_slice(&self.write.queue);
            self.write.queue.clear();
            return Some(buf);
        }
        if self.framing.message_writes {
            self.keep_write_buffer(buf);
            if let Some(m) = self.write.messages.pop_front() {
                self.write.message_bytes -= m.len();
                return Some(m);
            }
        } else if !self.write.queue.is_empty() {
            buf.clear();
            return Some(mem::replace(&mut self.write.queue, buf));
        } else {
            self.keep_write_buffer(buf);
        }
        // Everything accepted is written.
        self.shrink_queue();
        if self.write.queue.capacity() > KEEP_WRITE_BUFFER {
            self.write.queue = Vec::new();
        }
        self.write.flush_waiting = false;
        self.close_if_done(k);
        None
    }

    fn keep_write_buffer(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= KEEP_WRITE_BUFFER && buf.capacity() > self.write.spare.capacity() {
            buf.clear();
            self.write.spare = buf;
        }
    }

    /// A read or write of a connected pipe reported `ERROR_PIPE_LISTENING`:
    /// the pipe was reset under the engine (another handle disconnected
    /// it), and the client is gone. The other operation in flight belongs
    /// to that client: it is cancelled and no longer tracked, so that its
    /// late failure cannot end the next client's connection; what was
    /// accepted for writing fails, and the next `connect` serves a new
    /// client. What the old client sent and the user has not read goes
    /// too (data read ahead, half a message, a message being drained, a
    /// read error): Windows discarded the rest of it in the pipe, and
    /// nothing of one client may reach the user as the next one's. A
    /// report while listening changes nothing; a late one from an
    /// operation cancelled here never gets this far, as the engine no
    /// longer tracks it.
    fn reset_under_us<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        if !matches!(self.conn, Conn::Connected) {
            return;
        }
        self.conn = Conn::Listening;
        #[cfg(test)]
        {
            self.resets += 1;
        }
        let undelivered = !self.write.idle();
        match mem::replace(&mut self.read, ReadState::Idle) {
            ReadState::Pending(op) => k.cancel(&op),
            ReadState::Ready { buf, .. } => self.recycle_read(buf),
            ReadState::Idle | ReadState::Eof | ReadState::Failed(_) => {}
        }
        self.partial_message = None;
        self.skipping = None;
        self.streaming = false;
        if let Some(op) = self.write.inflight.take() {
            k.cancel(&op);
        }
        if undelivered {
            self.fail_writes(k, io::Error::from_raw_os_error(ERROR_PIPE_LISTENING));
        }
    }

    fn fail_writes<K: Kernel<Op = Op>>(&mut self, k: &mut K, e: io::Error) {
        self.write.discard();
        self.shrink_queue();
        self.write.flush_waiting = false;
        self.write.error = Some(user_error(e));
        self.close_if_done(k);
    }

    /// `Write::flush`: `Ok` once every accepted byte was handed to the pipe;
    /// `WouldBlock` until then, with a writable event when it happens.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.write.error.take() {
            return Err(e);
        }
        if self.write.idle() {
            return Ok(());
        }
        self.write.flush_waiting = true;
        Err(would_block())
    }

    // ------------------------------------------------------------ completion, drop

    /// An operation finished: `buf` is its buffer back (`None` for connects).
    pub(crate) fn complete<K: Kernel<Op = Op>>(
        &mut self,
        k: &mut K,
        op: &Op,
        buf: Option<Vec<u8>>,
        outcome: Outcome,
    ) {
        if matches!(&self.conn, Conn::Connecting(c) if c == op) {
            self.conn = Conn::Listening;
            self.on_connect(k, outcome);
        } else if matches!(&self.read, ReadState::Pending(r) if r == op) {
            self.read = ReadState::Idle;
            let buf = buf.unwrap_or_default();
            if let Some(next) = self.on_read(k, buf, outcome) {
                if self.may_read() {
                    self.read_into(k, next);
                }
            }
        } else if self.write.inflight.as_ref() == Some(op) {
            if let Some(next) = self.finish_write(k, buf.unwrap_or_default(), outcome) {
                self.send(k, next);
            }
        }
        // Anything else is an operation that was forgotten (cancelled by a
        // disconnect or a drop): its outcome belongs to no one.
    }

    /// The user's `NamedPipe` was dropped: cancel reads and connects, keep
    /// writes going until every accepted byte is written, then close.
    pub(crate) fn drop_pipe<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        if self.closed {
            return;
        }
        self.dropped = true;
        if let Conn::Connecting(op) = mem::replace(&mut self.conn, Conn::Listening) {
            k.cancel(&op);
        }
        // Nothing is read any more: data read ahead goes now, not at the
        // end of the linger.
        if let ReadState::Pending(op) = mem::replace(&mut self.read, ReadState::Idle) {
            k.cancel(&op);
        }
        self.spare_read = Vec::new();
        self.read_grant = None;
        self.partial_message = None;
        self.skipping = None;
        self.close_if_done(k);
    }

    fn close_if_done<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        if self.dropped && !self.closed && self.write.inflight.is_none() {
            self.close(k);
        }
    }

    /// Closes the handle of a dropped pipe, and frees every buffer the
    /// engine holds: nothing of a closed pipe outlives it but the small
    /// state of operations the kernel has not handed back yet.
    fn close<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        self.write.discard();
        self.write.queue = Vec::new();
        self.write.spare = Vec::new();
        self.spare_read = Vec::new();
        self.partial_message = None;
        self.skipping = None;
        self.read = ReadState::Idle;
        self.read_grant = None;
        self.queue_grant = None;
        self.closed = true;
        k.close();
    }

    /// Whether the user's pipe was dropped and the handle is still open:
    /// a write accepted before the drop is still being delivered (the
    /// linger). Whoever holds the pipe then must call
    /// [`linger_expired`](Engine::linger_expired) once the linger limit has passed.
    pub(crate) fn lingering(&self) -> bool {
        self.dropped && !self.closed
    }

    /// The linger limit of a dropped pipe has passed: the write still in
    /// flight is cancelled (its completion, if the Poll ever dequeues it,
    /// belongs to no one), what was queued behind it is dropped, and the
    /// handle is closed. The peer reads what was delivered so far, then end
    /// of file. Does nothing unless [`lingering`](Engine::lingering).
    pub(crate) fn linger_expired<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        if !self.lingering() {
            return;
        }
        if let Some(op) = self.write.inflight.take() {
            k.cancel(&op);
        }
        self.close(k);
    }

    /// Whether `op` is an operation the engine still waits for. Every other
    /// operation still with the kernel was forgotten (cancelled by a drop,
    /// a disconnect or the linger's end): its outcome and buffer belong to
    /// no one, so once the kernel is done with it its buffer may be freed
    /// by whoever finds it done first.
    pub(crate) fn tracks(&self, op: &Op) -> bool {
        matches!(&self.conn, Conn::Connecting(c) if c == op)
            || matches!(&self.read, ReadState::Pending(r) if r == op)
            || self.write.inflight.as_ref() == Some(op)
    }

    /// `IntoRawHandle`: cancels everything in flight and gives the handle up
    /// without closing it.
    pub(crate) fn release<K: Kernel<Op = Op>>(&mut self, k: &mut K) {
        if self.closed {
            return;
        }
        self.forget_ops(k);
        self.write.discard();
        self.read_grant = None;
        self.queue_grant = None;
        self.closed = true;
        self.dropped = true;
    }
}
