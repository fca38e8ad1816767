//! Relays one pipe connection to the other side: a byte stream read and
//! written by threads (stdio, a child process, a TCP connection).
//!
//! The pipe is driven by its own mio `Poll` on the calling thread. The
//! other side is served by two threads that block: one reads it in chunks
//! and hands them over through a bounded channel, one writes what the pipe
//! delivered. Each wakes the Poll through a `Registration` when it handed
//! something over or made room, so the loop never spins and a slow side
//! holds back only its own direction: at most `CHANNEL` chunks wait in each.

use std::io::{self, Read, Write};
use std::mem;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::{Events, Poll, PollOpt, Ready, Registration, SetReadiness, Token};
use mio_named_pipes::NamedPipe;

/// Bytes one read of the other side takes at most.
const CHUNK: usize = 256 * 1024;
/// Chunks that may wait in each direction's channel.
const CHANNEL: usize = 4;

const PIPE: Token = Token(0);
const FROM_OTHER: Token = Token(1);
const ROOM: Token = Token(2);

/// Wakes the relay loop of whichever connection the thread serves now.
#[derive(Clone, Default)]
struct Waker(Arc<Mutex<Option<SetReadiness>>>);

impl Waker {
    fn wake(&self) {
        if let Some(s) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = s.set_readiness(Ready::readable());
        }
    }

    fn set(&self, s: Option<SetReadiness>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

/// What the reading thread hands over.
enum Chunk {
    Data(Vec<u8>),
    End,
    Failed(io::Error),
}

/// The other side's data, read by a thread of its own. It outlives a
/// connection when it is this process's stdin (listen mode, `--stdio`).
pub struct Incoming {
    rx: Receiver<Chunk>,
    waker: Waker,
    /// The end (or failure) was handed over: nothing more will come.
    ended: bool,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("ended", &self.ended)
            .finish()
    }
}

impl Incoming {
    /// Whether the other side's stream has ended.
    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// Starts a thread reading `r` until its end.
pub fn incoming(mut r: impl Read + Send + 'static) -> Incoming {
    let (tx, rx) = mpsc::sync_channel(CHANNEL);
    let waker = Waker::default();
    let w = waker.clone();
    thread::spawn(move || loop {
        let mut buf = vec![0u8; CHUNK];
        let chunk = match r.read(&mut buf) {
            Ok(0) => Chunk::End,
            Ok(n) => {
                buf.truncate(n);
                Chunk::Data(buf)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A pipe (stdin, a child's stdout) whose writer went away.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Chunk::End,
            Err(e) => Chunk::Failed(e),
        };
        let last = !matches!(chunk, Chunk::Data(_));
        if tx.send(chunk).is_err() {
            return;
        }
        w.wake();
        if last {
            return;
        }
    });
    Incoming {
        rx,
        waker,
        ended: false,
    }
}

/// Where the pipe's data goes: a thread writing to the other side.
pub struct Outgoing {
    tx: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    waker: Waker,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("open", &self.tx.is_some())
            .finish()
    }
}

/// Starts a thread writing to `w`; dropping `w` at the end is how the
/// other side learns the pipe has ended (a child's stdin closes, a TCP
/// connection is shut down for writing).
pub fn outgoing(mut w: impl Write + Send + 'static) -> Outgoing {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(CHANNEL);
    let waker = Waker::default();
    let room = waker.clone();
    let thread = thread::spawn(move || {
        let result = (|| {
            for chunk in rx.iter() {
                room.wake();
                w.write_all(&chunk)?;
                w.flush()?;
            }
            Ok(())
        })();
        // Wake the loop that waits for room, if the writer failed.
        room.wake();
        result
    });
    Outgoing {
        tx: Some(tx),
        thread: Some(thread),
        waker,
    }
}

impl Outgoing {
    /// No more data: waits until everything handed over is written.
    fn finish(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the writing thread panicked")),
            None => Ok(()),
        }
    }
}

/// Which side of a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The named pipe.
    Pipe,
    /// Reading the other side (stdin, a TCP connection, a child's output).
    Reading,
    /// Writing the other side (stdout, a TCP connection, a child's input).
    Writing,
}

/// A connection that ended in a failure: where, and what.
#[derive(Debug)]
pub struct Failed {
    /// The side that failed.
    pub side: Side,
    /// The error.
    pub error: io::Error,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = match self.side {
            Side::Pipe => "the pipe",
            Side::Reading => "reading the other side",
            Side::Writing => "writing the other side",
        };
        write!(f, "{side}: {}", self.error)
    }
}

fn on(side: Side) -> impl FnOnce(io::Error) -> Failed {
    move |error| Failed { side, error }
}

/// What ends a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// On the other side's end of stream: `false` keeps relaying the pipe
    /// to the other side, `true` writes what is pending to the pipe and
    /// ends the connection.
    pub close_on_other_end: bool,
    /// On the other side's end of stream, send a zero-byte message first.
    pub zero_message_on_other_end: bool,
    /// On the pipe's end of stream (its close, or a zero-byte message),
    /// close the other side's writer and keep sending the other side to the
    /// pipe until it ends (dropped if the pipe is gone), instead of ending
    /// at once.
    pub drain_other_on_pipe_end: bool,
    /// End the connection after this long with nothing moving either way.
    pub idle_timeout: Option<Duration>,
}

/// Bytes moved by one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// From the other side into the pipe.
    pub to_pipe: u64,
    /// From the pipe to the other side.
    pub from_pipe: u64,
    /// The connection ended because nothing moved for the idle timeout.
    pub idle: bool,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Relays `pipe` to the other side until the connection ends as `policy`
/// says. Errors of either side end the connection and are returned, with
/// the side; the pipe itself is left to the caller (dropping it closes it).
/// A zero-byte message from the pipe's peer is the end of its stream.
pub fn relay(
    pipe: &NamedPipe,
    from: &mut Incoming,
    mut to: Outgoing,
    policy: Policy,
) -> Result<Totals, Failed> {
    pipe.set_report_empty_messages(true);
    let poll = Poll::new().map_err(on(Side::Pipe))?;
    poll.register(
        pipe,
        PIPE,
        Ready::readable() | Ready::writable(),
        PollOpt::edge(),
    )
    .map_err(on(Side::Pipe))?;
    let (from_reg, from_set) = Registration::new2();
    let (room_reg, room_set) = Registration::new2();
    poll.register(&from_reg, FROM_OTHER, Ready::readable(), PollOpt::edge())
        .map_err(on(Side::Pipe))?;
    poll.register(&room_reg, ROOM, Ready::readable(), PollOpt::edge())
        .map_err(on(Side::Pipe))?;
    from.waker.set(Some(from_set.clone()));
    to.waker.set(Some(room_set.clone()));
    let result = Loop {
        pipe,
        from,
        to: &mut to,
        policy,
        totals: Totals::default(),
        to_pipe: None,
        other_ended: false,
        end_sent: false,
        pipe_writes_failed: false,
        held: None,
        pipe_ended: false,
        buf: Vec::new(),
    }
    .run(&poll, &from_set, &room_set);
    from.waker.set(None);
    to.waker.set(None);
    // Whatever happened, the writing thread ends (it may still be flushing).
    let finished = to.finish();
    let totals = result?;
    finished.map(|()| totals).map_err(on(Side::Writing))
}

struct Loop<'a> {
    pipe: &'a NamedPipe,
    from: &'a mut Incoming,
    to: &'a mut Outgoing,
    policy: Policy,
    totals: Totals,
    /// A chunk of the other side being written to the pipe, and how much of it is.
    to_pipe: Option<(Vec<u8>, usize)>,
    /// The other side ended: nothing more to write to the pipe.
    other_ended: bool,
    /// The zero-byte message or the close of the other side's end was done.
    end_sent: bool,
    /// Writing to the pipe failed (its peer left); reading tells the rest.
    pipe_writes_failed: bool,
    /// A chunk of the pipe waiting for room in the writer's channel.
    held: Option<Vec<u8>>,
    /// The pipe reached its end of stream.
    pipe_ended: bool,
    buf: Vec<u8>,
}

/// What a round of work came to.
enum Round {
    /// Nothing more can happen until an event.
    Wait,
    /// Something moved: go round again.
    Again,
    /// The connection is over.
    Done,
}

impl Loop<'_> {
    fn run(
        mut self,
        poll: &Poll,
        from_set: &SetReadiness,
        room_set: &SetReadiness,
    ) -> Result<Totals, Failed> {
        let mut events = Events::with_capacity(8);
        let mut last_moved = Instant::now();
        loop {
            // Clear the wake-ups before looking, so one that comes while
            // looking is a new edge.
            let _ = from_set.set_readiness(Ready::empty());
            let _ = room_set.set_readiness(Ready::empty());
            let a = self.other_to_pipe()?;
            if matches!(a, Round::Done) && !self.pipe_ended {
                // Closing at the other side's end: what the pipe's peer
                // sent before still goes out. Completions already queued
                // are taken in, and the pipe read until it would block.
                poll.poll(&mut events, Some(Duration::ZERO))
                    .map_err(on(Side::Pipe))?;
                self.drain_pipe();
                return Ok(self.totals);
            }
            let b = self.pipe_to_other()?;
            match (a, b) {
                (_, Round::Done) | (Round::Done, _) => return Ok(self.totals),
                (Round::Again, _) | (_, Round::Again) => last_moved = Instant::now(),
                (Round::Wait, Round::Wait) => {
                    let wait = self
                        .policy
                        .idle_timeout
                        .map(|t| t.saturating_sub(last_moved.elapsed()));
                    if wait == Some(Duration::ZERO) {
                        self.totals.idle = true;
                        return Ok(self.totals);
                    }
                    poll.poll(&mut events, wait).map_err(on(Side::Pipe))?;
                }
            }
        }
    }

    /// The other side's chunks into the pipe.
    fn other_to_pipe(&mut self) -> Result<Round, Failed> {
        let mut moved = false;
        loop {
            if self.pipe_writes_failed {
                // Nothing can reach the pipe: drop what comes, see its end.
                self.to_pipe = None;
            }
            if self.to_pipe.is_none() && !self.other_ended {
                match self.from.rx.try_recv() {
                    Ok(Chunk::Data(v)) if self.pipe_writes_failed => {
                        drop(v);
                        moved = true;
                        continue;
                    }
                    Ok(Chunk::Data(v)) => self.to_pipe = Some((v, 0)),
                    Ok(Chunk::End) | Err(TryRecvError::Disconnected) => {
                        self.other_ended = true;
                        self.from.ended = true;
                    }
                    Ok(Chunk::Failed(e)) => {
                        self.from.ended = true;
                        return Err(on(Side::Reading)(e));
                    }
                    Err(TryRecvError::Empty) => {}
                }
            }
            let Some((v, off)) = self.to_pipe.as_mut() else {
                break;
            };
            match (&*self.pipe).write(&v[*off..]) {
                Ok(n) => {
                    *off += n;
                    self.totals.to_pipe += n as u64;
                    moved = true;
                    if *off == v.len() {
                        self.to_pipe = None;
                    }
                }
                Err(e) if would_block(&e) => return Ok(Round::Wait),
                Err(_) => {
                    // The pipe's peer left: its end of stream follows.
                    self.pipe_writes_failed = true;
                    self.to_pipe = None;
                }
            }
        }
        if self.other_ended && !self.end_sent && !self.pipe_writes_failed {
            if self.policy.zero_message_on_other_end {
                match (&*self.pipe).write(&[]) {
                    Ok(_) => {}
                    Err(e) if would_block(&e) => return Ok(Round::Wait),
                    Err(_) => self.pipe_writes_failed = true,
                }
            }
            if self.policy.close_on_other_end {
                match (&*self.pipe).flush() {
                    Ok(()) => return Ok(Round::Done),
                    Err(e) if would_block(&e) => return Ok(Round::Wait),
                    Err(e) => return Err(on(Side::Pipe)(e)),
                }
            }
            self.end_sent = true;
            moved = true;
        }
        if self.other_ended && self.policy.close_on_other_end {
            return Ok(Round::Done);
        }
        Ok(if moved { Round::Again } else { Round::Wait })
    }

    /// Hands the writer everything the pipe has now, waiting for room.
    fn drain_pipe(&mut self) {
        let Some(tx) = self.to.tx.as_ref() else {
            return;
        };
        loop {
            let chunk = match self.held.take() {
                Some(v) => v,
                None => match self.pipe.recv_msg(&mut self.buf) {
                    Ok(n) if n > 0 => mem::take(&mut self.buf),
                    _ => return,
                },
            };
            let n = chunk.len() as u64;
            if tx.send(chunk).is_err() {
                return;
            }
            self.totals.from_pipe += n;
        }
    }

    /// The other side has ended and everything it sent is dealt with.
    fn other_done(&self) -> bool {
        self.other_ended && self.to_pipe.is_none() && (self.end_sent || self.pipe_writes_failed)
    }

    /// The pipe's data to the other side's writer.
    fn pipe_to_other(&mut self) -> Result<Round, Failed> {
        let mut moved = false;
        loop {
            if let Some(v) = self.held.take() {
                let Some(tx) = self.to.tx.as_ref() else {
                    return Ok(Round::Done);
                };
                let n = v.len() as u64;
                match tx.try_send(v) {
                    Ok(()) => {
                        self.totals.from_pipe += n;
                        moved = true;
                    }
                    Err(TrySendError::Full(v)) => {
                        self.held = Some(v);
                        return Ok(Round::Wait);
                    }
                    // The writer failed: the connection is over.
                    Err(TrySendError::Disconnected(_)) => {
                        return self
                            .to
                            .finish()
                            .map(|()| Round::Done)
                            .map_err(on(Side::Writing))
                    }
                }
            }
            if self.pipe_ended {
                break;
            }
            match self.pipe.recv_msg(&mut self.buf) {
                // The end of file, or a zero-byte message: the end of the
                // pipe's stream, which may still take what we send.
                Ok(0) => self.pipe_ended = true,
                Ok(_) => self.held = Some(mem::take(&mut self.buf)),
                Err(e) if would_block(&e) => break,
                // A read error ends the pipe's stream as an end of file would.
                Err(_) => self.pipe_ended = true,
            }
        }
        if self.pipe_ended {
            // Everything of the pipe is with the writer: let it finish, so
            // the other side has it all, and learns of the end.
            self.to.finish().map_err(on(Side::Writing))?;
            if !self.policy.drain_other_on_pipe_end {
                return Ok(Round::Done);
            }
            if self.other_done() {
                // What the other side sent reaches the pipe before the end
                // (the process may exit at once after).
                return match (&*self.pipe).flush() {
                    Err(e) if would_block(&e) => Ok(Round::Wait),
                    _ => Ok(Round::Done),
                };
            }
            // Sending the other side to the pipe until it ends: if the pipe
            // is gone, its writes fail and `other_to_pipe` drops the rest.
        }
        Ok(if moved { Round::Again } else { Round::Wait })
    }
}
