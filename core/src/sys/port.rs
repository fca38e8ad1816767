//! A completion port of the core's own and the one thread that drains it,
//! for fronts that bring no event loop (the async front): the front makes
//! one [`Driver`] per process, binds each pipe to it, and the driver thread
//! hands every dequeued completion to [`complete`] for that front.
//!
//! The thread waits in `GetQueuedCompletionStatusEx` with no timeout and
//! takes up to [`BATCH`] completions per call: it runs only when the
//! kernel finished something, and one thread serves every pipe. It never
//! ends on its own; if dequeuing ever fails, the error is recorded,
//! [`Driver::check`] reports it from then on, so every pipe's next
//! operation fails saying why instead of waiting forever, and then the
//! front's `on_stop` hook runs, so that it can wake what is waiting
//! already.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::windows::io::RawHandle;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::thread;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatusEx, OVERLAPPED, OVERLAPPED_ENTRY,
};

use super::front::{Front, Port};
use super::kernel::Shared;
use super::op::complete;

/// Completions dequeued per call at most.
pub const BATCH: usize = 64;
/// `INFINITE`: wait with no timeout.
const INFINITE: u32 = u32::MAX;

/// The header of a front whose port is a [`Driver`]: a bare `OVERLAPPED`
/// and nothing else.
#[repr(C)]
pub struct BareHeader(UnsafeCell<OVERLAPPED>);

impl BareHeader {
    /// A zeroed `OVERLAPPED`, for one operation.
    pub fn new() -> BareHeader {
        BareHeader(UnsafeCell::new(OVERLAPPED::default()))
    }

    /// The `OVERLAPPED`, the header's own address (for
    /// [`Front::overlapped`]).
    pub fn as_ptr(&self) -> *mut c_void {
        self.0.get().cast()
    }
}

impl Default for BareHeader {
    fn default() -> Self {
        BareHeader::new()
    }
}

impl fmt::Debug for BareHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BareHeader({:p})", self.0.get())
    }
}

/// A completion port and the thread that hands its completions to the
/// pipes of front `F`. Pipes reach it only through [`Driver::bind`], which
/// takes `F`'s pipes: every completion it dequeues is of an operation the
/// core started for `F`.
pub struct Driver<F: Front> {
    inner: Arc<Inner>,
    front: PhantomData<fn() -> F>,
}

struct Inner {
    /// The port's handle value. Never closed: the thread waits on it for
    /// the life of the process.
    port: usize,
    /// Why the thread stopped, once it did.
    failed: OnceLock<String>,
}

impl<F: Front> Driver<F> {
    /// Creates the completion port (`CreateIoCompletionPort`) and starts
    /// its thread. `after_batch` runs on that thread after each batch of
    /// completions, outside every pipe's lock (the async front wakes the
    /// tasks there whose readiness the batch changed). `on_stop` runs on
    /// that thread once if it ever stops, after [`check`](Driver::check)
    /// started to report why (the async front wakes every waiting task
    /// there, whose next poll then fails with that error).
    ///
    /// # Errors
    ///
    /// The OS error of creating the port, or of starting the thread.
    pub fn start(after_batch: fn(), on_stop: fn()) -> io::Result<Driver<F>> {
        // SAFETY: a new port, associated with no file (INVALID_HANDLE_VALUE,
        // no existing port); 0 threads means as many as processors.
        let port =
            unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 0) };
        if port.is_null() {
            return Err(io::Error::last_os_error());
        }
        Driver::run(port, after_batch, on_stop).inspect_err(|_| {
            // SAFETY: the port was created above and nothing else has it.
            unsafe { CloseHandle(port) };
        })
    }

    /// Starts the thread on `port`, which it never closes.
    fn run(port: HANDLE, after_batch: fn(), on_stop: fn()) -> io::Result<Driver<F>> {
        let inner = Arc::new(Inner {
            port: port as usize,
            failed: OnceLock::new(),
        });
        let theirs = Arc::clone(&inner);
        let spawned = thread::Builder::new()
            .name("named-pipes-iocp".into())
            .spawn(move || {
                drain::<F>(&theirs, after_batch);
                // `drain` recorded why it returned: `check` reports it
                // before the hook wakes anyone.
                let _ = panic::catch_unwind(on_stop);
            });
        spawned?;
        Ok(Driver {
            inner,
            front: PhantomData,
        })
    }

    /// `Ok` while the thread dequeues; once it stopped, an error saying why.
    ///
    /// # Errors
    ///
    /// As above.
    pub fn check(&self) -> io::Result<()> {
        match self.inner.failed.get() {
            None => Ok(()),
            Some(why) => Err(io::Error::other(why.clone())),
        }
    }

    /// Associates the pipe's handle with the port (once; see
    /// [`Shared::bind`], which also sets skip-port-on-success where that is
    /// safe). Start the engine after it with [`Shared::start`].
    ///
    /// # Errors
    ///
    /// [`check`](Driver::check)'s error, or [`Shared::bind`]'s.
    pub fn bind(&self, pipe: &Shared<F>) -> io::Result<()> {
        self.check()?;
        pipe.bind(&DriverPort(self.inner.port as HANDLE))
    }
}

impl<F: Front> fmt::Debug for Driver<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("port", &(self.inner.port as *const c_void))
            .field("failed", &self.inner.failed.get())
            .finish()
    }
}

/// The port, as [`Shared::bind`] takes it.
struct DriverPort(HANDLE);

impl Port for DriverPort {
    fn associate(&self, handle: RawHandle) -> io::Result<()> {
        // SAFETY: `handle` is a live pipe handle (`Shared::bind` holds it);
        // every operation the core starts on it passes an `OVERLAPPED` at the
        // start of an `OpCell<F>`, which `drain` hands to `complete::<F>`.
        let r = unsafe { CreateIoCompletionPort(handle, self.0, 0, 0) };
        if r.is_null() {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn check(&self, _handle: RawHandle) -> io::Result<()> {
        // Reached only for a pipe bound before, which a `Driver<F>` did: a
        // handle keeps its port for life, and every driver's port hands
        // completions to `complete::<F>` alike.
        Ok(())
    }
}

/// The driver thread: dequeues completions in batches, hands each to the
/// core, and records why it stops if it ever does (then returns).
fn drain<F: Front>(inner: &Inner, after_batch: fn()) {
    let port = inner.port as HANDLE;
    let mut entries = [OVERLAPPED_ENTRY::default(); BATCH];
    loop {
        let mut n = 0u32;
        // SAFETY: `entries` has room for BATCH entries; the port lives for
        // the process; the wait is not alertable.
        let ok = unsafe {
            GetQueuedCompletionStatusEx(
                port,
                entries.as_mut_ptr(),
                BATCH as u32,
                &mut n,
                INFINITE,
                0,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            let _ = inner.failed.set(format!(
                "the named pipe completion port thread stopped: GetQueuedCompletionStatusEx failed: {e}"
            ));
            return;
        }
        for entry in &entries[..n as usize] {
            let ov = entry.lpOverlapped;
            if ov.is_null() {
                continue;
            }
            // A panic in a task's waker must not stop every pipe's
            // completions: the pipe's lock survives it (it is taken past
            // poisoning), and the next completion is handled as usual.
            let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: only handles of `F`'s pipes are associated with this
                // port (`Driver::bind`), and the core posts nothing else to
                // it: `ov` is the `OVERLAPPED` of an operation the core
                // started for `F`, dequeued once, here. A handle given up
                // (`Shared::release_owned`) stays associated for life: its
                // new owner is told (the async front's `IntoRawHandle` docs)
                // to start overlapped I/O on it only with an event whose low
                // bit is set, which queues no packet here.
                unsafe { complete::<F>(ov.cast()) }
            }));
        }
        let _ = panic::catch_unwind(after_batch);
    }
}

#[cfg(test)]
mod tests {
    //! Under Wine with the crate's other Windows tests.
    use std::ffi::OsStr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use std::os::windows::io::AsRawHandle;

    use super::*;
    use crate::sys::front::PipeSpec;
    use crate::sys::op::{NoSink, Probe};

    fn noop() {}

    /// How often the failing driver's `on_stop` ran.
    static STOPS: AtomicUsize = AtomicUsize::new(0);

    fn count_stop() {
        STOPS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_driver_whose_dequeue_fails_says_why_from_then_on() {
        let name = format!(r"\\.\pipe\named-pipes-core-port-{}", std::process::id());
        // A handle that is no completion port: the thread's first dequeue
        // fails (closing a port under a waiting thread would do it on
        // Windows, but Wine 8 leaves the thread waiting).
        let not_a_port = PipeSpec::default_server(OsStr::new(&name)).unwrap();
        let driver =
            Driver::<Probe>::run(not_a_port.handle.as_raw_handle(), noop, count_stop).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while STOPS.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(STOPS.load(Ordering::SeqCst), 1, "on_stop ran once");
        // The hook ran after the error was recorded: a task it wakes
        // finds the error.
        let e = driver.check().unwrap_err();
        assert!(
            e.to_string()
                .contains("completion port thread stopped: GetQueuedCompletionStatusEx failed"),
            "{e}"
        );
        // Every later bind (a pipe's first operation) fails saying so.
        let spec = PipeSpec::default_server(OsStr::new(&format!("{name}-2"))).unwrap();
        let pipe = Shared::<Probe>::new(spec, NoSink);
        let e = driver.bind(&pipe).unwrap_err();
        assert!(
            e.to_string().contains("GetQueuedCompletionStatusEx failed"),
            "{e}"
        );
        drop(not_a_port);
    }

    #[test]
    fn a_handle_is_bound_to_one_port() {
        let driver = Driver::<Probe>::start(noop, noop).unwrap();
        assert!(driver.check().is_ok());
        let name = format!(
            r"\\.\pipe\named-pipes-core-port-bind-{}",
            std::process::id()
        );
        let spec = PipeSpec::default_server(OsStr::new(&name)).unwrap();
        let pipe = Shared::<Probe>::new(spec, NoSink);
        driver.bind(&pipe).unwrap();
        // Another port cannot take the handle: a handle keeps its port for
        // life (`CreateIoCompletionPort` refuses it).
        let other = Driver::<Probe>::start(noop, noop).unwrap();
        assert!(other.bind(&pipe).is_err());
        // Once started, binding again only checks, and succeeds.
        pipe.start();
        driver.bind(&pipe).unwrap();
        assert!(driver.check().is_ok() && other.check().is_ok());
    }

    /// Batches the gated driver finished, and whether it may go on.
    static BATCHES: AtomicUsize = AtomicUsize::new(0);
    static GATE_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

    /// The gated driver's `after_batch`: counts the batch, then waits while
    /// the gate is closed (completions pile up in the port meanwhile).
    fn gated_batch() {
        BATCHES.fetch_add(1, Ordering::SeqCst);
        while !GATE_OPEN.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits up to 10 s for `done`.
    fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not after 10 s");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn completions_that_piled_up_are_taken_in_one_batch() {
        use std::io::Write;
        const PIPES: usize = 40;
        let driver = Driver::<Probe>::start(gated_batch, noop).unwrap();
        let base = format!(
            r"\\.\pipe\named-pipes-core-port-batch-{}",
            std::process::id()
        );
        let mut servers = Vec::new();
        let mut clients = Vec::new();
        for i in 0..PIPES {
            let name = format!("{base}-{i}");
            let spec = PipeSpec::default_server(OsStr::new(&name)).unwrap();
            let pipe = Shared::<Probe>::new(spec, NoSink);
            driver.bind(&pipe).unwrap();
            pipe.start();
            let _ = pipe.connect();
            clients.push(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&name)
                    .unwrap(),
            );
            servers.push(pipe);
        }
        // Every connect completed, every server reads ahead.
        until("connects", || servers.iter().all(|p| p.connect().is_ok()));
        let mut buf = [0u8; 8];
        assert!(servers.iter().all(|p| p.read(&mut buf).is_err()));
        // The driver stops after its next batch: one read completing.
        GATE_OPEN.store(false, Ordering::SeqCst);
        let before = BATCHES.load(Ordering::SeqCst);
        clients[0].write_all(b"first").unwrap();
        until("the first batch", || {
            BATCHES.load(Ordering::SeqCst) > before
        });
        let stopped = BATCHES.load(Ordering::SeqCst);
        // The others complete while the driver waits: their completions
        // pile up in the port.
        for c in &mut clients[1..] {
            c.write_all(b"piled").unwrap();
        }
        thread::sleep(Duration::from_millis(50));
        assert_eq!(BATCHES.load(Ordering::SeqCst), stopped, "the driver waited");
        GATE_OPEN.store(true, Ordering::SeqCst);
        // Every pipe gets its data...
        let mut got = vec![Vec::new(); PIPES];
        until("every read", || {
            for (p, g) in servers.iter().zip(&mut got) {
                if let Ok(n) = p.read(&mut buf) {
                    g.extend_from_slice(&buf[..n]);
                }
            }
            got[0].len() == 5 && got[1..].iter().all(|g| g.len() == 5)
        });
        assert_eq!(got[0], b"first");
        assert!(got[1..].iter().all(|g| g == b"piled"));
        // ...from few dequeues: PIPES - 1 completions, at most BATCH per
        // call, took at most 3 batches (not one each).
        let batches = BATCHES.load(Ordering::SeqCst) - stopped;
        assert!(
            (1..=3).contains(&batches),
            "{} completions took {batches} batches",
            PIPES - 1
        );
    }
}
