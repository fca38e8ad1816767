//! A pipe's shared state: the engine behind one lock, the Win32 calls it
//! asks for, and the readiness it reports to the front.

use std::fmt;
use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, IntoRawHandle, OwnedHandle, RawHandle};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Storage::FileSystem::SetFileCompletionNotificationModes;

use super::front::{Alive, Front, PipeSpec, Port, Sink};
use super::op::{self, Op, WeakOp};
use super::pipe;
use super::reaper::{self, Visit};
use crate::engine::budget::Budget;
use crate::engine::{Engine, Kernel, Outcome, Peek, Readiness, Start};

/// `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`: an operation that succeeds at
/// once queues no completion, so its result is used right away.
const SKIP_PORT_ON_SUCCESS: u8 = 1;
/// `FILE_SKIP_SET_EVENT_ON_HANDLE`: nobody waits on the handle itself.
const SKIP_SET_EVENT: u8 = 2;

/// What a front's pipe and each of its operations in flight share: for
/// fronts, the one type through which they drive a pipe.
///
/// Every operation holds the `Shared` until its completion is handed back,
/// so a `Shared` holds nothing that would keep a port alive once the user's
/// pipe is gone: the [`Sink`] (a mio `SetReadiness` keeps the Poll's
/// readiness queue and so its completion port) is dropped with the pipe
/// ([`Shared::forsake`]), and forgotten operations are held weakly. A port
/// dropped before its pipes therefore closes; operations it never dequeued
/// leak their small cells only, their buffers being freed once the kernel
/// is done with them ([`Shared::forsake`], the reaper's visits).
pub struct Shared<F: Front> {
    /// The handle's value, for calls that only name it. Closed (and no
    /// longer used) once the engine closed it.
    raw: usize,
    state: Mutex<State<F>>,
}

struct State<F: Front> {
    engine: Engine<Op<F>>,
    /// The handle; `None` once closed or given away.
    handle: Option<OwnedHandle>,
    /// The handle skips the completion port on immediate success.
    skip: bool,
    /// The handle was made by `CreateNamedPipeW` (not adopted): a pipe.
    created: bool,
    /// Set when a listener's Poll dequeues this handle's completions.
    driven: Option<Driven>,
    /// Where readiness goes; `None` once the user's pipe is dropped.
    readiness: Option<F::Sink>,
    /// Operations the engine cancelled and forgot whose buffers may still
    /// be with the kernel: freed once the kernel is done with them.
    forgotten: Vec<WeakOp<F>>,
    /// How long a dropped pipe's accepted writes may take to be delivered.
    linger: Duration,
    /// When the linger of the dropped pipe ends.
    linger_deadline: Option<Instant>,
    /// A listener's instance: counted alive until its handle closes.
    census: Option<Alive>,
}

/// For fronts' listeners: called whenever a pipe's readiness changes,
/// under the pipe's lock: it must not call back into the pipe.
pub type Observer = Arc<dyn Fn() + Send + Sync>;

/// How a pipe made by a front's listener is driven.
struct Driven {
    /// Called whenever the pipe's readiness changes, until the pipe is
    /// accepted: the listener learns that an instance connected.
    observer: Option<Observer>,
    /// Keeps the listener's port (a mio Poll), which dequeues this pipe's
    /// completions, alive while operations may still complete there.
    _keep_alive: Arc<dyn Send + Sync>,
}

/// The engine's [`Kernel`]: real overlapped calls on the pipe's handle.
pub(crate) struct Win32<'a, F: Front> {
    owner: &'a Arc<Shared<F>>,
    h: HANDLE,
    skip: bool,
    handle: &'a mut Option<OwnedHandle>,
    forgotten: &'a mut Vec<WeakOp<F>>,
    census: &'a mut Option<Alive>,
}

impl<F: Front> Kernel for Win32<'_, F> {
    type Op = Op<F>;

    fn start_connect(&mut self) -> Start<Op<F>, ()> {
        op::start_connect(self.owner, self.h, self.skip)
    }

    fn start_read(&mut self, buf: Vec<u8>) -> Start<Op<F>, Vec<u8>> {
        op::start_read(self.owner, self.h, self.skip, buf)
    }

    fn start_write(&mut self, buf: Vec<u8>) -> Start<Op<F>, Vec<u8>> {
        op::start_write(self.owner, self.h, self.skip, buf)
    }

    fn cancel(&mut self, op: &Op<F>) {
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
        // No longer an instance of its listener's name.
        drop(self.census.take());
    }
}

impl<F: Front> Shared<F> {
    /// Shares the handle of `spec`, driven by an engine, reporting readiness
    /// to `readiness`.
    pub fn new(spec: PipeSpec, readiness: F::Sink) -> Arc<Shared<F>> {
        let PipeSpec {
            handle,
            listening,
            framing,
            limits,
            linger,
            created,
            census,
        } = spec;
        let engine = if listening {
            Engine::listening(framing)
        } else {
            Engine::connected(framing)
        }
        .with_limits(limits)
        .with_budget(Budget::process());
        Arc::new(Shared {
            raw: handle.as_raw_handle() as usize,
            state: Mutex::new(State {
                engine,
                handle: Some(handle),
                skip: false,
                created,
                driven: None,
                readiness: Some(readiness),
                forgotten: Vec::new(),
                linger,
                linger_deadline: None,
                census,
            }),
        })
    }

    /// The handle's value.
    pub fn raw(&self) -> RawHandle {
        self.raw as RawHandle
    }

    fn lock(&self) -> MutexGuard<'_, State<F>> {
        // A panic while the lock was held left the engine as it was at the
        // panic; carrying on beats turning every later call into a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The locked state as the engine, a kernel on the handle, and how the
    /// pipe is driven.
    fn split<'a>(
        self: &'a Arc<Self>,
        st: &'a mut State<F>,
    ) -> (&'a mut Engine<Op<F>>, Win32<'a, F>, &'a Option<Driven>) {
        let State {
            engine,
            handle,
            skip,
            driven,
            forgotten,
            census,
            ..
        } = st;
        let k = Win32 {
            owner: self,
            h: self.raw(),
            skip: *skip,
            handle,
            forgotten,
            census,
        };
        (engine, k, driven)
    }

    /// Runs `f` on the engine with a kernel, then reports the readiness it leaves.
    pub(crate) fn with<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Engine<Op<F>>, &mut Win32<'_, F>) -> R,
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

    /// Waits for a client on a server instance (`ConnectNamedPipe`):
    /// `Ok` once connected, `WouldBlock` while not registered or pending.
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above; otherwise the OS error of a failed connect.
    pub fn connect(self: &Arc<Self>) -> io::Result<()> {
        self.with(|e, k| e.connect(k))
    }

    /// Ends the connection with the client (`DisconnectNamedPipe`),
    /// dropping everything of it.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn disconnect(self: &Arc<Self>) -> io::Result<()> {
        self.with(|e, k| e.disconnect(k))
    }

    /// Takes the error of a connect, or of a write already accepted, that
    /// failed in the background.
    pub fn take_error(self: &Arc<Self>) -> Option<io::Error> {
        self.with(|e, _| e.take_error())
    }

    /// Reads what was read ahead into `buf`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing waits; the OS error of a failed read.
    pub fn read(self: &Arc<Self>, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|e, k| e.read(k, buf))
    }

    /// Reads what was read ahead into `bufs`, in turn (bytes of one
    /// message at most).
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing waits; the OS error of a failed read.
    pub fn read_vectored(self: &Arc<Self>, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.with(|e, k| e.read_vectored(k, bufs))
    }

    /// Receives the next whole message into `buf` (cleared first).
    ///
    /// # Errors
    ///
    /// `WouldBlock` until a whole message arrived; the OS error of a
    /// failed read.
    pub fn recv_msg(self: &Arc<Self>, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.with(|e, k| e.recv_msg(k, buf))
    }

    /// Accepts data into the write buffer and returns at once.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing more is accepted now; an earlier failure
    /// of data already accepted.
    pub fn write(self: &Arc<Self>, buf: &[u8]) -> io::Result<usize> {
        self.with(|e, k| e.write(k, buf))
    }

    /// `Ok` once everything accepted was handed to the pipe.
    ///
    /// # Errors
    ///
    /// `WouldBlock` until then; an earlier failure of data already accepted.
    pub fn flush(self: &Arc<Self>) -> io::Result<()> {
        self.with(|e, _| e.flush())
    }

    /// An operation's completion, dequeued by the front's port.
    pub(crate) fn complete(self: &Arc<Self>, op: &Op<F>, buf: Option<Vec<u8>>, outcome: Outcome) {
        self.with(|e, k| e.complete(k, op, buf, outcome));
    }

    /// The user's pipe was dropped (call it from the front pipe's `Drop`):
    /// the engine cancels reads and connects and lingers while accepted
    /// writes are delivered, for at most the linger limit, then closes the
    /// handle; readiness goes nowhere from now on; the buffers of forgotten
    /// operations the kernel is done with are freed. What is left to do is
    /// handed to the process-wide reaper thread, which needs no port.
    pub fn forsake(self: &Arc<Self>) {
        if let Some(at) = self.forsake_now() {
            reaper::hand_over(Arc::clone(self) as Arc<dyn reaper::Lingering>, at);
        }
    }

    /// The part of [`forsake`](Shared::forsake) done at once. Returns when
    /// [`visit`](Shared::visit) must look at the pipe again, if ever.
    fn forsake_now(self: &Arc<Self>) -> Option<Instant> {
        let mut st = self.lock();
        {
            let (engine, mut k, _) = self.split(&mut st);
            engine.drop_pipe(&mut k);
        }
        // Nothing will take this readiness again; holding it would keep
        // the front's port alive (mio: the Poll's readiness queue, and so its
        // completion port) for as long as an operation holds this `Shared`.
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
    fn visit(self: &Arc<Self>, now: Instant) -> Visit {
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
    fn sweep(st: &mut State<F>) -> Visit {
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
    pub fn set_linger(&self, limit: Duration) {
        self.lock().linger = limit;
    }

    /// Whether a read that completes with no data (a zero-byte message) is
    /// handed out as one `Ok(0)` instead of being skipped.
    pub fn set_report_empty_messages(self: &Arc<Self>, on: bool) {
        self.with(|e, _| e.set_report_empty(on));
    }

    /// The linger limit.
    pub fn linger(&self) -> Duration {
        self.lock().linger
    }

    /// Associates the handle with `port` — once: a handle keeps its port
    /// for life, so later calls only check that `port` is the same. A pipe
    /// a listener drives needs nothing: any registration may take its
    /// readiness. Refuses a handle that is not a pipe (`GetFileType`).
    ///
    /// # Errors
    ///
    /// The handle is closed, not a pipe, bound to another port, or the
    /// association failed.
    pub fn bind(&self, port: &impl Port) -> io::Result<()> {
        let mut st = self.lock();
        if st.handle.is_none() {
            return Err(io::Error::other("the pipe handle is closed"));
        }
        if st.driven.is_some() {
            return Ok(());
        }
        if st.engine.is_registered() {
            drop(st);
            return self.check_port(port);
        }
        if !st.created {
            pipe::check_is_pipe(self.raw())?;
        }
        // Every operation on this handle passes an `OVERLAPPED` that lives
        // inside the front's header (see `op::OpCell`), as its port requires.
        port.associate(self.raw())?;
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
    pub fn start(self: &Arc<Self>) {
        self.with(|e, k| e.register(k));
        let st = self.lock();
        publish(st.readiness.as_ref(), st.engine.readiness(), true);
    }

    /// Binds the handle to a listener's `port`, which dequeues its
    /// completions from then on, and starts the engine; `observer` hears of
    /// every change until the pipe is [`accepted`](Shared::accepted);
    /// `keep_alive` is held as long as the pipe.
    ///
    /// # Errors
    ///
    /// The errors of [`bind`](Shared::bind).
    pub fn drive(
        self: &Arc<Self>,
        port: &impl Port,
        observer: Observer,
        keep_alive: Arc<dyn Send + Sync>,
    ) -> io::Result<()> {
        self.bind(port)?;
        self.lock().driven = Some(Driven {
            observer: Some(observer),
            _keep_alive: keep_alive,
        });
        self.with(|e, _| e.quiet());
        Ok(())
    }

    /// The listener handed the pipe out: it stops observing it.
    pub fn accepted(&self) {
        if let Some(d) = self.lock().driven.as_mut() {
            d.observer = None;
        }
    }

    /// Whether the other end is known to have gone, with nothing left to read.
    pub fn peer_gone(&self) -> bool {
        self.lock().engine.at_end_of_file()
    }

    /// Whether the other end has gone with nothing left to read, asking
    /// the pipe when no read is in flight (see `Engine::peer_left`).
    pub fn probe_gone(self: &Arc<Self>) -> bool {
        self.with(|e, k| e.peer_left(k))
    }

    /// Reads ahead from now on, to notice the other end leaving.
    pub fn watch(self: &Arc<Self>) {
        self.with(|e, k| e.watch(k));
    }

    /// Stops reading ahead after the next connect (an instance that will
    /// listen again for the listener).
    pub fn quiet(self: &Arc<Self>) {
        self.with(|e, _| e.quiet());
    }

    /// Checks that `port` is the port the handle is associated with (a
    /// handle cannot leave its completion port).
    ///
    /// # Errors
    ///
    /// The error of [`Port::check`].
    pub fn check_port(&self, port: &impl Port) -> io::Result<()> {
        if self.lock().driven.is_some() {
            return Ok(());
        }
        port.check(self.raw())
    }

    /// Re-reports the current readiness (after `reregister`, whose interest may differ).
    pub fn refresh(self: &Arc<Self>) {
        self.with(|_, _| ());
    }

    /// Gives the handle up: every operation is cancelled, nothing is closed.
    pub fn release(self: &Arc<Self>) -> RawHandle {
        let mut st = self.lock();
        let (engine, mut k, _) = self.split(&mut st);
        engine.release(&mut k);
        match k.handle.take() {
            Some(h) => h.into_raw_handle(),
            None => self.raw as RawHandle,
        }
    }

    /// Gives the handle up, as [`release`](Shared::release), and waits (at
    /// most `wait`, polling every millisecond) until the kernel has finished
    /// every operation cancelled on the way: from then on no operation of
    /// the engine reads or writes through the handle. Their completions may
    /// still reach the port the handle is associated with (for life), where
    /// they find cells that are no longer tracked. `None` if the handle was
    /// closed or given away already. Whether everything finished in time is
    /// the second value.
    pub fn release_owned(self: &Arc<Self>, wait: Duration) -> Option<(OwnedHandle, bool)> {
        let (handle, pending) = {
            let mut st = self.lock();
            let (engine, mut k, _) = self.split(&mut st);
            engine.release(&mut k);
            let handle = k.handle.take()?;
            let pending: Vec<Op<F>> = st.forgotten.iter().filter_map(WeakOp::upgrade).collect();
            (handle, pending)
        };
        let deadline = Instant::now().checked_add(wait);
        let done = loop {
            if pending.iter().all(Op::kernel_done) {
                break true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        Some((handle, done))
    }

    /// The handle, borrowed. A front calls it from its live pipe (`&self`):
    /// the handle stays open until the pipe is dropped
    /// ([`forsake`](Shared::forsake)) or gives it up
    /// ([`release`](Shared::release)), both of which take the pipe by value.
    pub fn as_handle(&self) -> BorrowedHandle<'_> {
        // SAFETY: `raw` is the handle this `Shared` owns; the engine closes
        // it only once the user's pipe was dropped or released, and a front
        // borrows it only through a live pipe (see above), so it is open for
        // the borrow's lifetime.
        unsafe { BorrowedHandle::borrow_raw(self.raw()) }
    }

    /// A one-line account of the state, for a front pipe's `Debug`.
    pub fn describe(&self, f: &mut fmt::DebugStruct<'_, '_>) {
        let st = self.lock();
        f.field("handle", &self.raw());
        f.field("engine", &st.engine);
    }
}

impl<F: Front> fmt::Debug for Shared<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Shared");
        self.describe(&mut d);
        d.finish()
    }
}

impl<F: Front> reaper::Lingering for Shared<F> {
    fn visit(self: Arc<Self>, now: Instant) -> Visit {
        Shared::visit(&self, now)
    }
}

/// Sets the readiness; returns whether it changed. `force` sets it even
/// unchanged, so that a new registration hears of it.
fn publish<S: Sink>(to: Option<&S>, r: Readiness, force: bool) -> bool {
    let Some(to) = to else { return false };
    let changed = to.readiness() != r;
    if changed || force {
        to.set_readiness(r);
    }
    changed
}
