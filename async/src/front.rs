//! The async front as the core sees it: each operation's header is a bare
//! `OVERLAPPED`, one process-wide driver thread dequeues completions from
//! the core's completion port, and a pipe's readiness wakes tasks.
//!
//! Waking happens outside every pipe's lock: the core reports readiness
//! under the pipe's lock, so [`AsyncSink`] only takes the wakers to wake
//! and leaves them in a list of the calling thread; whoever called into the
//! pipe wakes them once the call returned ([`wake_deferred`]: the driver
//! thread after each batch, a task's thread after each pipe call). A waker
//! may run executor code, even drop a task and with it another pipe; none
//! of that happens while a pipe is locked.
// The thread-local's initializer is `const` already; clippy 1.96 flags the
// macro regardless.
#![allow(clippy::missing_const_for_thread_local)]

use std::cell::RefCell;
use std::ffi::c_void;
use std::io;
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;

use named_pipes_core::front::{BareHeader, Driver, Instances, PipeSpec, Readiness, Sink};
use named_pipes_core::Front;

use crate::listener::PipeListener;
use crate::named_pipe::NamedPipe;

/// The async front, as the core's options know it: they make
/// [`NamedPipe`]s and [`PipeListener`]s.
#[derive(Clone, Copy, Debug)]
pub struct AsyncFront;

// SAFETY: `BareHeader` is `repr(C)` around the `OVERLAPPED` alone, and
// `overlapped` returns its address, the header's own; nothing but the
// kernel writes it while the operation is in flight.
unsafe impl Front for AsyncFront {
    type Header = BareHeader;
    type Sink = AsyncSink;
    type Pipe = NamedPipe;
    type Listener = PipeListener;

    fn header() -> BareHeader {
        BareHeader::new()
    }

    fn overlapped(header: &BareHeader) -> *mut c_void {
        header.as_ptr()
    }

    fn pipe(spec: PipeSpec) -> NamedPipe {
        NamedPipe::from_spec(spec)
    }

    fn listen(instances: Instances, pending: usize) -> io::Result<PipeListener> {
        PipeListener::new(instances, pending)
    }
}

/// The process-wide driver: created on the first pipe operation.
static DRIVER: OnceLock<Result<Driver<AsyncFront>, String>> = OnceLock::new();

/// The driver, started on first use.
pub(crate) fn driver() -> io::Result<&'static Driver<AsyncFront>> {
    let d = DRIVER.get_or_init(|| {
        Driver::start(wake_deferred)
            .map_err(|e| format!("could not start the named pipe completion port: {e}"))
    });
    match d {
        Ok(d) => {
            d.check()?;
            Ok(d)
        }
        Err(why) => Err(io::Error::other(why.clone())),
    }
}

thread_local! {
    /// Wakers taken under a pipe's lock, woken once it is released.
    static DEFERRED: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// Leaves `w` to be woken by [`wake_deferred`]. A thread whose
/// thread-locals are being destroyed has no list: the waker is woken at once
/// then (under the pipe's lock; only a pipe used from a thread-local's
/// destructor gets there).
fn defer(w: Waker) {
    let mut w = Some(w);
    let _ = DEFERRED.try_with(|d| d.borrow_mut().extend(w.take()));
    if let Some(w) = w {
        w.wake();
    }
}

/// Wakes the tasks whose pipes turned ready during the calling thread's
/// last pipe calls (see the module comment).
pub(crate) fn wake_deferred() {
    loop {
        let wakers = DEFERRED
            .try_with(|d| mem::take(&mut *d.borrow_mut()))
            .unwrap_or_default();
        if wakers.is_empty() {
            return;
        }
        for w in wakers {
            w.wake();
        }
    }
}

/// A pipe's readiness and the tasks waiting on each side of it.
#[derive(Debug, Default)]
pub(crate) struct Wakers(Mutex<Slots>);

#[derive(Debug, Default)]
struct Slots {
    ready: Readiness,
    /// The task waiting to read or receive.
    read: Option<Waker>,
    /// The task waiting to write, flush, shut down or connect (the engine
    /// reports each of them as writable).
    write: Option<Waker>,
}

/// Which side a task waits on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Side {
    Read,
    Write,
}

impl Wakers {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the task's waker for `side`, before the task tries the
    /// operation: a readiness change after the store wakes it, so none is
    /// lost between a failed try and the store. The waker it replaces is
    /// dropped outside the lock.
    pub(crate) fn park(&self, side: Side, waker: &Waker) {
        let mut s = self.lock();
        let slot = match side {
            Side::Read => &mut s.read,
            Side::Write => &mut s.write,
        };
        if slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return;
        }
        let old = slot.replace(waker.clone());
        drop(s);
        drop(old);
    }

    /// Takes every stored waker (a dropped pipe: they are dropped by the
    /// caller, outside the pipe's lock).
    pub(crate) fn take_all(&self) -> [Option<Waker>; 2] {
        let mut s = self.lock();
        [s.read.take(), s.write.take()]
    }
}

/// Where a pipe's readiness goes: its [`Wakers`].
#[derive(Debug)]
pub struct AsyncSink(pub(crate) Arc<Wakers>);

impl Sink for AsyncSink {
    fn readiness(&self) -> Readiness {
        self.0.lock().ready
    }

    fn set_readiness(&self, r: Readiness) {
        let mut s = self.0.lock();
        let was = mem::replace(&mut s.ready, r);
        let read = if r.readable && !was.readable {
            s.read.take()
        } else {
            None
        };
        let write = if r.writable && !was.writable {
            s.write.take()
        } else {
            None
        };
        drop(s);
        for w in read.into_iter().chain(write) {
            defer(w);
        }
    }
}
