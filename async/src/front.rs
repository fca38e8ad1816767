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
//!
//! Should the driver thread ever stop, every task waiting on a live pipe
//! is woken ([`wake_all`], the driver's `on_stop` hook), and its next poll
//! fails with the driver's error: every pipe's wakers are in one
//! process-wide registry ([`Wakers::registered`]) from the pipe's creation
//! to its drop.
// The thread-local's initializer is `const` already; clippy 1.96 flags the
// macro regardless.
#![allow(clippy::missing_const_for_thread_local)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::io;
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::Waker;

use named_pipes_core::front::{BareHeader, Driver, Instances, PipeSpec, Readiness, Sink};
use named_pipes_core::Front;

use crate::listener::PipeListener;
use crate::named_pipe::NamedPipe;
use crate::waiters::{Taken, Waiters};

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

/// A stop of the driver as the unit tests simulate it: the real one
/// cannot be made to fail from this crate (the core's own test makes it
/// fail and checks that it runs `on_stop` once `check` reports why).
#[cfg(test)]
pub(crate) static STOPPED_IN_TEST: OnceLock<String> = OnceLock::new();

/// The driver, started on first use.
pub(crate) fn driver() -> io::Result<&'static Driver<AsyncFront>> {
    #[cfg(test)]
    if let Some(why) = STOPPED_IN_TEST.get() {
        return Err(io::Error::other(why.clone()));
    }
    let d = DRIVER.get_or_init(|| {
        Driver::start(wake_deferred, wake_all)
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

/// The wakers of every live pipe, by address (unique while the entry's
/// `Weak` keeps the allocation).
static LIVE: Mutex<BTreeMap<usize, Weak<Wakers>>> = Mutex::new(BTreeMap::new());

fn live() -> MutexGuard<'static, BTreeMap<usize, Weak<Wakers>>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wakes every task waiting on a live pipe: the driver's `on_stop` hook,
/// run on its thread once it stopped and [`driver`] reports why. Each woken
/// task's next poll fails with that error. Wakes outside every lock.
pub(crate) fn wake_all() {
    let pipes: Vec<Weak<Wakers>> = live().values().cloned().collect();
    for wakers in pipes.iter().filter_map(Weak::upgrade) {
        for w in wakers.take_all().into_iter().flatten() {
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
    /// The tasks waiting to read, receive or see the pipe readable.
    read: Waiters,
    /// The tasks waiting to write, flush, shut down, connect or see the
    /// pipe writable (the engine reports each of them as writable).
    write: Waiters,
}

/// Which side a task waits on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Side {
    Read,
    Write,
}

impl Wakers {
    /// A new pipe's wakers, in the registry [`wake_all`] wakes until
    /// [`unregister`](Wakers::unregister).
    pub(crate) fn registered() -> Arc<Wakers> {
        let wakers = Arc::new(Wakers::default());
        live().insert(Arc::as_ptr(&wakers) as usize, Arc::downgrade(&wakers));
        wakers
    }

    /// Takes the pipe's wakers out of the registry (the pipe is dropped).
    pub(crate) fn unregister(self: &Arc<Self>) {
        let gone = live().remove(&(Arc::as_ptr(self) as usize));
        drop(gone);
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds the task's waker to those waiting on `side`, before the task
    /// tries the operation: a readiness change after the park wakes it, so
    /// none is lost between a failed try and the park. Any number of tasks
    /// may wait on the same side; each is woken when it turns ready.
    pub(crate) fn park(&self, side: Side, waker: &Waker) {
        let mut s = self.lock();
        match side {
            Side::Read => s.read.park(waker),
            Side::Write => s.write.park(waker),
        };
    }

    /// Parks the task on `side` and returns the readiness as it is now
    /// (after the park: a change later wakes the task).
    pub(crate) fn park_and_get(&self, sides: [Option<Side>; 2], waker: &Waker) -> Readiness {
        let mut s = self.lock();
        for side in sides.into_iter().flatten() {
            match side {
                Side::Read => s.read.park(waker),
                Side::Write => s.write.park(waker),
            };
        }
        s.ready
    }

    /// The readiness last reported (`try_read_buf`).
    #[cfg(feature = "tokio")]
    pub(crate) fn readiness(&self) -> Readiness {
        self.lock().ready
    }

    /// Takes every stored waker (a dropped pipe: they are dropped by the
    /// caller, outside the pipe's lock).
    pub(crate) fn take_all(&self) -> [Taken; 2] {
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
        let read = (r.readable && !was.readable).then(|| s.read.take());
        let write = (r.writable && !was.writable).then(|| s.write.take());
        drop(s);
        for w in read
            .into_iter()
            .flatten()
            .chain(write.into_iter().flatten())
        {
            defer(w);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// Held by the tests that call [`wake_all`], which wakes the other's
    /// wakers too.
    pub(crate) static WAKE_ALL: Mutex<()> = Mutex::new(());

    /// A waker that counts its wakes.
    #[derive(Default)]
    pub(crate) struct Count(AtomicUsize);

    impl Count {
        pub(crate) fn get(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn is_live(w: &Arc<Wakers>) -> bool {
        live().contains_key(&(Arc::as_ptr(w) as usize))
    }

    #[test]
    fn wake_all_wakes_the_registered_wakers_until_unregistered() {
        let _serial = WAKE_ALL.lock().unwrap_or_else(PoisonError::into_inner);
        let (read, write) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let (read_waker, write_waker) = (
            Waker::from(Arc::clone(&read)),
            Waker::from(Arc::clone(&write)),
        );
        let wakers = Wakers::registered();
        assert!(is_live(&wakers));
        wakers.park(Side::Read, &read_waker);
        wakers.park(Side::Write, &write_waker);
        wake_all();
        assert_eq!((read.get(), write.get()), (1, 1));
        // Taken: woken once only.
        wake_all();
        assert_eq!((read.get(), write.get()), (1, 1));
        // Parked again, then unregistered (the pipe dropped): not woken.
        wakers.park(Side::Read, &read_waker);
        wakers.unregister();
        assert!(!is_live(&wakers));
        wake_all();
        assert_eq!(read.get(), 1);
    }
}
