//! The event-loop peers (ours and the old crate on mio 0.6, mio 1.x) behind
//! one small trait, and the three workloads written once for all of them, so
//! every event-loop peer is driven by exactly the same code.
//!
//! Each end lives on its own thread with its own Poll. Pipes are registered
//! edge-triggered for both directions; a thread reads (or writes) until
//! `WouldBlock`, and only then polls.

use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::windows::io::{FromRawHandle, RawHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::{join, overlapped_client, pipe_name, stream, Ctx, Sizes, Verifier, STALL};

/// An event-loop peer: a pipe type and the Poll it registers with.
pub trait Peer: 'static {
    type Pipe: Send + 'static;
    type Loop;

    fn server(name: &str) -> io::Result<Self::Pipe>;
    /// # Safety
    /// `h` is an overlapped pipe handle owned by nothing else.
    unsafe fn adopt(h: RawHandle) -> Self::Pipe;
    fn new_loop(capacity: usize) -> Self::Loop;
    /// Registers for readable and writable, edge-triggered.
    fn register(lp: &Self::Loop, pipe: &mut Self::Pipe, token: usize);
    /// Polls once; pushes the tokens of the events onto `ready`, returns how many.
    fn poll(lp: &mut Self::Loop, ready: &mut Vec<usize>, timeout: Duration) -> usize;
    fn connect(pipe: &Self::Pipe) -> io::Result<()>;
    fn read(pipe: &Self::Pipe, buf: &mut [u8]) -> io::Result<usize>;
    fn write(pipe: &Self::Pipe, buf: &[u8]) -> io::Result<usize>;
}

// ---------------------------------------------------------------- mio 0.6

/// The mio 0.6 pipe API that this crate shares with the old one.
pub trait Pipe06: mio06::Evented + Send + Sized + 'static {
    fn server(name: &str) -> io::Result<Self>;
    /// # Safety
    /// As [`Peer::adopt`].
    unsafe fn adopt(h: RawHandle) -> Self;
    fn connect(&self) -> io::Result<()>;
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
}

impl Pipe06 for mio_named_pipes::NamedPipe {
    fn server(name: &str) -> io::Result<Self> {
        Self::new(name)
    }
    unsafe fn adopt(h: RawHandle) -> Self {
        // SAFETY: per the caller's contract.
        unsafe { Self::from_raw_handle(h) }
    }
    fn connect(&self) -> io::Result<()> {
        mio_named_pipes::NamedPipe::connect(self)
    }
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }
}

impl Pipe06 for old::NamedPipe {
    fn server(name: &str) -> io::Result<Self> {
        Self::new(name)
    }
    unsafe fn adopt(h: RawHandle) -> Self {
        // SAFETY: per the caller's contract.
        unsafe { Self::from_raw_handle(h) }
    }
    fn connect(&self) -> io::Result<()> {
        old::NamedPipe::connect(self)
    }
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }
}

/// A mio 0.6 peer.
pub struct Mio06<P>(PhantomData<P>);

pub struct Loop06 {
    poll: mio06::Poll,
    events: mio06::Events,
}

impl<P: Pipe06> Peer for Mio06<P> {
    type Pipe = P;
    type Loop = Loop06;

    fn server(name: &str) -> io::Result<P> {
        P::server(name)
    }
    unsafe fn adopt(h: RawHandle) -> P {
        // SAFETY: per the caller's contract.
        unsafe { P::adopt(h) }
    }
    fn new_loop(capacity: usize) -> Loop06 {
        Loop06 {
            poll: mio06::Poll::new().expect("mio 0.6 Poll::new"),
            events: mio06::Events::with_capacity(capacity),
        }
    }
    fn register(lp: &Loop06, pipe: &mut P, token: usize) {
        lp.poll
            .register(
                &*pipe,
                mio06::Token(token),
                mio06::Ready::readable() | mio06::Ready::writable(),
                mio06::PollOpt::edge(),
            )
            .expect("register");
    }
    fn poll(lp: &mut Loop06, ready: &mut Vec<usize>, timeout: Duration) -> usize {
        let n = lp.poll.poll(&mut lp.events, Some(timeout)).expect("poll");
        ready.extend(lp.events.iter().map(|e| e.token().0));
        n
    }
    fn connect(pipe: &P) -> io::Result<()> {
        pipe.connect()
    }
    fn read(pipe: &P, buf: &mut [u8]) -> io::Result<usize> {
        pipe.read(buf)
    }
    fn write(pipe: &P, buf: &[u8]) -> io::Result<usize> {
        pipe.write(buf)
    }
}

/// This crate.
pub type Ours = Mio06<mio_named_pipes::NamedPipe>;
/// mio-named-pipes 0.1.7.
pub type Old = Mio06<old::NamedPipe>;

// ---------------------------------------------------------------- mio 1.x

/// `mio::windows::NamedPipe` of mio 1.x.
pub struct Mio1;

pub struct Loop1 {
    poll: mio1::Poll,
    events: mio1::Events,
}

impl Peer for Mio1 {
    type Pipe = mio1::windows::NamedPipe;
    type Loop = Loop1;

    fn server(name: &str) -> io::Result<Self::Pipe> {
        mio1::windows::NamedPipe::new(name)
    }
    unsafe fn adopt(h: RawHandle) -> Self::Pipe {
        // SAFETY: per the caller's contract.
        unsafe { mio1::windows::NamedPipe::from_raw_handle(h) }
    }
    fn new_loop(capacity: usize) -> Loop1 {
        Loop1 {
            poll: mio1::Poll::new().expect("mio 1 Poll::new"),
            events: mio1::Events::with_capacity(capacity),
        }
    }
    fn register(lp: &Loop1, pipe: &mut Self::Pipe, token: usize) {
        lp.poll
            .registry()
            .register(
                pipe,
                mio1::Token(token),
                mio1::Interest::READABLE | mio1::Interest::WRITABLE,
            )
            .expect("register");
    }
    fn poll(lp: &mut Loop1, ready: &mut Vec<usize>, timeout: Duration) -> usize {
        lp.poll.poll(&mut lp.events, Some(timeout)).expect("poll");
        let before = ready.len();
        ready.extend(lp.events.iter().map(|e| e.token().0));
        ready.len() - before
    }
    fn connect(pipe: &Self::Pipe) -> io::Result<()> {
        pipe.connect()
    }
    fn read(mut pipe: &Self::Pipe, buf: &mut [u8]) -> io::Result<usize> {
        pipe.read(buf)
    }
    fn write(mut pipe: &Self::Pipe, buf: &[u8]) -> io::Result<usize> {
        pipe.write(buf)
    }
}

// ---------------------------------------------------------------- one end

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// One thread's Poll, with the tokens its last poll reported.
struct End<P: Peer> {
    lp: P::Loop,
    ready: Vec<usize>,
    ctx: &'static Ctx,
}

impl<P: Peer> End<P> {
    fn new(ctx: &'static Ctx, capacity: usize) -> Self {
        End {
            lp: P::new_loop(capacity),
            ready: Vec::with_capacity(capacity),
            ctx,
        }
    }

    /// Waits for events because something would block; replaces `ready`.
    fn wait(&mut self) {
        self.ctx.check();
        self.ready.clear();
        let t = Instant::now();
        // A poll may return early with no event (an internal completion, say);
        // only a full timeout with nothing is a stall.
        if P::poll(&mut self.lp, &mut self.ready, STALL) == 0 {
            if t.elapsed() >= STALL {
                self.ctx.stall();
            } else {
                self.ctx.empty_wakeup();
            }
        }
    }

    /// Connects the server instances among `pipes` (setup, not timed).
    fn connect_all(&mut self, pipes: &[P::Pipe]) {
        let mut pending: Vec<usize> = (0..pipes.len()).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            pending.retain(|&i| match P::connect(&pipes[i]) {
                Ok(()) => false,
                Err(e) if would_block(&e) => true,
                Err(e) => panic!("connect: {e}"),
            });
            if pending.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} server instances still not connected after 60 s",
                pending.len(),
                pipes.len()
            );
            self.ctx.check();
            self.ready.clear();
            P::poll(&mut self.lp, &mut self.ready, Duration::from_millis(100));
        }
    }

    /// Writes all of `buf`.
    fn write_all(&mut self, pipe: &P::Pipe, buf: &[u8]) {
        let mut off = 0;
        while off < buf.len() {
            match P::write(pipe, &buf[off..]) {
                Ok(0) => panic!("write returned 0"),
                Ok(n) => off += n,
                Err(e) if would_block(&e) => self.wait(),
                Err(e) => panic!("write: {e}"),
            }
        }
        self.ctx.add_sent(buf.len());
    }

    /// Reads exactly `buf.len()` bytes.
    fn read_exact(&mut self, pipe: &P::Pipe, buf: &mut [u8]) {
        let mut off = 0;
        while off < buf.len() {
            match P::read(pipe, &mut buf[off..]) {
                Ok(0) => panic!("unexpected end of file after {off} of {} bytes", buf.len()),
                Ok(n) => off += n,
                Err(e) if would_block(&e) => self.wait(),
                Err(e) => panic!("read: {e}"),
            }
        }
        self.ctx.add_received(buf.len());
    }

    /// Keeps the loop turning, so writes already accepted complete, until `done`.
    fn drive_until(&mut self, done: &AtomicBool) {
        while !done.load(Ordering::Acquire) {
            self.ctx.check();
            self.ready.clear();
            P::poll(&mut self.lp, &mut self.ready, Duration::from_millis(5));
        }
    }
}

// ---------------------------------------------------------------- workloads

/// Bulk: `s.bulk` bytes from client to server in `s.chunk` writes.
/// Returns the reader's seconds from start to the last byte.
pub fn bulk<P: Peer>(ctx: &'static Ctx, tag: &str, s: Sizes) -> f64 {
    let name = pipe_name(tag);
    let mut server = P::server(&name).expect("creating the server");
    let start = Arc::new(Barrier::new(2));
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let (start, done) = (start.clone(), done.clone());
        ctx.spawn(format!("{tag}-bulk-reader"), move || {
            let mut end = End::<P>::new(ctx, 16);
            P::register(&end.lp, &mut server, 0);
            end.connect_all(std::slice::from_ref(&server));
            let mut check = Verifier::new(s.bulk, "bulk reader");
            let mut buf = vec![0u8; s.read_buf];
            start.wait();
            let t = Instant::now();
            while !check.done() {
                match P::read(&server, &mut buf) {
                    Ok(0) => check.eof(),
                    Ok(n) => {
                        check.take(&buf[..n]);
                        ctx.add_received(n);
                    }
                    Err(e) if would_block(&e) => end.wait(),
                    Err(e) => panic!("read after {} bytes: {e}", check.got()),
                }
            }
            let secs = t.elapsed().as_secs_f64();
            done.store(true, Ordering::Release);
            secs
        })
    };
    let writer = ctx.spawn(format!("{tag}-bulk-writer"), move || {
        let mut end = End::<P>::new(ctx, 16);
        // SAFETY: a fresh overlapped handle.
        let mut client = unsafe { P::adopt(overlapped_client(&name)) };
        P::register(&end.lp, &mut client, 0);
        start.wait();
        let mut off = 0;
        while off < s.bulk {
            let n = s.chunk.min(s.bulk - off);
            end.write_all(&client, stream(off, n));
            off += n;
        }
        end.drive_until(&done);
    });
    let secs = join(reader);
    join(writer);
    secs
}

/// Ping-pong: the client sends `s.msg` bytes, the server echoes them, the
/// client waits for all of them before the next round. Returns the client's
/// seconds for the `s.rounds` timed rounds.
pub fn ping_pong<P: Peer>(ctx: &'static Ctx, tag: &str, s: Sizes) -> f64 {
    let name = pipe_name(tag);
    let mut server = P::server(&name).expect("creating the server");
    let start = Arc::new(Barrier::new(2));
    let done = Arc::new(AtomicBool::new(false));
    let total = s.warmup + s.rounds;

    let echo = {
        let (start, done) = (start.clone(), done.clone());
        ctx.spawn(format!("{tag}-ping-echo"), move || {
            let mut end = End::<P>::new(ctx, 16);
            P::register(&end.lp, &mut server, 0);
            end.connect_all(std::slice::from_ref(&server));
            let mut buf = vec![0u8; s.msg];
            start.wait();
            for _ in 0..total {
                end.read_exact(&server, &mut buf);
                end.write_all(&server, &buf);
            }
            // The last echo may still be on its way out.
            end.drive_until(&done);
        })
    };
    let client = ctx.spawn(format!("{tag}-ping-client"), move || {
        let mut end = End::<P>::new(ctx, 16);
        // SAFETY: a fresh overlapped handle.
        let mut client = unsafe { P::adopt(overlapped_client(&name)) };
        P::register(&end.lp, &mut client, 0);
        let mut back = vec![0u8; s.msg];
        start.wait();
        let mut t = Instant::now();
        for r in 0..total {
            if r == s.warmup {
                t = Instant::now();
            }
            let msg = stream(r * s.msg, s.msg);
            end.write_all(&client, msg);
            end.read_exact(&client, &mut back);
            assert!(back == msg, "round {r}: the echo differs from the message");
        }
        let secs = t.elapsed().as_secs_f64();
        done.store(true, Ordering::Release);
        secs
    });
    let secs = join(client);
    join(echo);
    secs
}

/// Many: `s.pipes` pipes, `s.per_pipe` bytes through each, client to server.
/// All server instances are in one Poll on the reading thread; all clients
/// in one Poll on the writing thread. Returns the reader's seconds from
/// start to the last byte of the last pipe.
pub fn many<P: Peer>(ctx: &'static Ctx, tag: &str, s: Sizes) -> f64 {
    let names: Vec<String> = (0..s.pipes).map(|_| pipe_name(tag)).collect();
    let mut servers: Vec<P::Pipe> = names
        .iter()
        .map(|n| P::server(n).expect("creating a server"))
        .collect();
    let start = Arc::new(Barrier::new(2));
    let done = Arc::new(AtomicBool::new(false));
    let capacity = s.pipes.max(16) * 2;

    let reader = {
        let (start, done) = (start.clone(), done.clone());
        ctx.spawn(format!("{tag}-many-reader"), move || {
            let mut end = End::<P>::new(ctx, capacity);
            for (i, p) in servers.iter_mut().enumerate() {
                P::register(&end.lp, p, i);
            }
            end.connect_all(&servers);
            let mut checks: Vec<Verifier> = (0..servers.len())
                .map(|i| Verifier::new(s.per_pipe, format!("many reader, pipe {i}")))
                .collect();
            let mut buf = vec![0u8; s.read_buf];
            let mut left = servers.len();
            start.wait();
            let t = Instant::now();
            // At first every pipe may have something; then only those with an event.
            let mut ready: Vec<usize> = (0..servers.len()).collect();
            loop {
                for &i in &ready {
                    let check = &mut checks[i];
                    while !check.done() {
                        match P::read(&servers[i], &mut buf) {
                            Ok(0) => check.eof(),
                            Ok(n) => {
                                check.take(&buf[..n]);
                                ctx.add_received(n);
                                if check.done() {
                                    left -= 1;
                                }
                            }
                            Err(e) if would_block(&e) => break,
                            Err(e) => panic!("read, pipe {i}, after {} bytes: {e}", check.got()),
                        }
                    }
                }
                if left == 0 {
                    break;
                }
                end.wait();
                std::mem::swap(&mut ready, &mut end.ready);
            }
            let secs = t.elapsed().as_secs_f64();
            done.store(true, Ordering::Release);
            secs
        })
    };
    let writer = ctx.spawn(format!("{tag}-many-writer"), move || {
        let mut end = End::<P>::new(ctx, capacity);
        let clients: Vec<P::Pipe> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                // SAFETY: a fresh overlapped handle.
                let mut c = unsafe { P::adopt(overlapped_client(n)) };
                P::register(&end.lp, &mut c, i);
                c
            })
            .collect();
        let mut sent = vec![0usize; clients.len()];
        let mut left = clients.len();
        start.wait();
        let mut ready: Vec<usize> = (0..clients.len()).collect();
        loop {
            for &i in &ready {
                while sent[i] < s.per_pipe {
                    let n = s.chunk.min(s.per_pipe - sent[i]);
                    match P::write(&clients[i], stream(sent[i], n)) {
                        Ok(0) => panic!("write returned 0"),
                        Ok(k) => {
                            sent[i] += k;
                            ctx.add_sent(k);
                            if sent[i] == s.per_pipe {
                                left -= 1;
                            }
                        }
                        Err(e) if would_block(&e) => break,
                        Err(e) => panic!("write, pipe {i}, after {} bytes: {e}", sent[i]),
                    }
                }
            }
            if left == 0 {
                break;
            }
            end.wait();
            std::mem::swap(&mut ready, &mut end.ready);
        }
        end.drive_until(&done);
        drop(clients);
    });
    let secs = join(reader);
    join(writer);
    secs
}
