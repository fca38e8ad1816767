//! A pipe's shared state: the engine behind one lock, the Win32 calls it
//! asks for, and the readiness it reports to mio.

use std::fmt;
use std::io;
use std::os::windows::io::{AsRawHandle, IntoRawHandle, OwnedHandle, RawHandle};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mio::{Poll, Ready, SetReadiness, Token};
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Storage::FileSystem::SetFileCompletionNotificationModes;

use super::op::{self, Op, WeakOp};
use super::pipe;
use super::reaper::Visit;
use crate::engine::{Engine, Kernel, Outcome, Peek, Readiness, Start};

/// `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`: an operation that succeeds at
/// once queues no completion, so its result is used right away.
const SKIP_PORT_ON_SUCCESS: u8 = 1;
/// `FILE_SKIP_SET_EVENT_ON_HANDLE`: nobody waits on the handle itself.
const SKIP_SET_EVENT: u8 = 2;

/// What a `NamedPipe` and each of its operations in flight share.
///
/// Every operation holds the `Shared` until its completion is handed back,
/// so a `Shared` holds nothing that would keep a Poll alive once the user's
/// pipe is gone: the `SetReadiness` (which keeps the Poll's readiness queue
/// and so its completion port) is dropped with the pipe, and forgotten
/// operations are held weakly. A Poll dropped before its pipes therefore
/// closes its port; operations it never dequeued leak their small cells
/// only, their buffers being freed once the kernel is done with them
/// ([`Shared::forsake`], [`Shared::visit`]).
pub(crate) struct Shared {
    /// The handle's value, for calls that only name it. Closed (and no
    /// longer used) once the engine closed it.
    raw: usize,
    state: Mutex<State>,
}

struct State {
    engine: Engine<Op>,
    /// The handle; `None` once closed or given away.
    handle: Option<OwnedHandle>,
    /// The handle skips the completion port on immediate success.
    skip: bool,
    /// Set when a listener's Poll dequeues this handle's completions.
    driven: Option<Driven>,
    /// Where readiness goes; `None` once the user's pipe is dropped.
    readiness: Option<SetReadiness>,
    /// Operations the engine cancelled and forgot whose buffers may still
    /// be with the kernel: freed once the kernel is done with them.
    forgotten: Vec<WeakOp>,
    /// How long a dropped pipe's accepted writes may take to be delivered.
    linger: Duration,
    /// When the linger of the dropped pipe ends.
    linger_deadline: Option<Instant>,
}

/// Called whenever a pipe's readiness changes, under the pipe's lock: it
/// must not call back into the pipe.
pub(crate) type Observer = Arc<dyn Fn() + Send + Sync>;

/// How a pipe made by a `PipeListener` is driven.
struct Driven {
    /// Called whenever the pipe's readiness changes, until the pipe is
    /// accepted: the listener learns that an instance connected.
    observer: Option<Observer>,
    /// Keeps the listener's Poll, which dequeues this pipe's completions,
    /// alive while operations may still complete there.
    _keep_alive: Arc<dyn Send + Sync>,
}

/// The engine's [`Kernel`]: real overlapped calls on the pipe's handle.
pub(crate) struct Win32<'a> {
    owner: &'a Arc<Shared>,
    h: HANDLE,
    skip: bool,
    handle: &'a mut Option<OwnedHandle>,
    forgotten: &'a mut Vec<WeakOp>,
}

impl Kernel for Win32<'_> {
    type Op = Op;

    fn start_connect(&mut self) -> Start<Op, ()> {
        op::start_connect(self.owner, self.h, self.skip)
    }

    fn start_read(&mut self, buf: Vec<u8>) -> Start<Op, Vec<u8>> {
        op::start_read(self.owner, self.h, self.skip, buf)
    }

    fn start_write(&mut self, buf: Vec<u8>) -> Start<Op, Vec<u8>> {
        op::start_write(self.owner, self.h, self.skip, buf)
    }

    fn cancel(&mut self, op: &Op) {
        op::cancel(self.h, op);
        // The engine forgets every operation it cancels. Entries whose
        // completion was handed back are dropped on the way.
        self.forgotten.retain(|w| w.upgrade().is_some());
        self.forgotten.push(op.downgrade());
    }

    fn disconnect(&mut self) -> io::Result<()> {
        pipe::disconnect(self.h)
    }

    fn peek(&mut self) -> io::Result<Peek> {
        pipe::peek(self.h)
    }

    fn close(&mut self) {
        drop(self.handle.take());
    }
}

impl Shared {
    /// Shares `handle`, driven by `engine`, reporting readiness to `readiness`.
    pub(crate) fn new(
        handle: OwnedHandle,
        engine: Engine<Op>,
        readiness: SetReadiness,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            raw: handle.as_raw_handle() as usize,
            state: Mutex::new(State {
                engine,
                handle: Some(handle),
                skip: false,
                driven: None,
                readiness: Some(readiness),
                forgotten: Vec::new(),
                linger: crate::DEFAULT_LINGER,
                linger_deadline: None,
            }),
        })
    }

    /// The handle's value.
    pub(crate) fn raw(&self) -> HANDLE {
        self.raw as HANDLE
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left the engine as it was at the
        // panic; carrying on beats turning every later call into a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The locked state as the engine, a kernel on the handle, and how the
    /// pipe is driven.
    fn split<'a>(
        self: &'a Arc<Self>,
        st: &'a mut State,
    ) -> (&'a mut Engine<Op>, Win32<'a>, &'a Option<Driven>) {
        let State {
            engine,
            handle,
            skip,
            driven,
            forgotten,
            ..
        } = st;
        let k = Win32 {
            owner: self,
            h: self.raw(),
            skip: *skip,
            handle,
            forgotten,
        };
        (engine, k, driven)
    }

    /// Runs `f` on the engine with a kernel, then reports the readiness it leaves.
    pub(crate) fn with<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Engine<Op>, &mut Win32<'_>) -> R,
    ) -> R {
        let mut st = self.lock();
        let (engine, mut k, _) = self.split(&mut st);
        let r = f(engine, &mut k);
        let ready = engine.readiness();
        // Reported under the lock, so that readiness is never overwritten by
        // a stale value computed by another thread.
        if publish(st.readiness.as_ref(), ready, false) {
            if let Some(observer) = st.driven.as_ref().and_then(|d| d.observer.as_ref()) {
                observer();
            }
        }
        r
    }

    /// An operation's completion, dequeued by the Poll.
    pub(crate) fn complete(self: &Arc<Self>, op: &Op, buf: Option<Vec<u8>>, outcome: Outcome) {
        self.with(|e, k| e.complete(k, op, buf, outcome));
    }

    /// The user's pipe was dropped: the engine cancels reads and connects
    /// and lingers while accepted writes are delivered; readiness goes
    /// nowhere from now on; the buffers of forgotten operations the kernel
    /// is done with are freed. Returns when [`visit`](Shared::visit) must
    /// look at the pipe again, if ever.
    pub(crate) fn forsake(self: &Arc<Self>) -> Option<Instant> {
        let mut st = self.lock();
        {
            let (engine, mut k, _) = self.split(&mut st);
            engine.drop_pipe(&mut k);
        }
        // Nothing will take this readiness again; holding it would keep the
        // Poll's readiness queue, and so its completion port, alive for as
        // long as an operation holds this `Shared`.
        st.readiness = None;
        if st.engine.lingering() {
            st.linger_deadline = Some(Instant::now() + st.linger);
        }
        match Self::sweep(&mut st) {
            Visit::Done => None,
            Visit::At(t) => Some(t),
        }
    }

    /// The process-wide reaper's look at a dropped pipe: past its linger
    /// limit, the engine cancels the write still in flight and closes the
    /// handle; then the buffers of forgotten operations the kernel has
    /// finished are freed. Says when to look again.
    pub(crate) fn visit(self: &Arc<Self>, now: Instant) -> Visit {
        let mut st = self.lock();
        if st.linger_deadline.is_some_and(|t| t <= now) {
            let (engine, mut k, _) = self.split(&mut st);
            engine.linger_expired(&mut k);
        }
        Self::sweep(&mut st)
    }

    /// Frees the buffers of forgotten operations the kernel is done with
    /// (the rule, as in the engine's simulation: a buffer is freed only when
    /// the engine no longer tracks its operation and the kernel has finished
    /// it; the operation's cell stays for the port). Says whether anything
    /// is left to look at again: a linger still running, or an operation
    /// the kernel has not finished.
    fn sweep(st: &mut State) -> Visit {
        let engine = &st.engine;
        st.forgotten.retain(|w| match w.upgrade() {
            None => false,
            Some(op) if engine.tracks(&op) => true,
            Some(op) if op.kernel_done() => {
                op.free_buffer();
                false
            }
            Some(_) => true,
        });
        match st.linger_deadline {
            Some(t) if st.engine.lingering() => Visit::At(t),
            _ if !st.forgotten.is_empty() => Visit::At(Instant::now()),
            _ => Visit::Done,
        }
    }

    /// How long a dropped pipe's accepted writes may take to be delivered.
    pub(crate) fn set_linger(&self, limit: Duration) {
        self.lock().linger = limit;
    }

    /// The linger limit.
    pub(crate) fn linger(&self) -> Duration {
        self.lock().linger
    }

    /// Associates the handle with `poll`'s completion port — once: a handle
    /// keeps its port for life, so later calls only check that `poll` is
    /// the same Poll. A pipe a listener drives needs nothing: any Poll may
    /// take its readiness.
    pub(crate) fn bind(
        &self,
        binding: &mio::windows::Binding,
        token: Token,
        poll: &Poll,
    ) -> io::Result<()> {
        let mut st = self.lock();
        if st.handle.is_none() {
            return Err(io::Error::other("the pipe handle is closed"));
        }
        if st.driven.is_some() {
            return Ok(());
        }
        if st.engine.is_registered() {
            drop(st);
            return self.check_poll(binding, poll);
        }
        pipe::check_is_pipe(self.raw())?;
        // SAFETY: every operation on this handle passes an `OVERLAPPED` that
        // lives inside mio's `Overlapped` header (see `op::OpCell`), as the
        // Poll requires.
        unsafe { binding.register_handle(&RawRef(self.raw), token, poll)? };
        // Skip the port on immediate success — but not in message read mode:
        // whether an immediate ERROR_MORE_DATA (a warning) still queues a
        // packet then differs between Windows and Wine (tests/iocp_semantics.rs),
        // and guessing wrong would free an operation the kernel still reports.
        if !st.engine.framing().message_reads {
            // SAFETY: a live handle, now associated with a completion port.
            st.skip = unsafe {
                SetFileCompletionNotificationModes(
                    self.raw(),
                    SKIP_PORT_ON_SUCCESS | SKIP_SET_EVENT,
                )
            } != 0;
        }
        Ok(())
    }

    /// Starts the engine once bound (reads ahead), and reports the
    /// readiness, even unchanged, to a new registration.
    pub(crate) fn start(self: &Arc<Self>) {
        self.with(|e, k| e.register(k));
        let st = self.lock();
        publish(st.readiness.as_ref(), st.engine.readiness(), true);
    }

    /// Binds the handle to a listener's `poll`, which dequeues its
    /// completions from then on, and starts the engine; `observer` hears of
    /// every change until the pipe is [`accepted`](Shared::accepted).
    pub(crate) fn drive(
        self: &Arc<Self>,
        binding: &mio::windows::Binding,
        poll: &Poll,
        observer: Observer,
        keep_alive: Arc<dyn Send + Sync>,
    ) -> io::Result<()> {
        self.bind(binding, Token(0), poll)?;
        self.lock().driven = Some(Driven {
            observer: Some(observer),
            _keep_alive: keep_alive,
        });
        self.with(|e, _| e.quiet());
        Ok(())
    }

    /// The listener handed the pipe out: it stops observing it.
    pub(crate) fn accepted(&self) {
        if let Some(d) = self.lock().driven.as_mut() {
            d.observer = None;
        }
    }

    /// Whether the other end is known to have gone, with nothing left to read.
    pub(crate) fn peer_gone(&self) -> bool {
        self.lock().engine.at_end_of_file()
    }

    /// Whether the other end has gone with nothing left to read, asking
    /// the pipe when no read is in flight (see `Engine::peer_left`).
    pub(crate) fn probe_gone(self: &Arc<Self>) -> bool {
        self.with(|e, k| e.peer_left(k))
    }

    /// Reads ahead from now on, to notice the other end leaving.
    pub(crate) fn watch(self: &Arc<Self>) {
        self.with(|e, k| e.watch(k));
    }

    /// Stops reading ahead after the next connect (an instance that will
    /// listen again for the listener).
    pub(crate) fn quiet(self: &Arc<Self>) {
        self.with(|e, _| e.quiet());
    }

    /// Checks that `poll` is the Poll the handle is associated with (a
    /// handle cannot leave its completion port).
    pub(crate) fn check_poll(
        &self,
        binding: &mio::windows::Binding,
        poll: &Poll,
    ) -> io::Result<()> {
        if self.lock().driven.is_some() {
            return Ok(());
        }
        // SAFETY: only checks that `poll` is the Poll registered before.
        unsafe { binding.deregister_handle(&RawRef(self.raw), poll) }
    }

    /// Re-reports the current readiness (after `reregister`, whose interest may differ).
    pub(crate) fn refresh(self: &Arc<Self>) {
        self.with(|_, _| ());
    }

    /// Gives the handle up: every operation is cancelled, nothing is closed.
    pub(crate) fn release(self: &Arc<Self>) -> RawHandle {
        let mut st = self.lock();
        let (engine, mut k, _) = self.split(&mut st);
        engine.release(&mut k);
        match k.handle.take() {
            Some(h) => h.into_raw_handle(),
            None => self.raw as RawHandle,
        }
    }

    /// A one-line account of the state, for `Debug`.
    pub(crate) fn describe(&self, f: &mut fmt::DebugStruct<'_, '_>) {
        let st = self.lock();
        f.field("handle", &self.raw());
        f.field("engine", &st.engine);
    }
}

/// Sets the readiness; returns whether it changed. `force` sets it even
/// unchanged, so that a new registration hears of it.
fn publish(to: Option<&SetReadiness>, r: Readiness, force: bool) -> bool {
    let Some(to) = to else { return false };
    let mut ready = Ready::empty();
    if r.readable {
        ready |= Ready::readable();
    }
    if r.writable {
        ready |= Ready::writable();
    }
    let changed = to.readiness() != ready;
    if changed || force {
        // Fails only if the `Registration` is gone, with the pipe.
        let _ = to.set_readiness(ready);
    }
    changed
}

/// A handle value for mio's `&dyn AsRawHandle` parameters.
struct RawRef(usize);

impl AsRawHandle for RawRef {
    fn as_raw_handle(&self) -> RawHandle {
        self.0 as RawHandle
    }
}
