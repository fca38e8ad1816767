//! `PipeListener`: a server that always has instances listening.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use mio::{Evented, Events, Poll, PollOpt, Ready, Registration, SetReadiness, Token};

use crate::{NamedPipe, ServerOptions};

/// How many instances [`PipeListener::bind`] keeps listening.
pub const DEFAULT_PENDING: usize = 4;

/// A server that keeps several instances of a pipe listening at all times
/// and hands out connected pipes, like a `TcpListener`.
///
/// The listener creates each instance's replacement *before* it hands a
/// connected one out, so a client never meets a moment with no listening
/// instance (and `ERROR_PIPE_BUSY`). A client that connected and left
/// before [`accept`](PipeListener::accept) is skipped. The first instance
/// is created with `FILE_FLAG_FIRST_PIPE_INSTANCE`, so no other process can
/// have squatted the name.
///
/// The listener implements `mio::Evented`: it is readable when `accept`
/// may succeed. Its instances' completions are dequeued by a small Poll of
/// the listener's own, on one background thread; the pipes it hands out
/// report their readiness through mio's `Registration`, so they can be
/// registered with any `Poll` — the listener's, or a worker thread's.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use mio::{Events, Poll, PollOpt, Ready, Token};
/// use mio_named_pipes::{ClientOptions, PipeListener};
///
/// # fn main() -> std::io::Result<()> {
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-listener-{}", std::process::id());
/// let listener = PipeListener::bind(&name)?;
/// let poll = Poll::new()?;
/// poll.register(&listener, Token(0), Ready::readable(), PollOpt::edge())?;
///
/// let mut client = ClientOptions::new().open(&name)?;
/// poll.register(&client, Token(1), Ready::all(), PollOpt::edge())?;
///
/// let mut events = Events::with_capacity(16);
/// let server = loop {
///     match listener.accept() {
///         Ok(pipe) => break pipe,
///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => poll.poll(&mut events, None).map(drop)?,
///         Err(e) => return Err(e),
///     }
/// };
/// poll.register(&server, Token(2), Ready::all(), PollOpt::edge())?;
/// client.write_all(b"hi")?;
/// # Ok(())
/// # }
/// ```
pub struct PipeListener {
    inner: Arc<Inner>,
    registration: Registration,
}

struct Inner {
    addr: OsString,
    options: ServerOptions,
    pending: usize,
    driver: Arc<Driver>,
    /// The listener's readiness: readable when an instance may be connected.
    readiness: SetReadiness,
    /// The instances listening (or connected, not yet accepted).
    instances: Mutex<Vec<NamedPipe>>,
}

/// The listener's own Poll, turned by one background thread until the
/// listener and every pipe it made are gone.
struct Driver {
    poll: Arc<Poll>,
    stop: Arc<AtomicBool>,
    wake: SetReadiness,
    _registration: Registration,
}

impl Driver {
    fn start() -> io::Result<Arc<Driver>> {
        let poll = Arc::new(Poll::new()?);
        let (registration, wake) = Registration::new2();
        poll.register(&registration, Token(0), Ready::readable(), PollOpt::edge())?;
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&poll), Arc::clone(&stop));
        thread::Builder::new()
            .name("mio-named-pipes listener".into())
            .spawn(move || {
                let mut events = Events::with_capacity(256);
                // Each turn runs the completion callbacks of the pipes bound here.
                while !s.load(Ordering::Acquire) {
                    if p.poll(&mut events, None).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Arc::new(Driver {
            poll,
            stop,
            wake,
            _registration: registration,
        }))
    }
}

impl Drop for Driver {
    /// The last pipe that needed the Poll is gone: let the thread end.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.set_readiness(Ready::readable());
    }
}

impl PipeListener {
    /// Listens on `addr` with [`ServerOptions`]' defaults and
    /// [`DEFAULT_PENDING`] instances.
    ///
    /// # Errors
    ///
    /// The errors of [`ServerOptions::listen`]: `PermissionDenied` when an
    /// instance of that name exists already.
    ///
    /// ```
    /// use mio_named_pipes::PipeListener;
    ///
    /// let name = r"\\.\pipe\mio-named-pipes-doc-bind";
    /// let listener = PipeListener::bind(name).unwrap();
    /// # drop(listener);
    /// ```
    pub fn bind<A: AsRef<OsStr>>(addr: A) -> io::Result<PipeListener> {
        ServerOptions::new().listen(addr, DEFAULT_PENDING)
    }

    pub(crate) fn new(
        options: ServerOptions,
        addr: &OsStr,
        pending: usize,
    ) -> io::Result<PipeListener> {
        let (registration, readiness) = Registration::new2();
        let inner = Arc::new(Inner {
            addr: addr.to_owned(),
            options,
            pending,
            driver: Driver::start()?,
            readiness,
            instances: Mutex::new(Vec::with_capacity(pending + 1)),
        });
        {
            let mut instances = inner.lock();
            let first = inner.instance(true)?;
            instances.push(first);
            inner.top_up(&mut instances)?;
        }
        Ok(PipeListener {
            inner,
            registration,
        })
    }

    /// Takes a connected pipe, or returns `WouldBlock`.
    ///
    /// The pipe is connected and already reading ahead, but not registered:
    /// register it with any `Poll` to hear of its readiness. Clients that
    /// connected and left before `accept` are skipped.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when no client is waiting; the OS error when no instance
    /// can be listening at all (for example, `max_instances` are taken by
    /// pipes handed out and still open).
    ///
    /// ```
    /// use mio_named_pipes::PipeListener;
    ///
    /// let listener = PipeListener::bind(r"\\.\pipe\mio-named-pipes-doc-accept").unwrap();
    /// let e = listener.accept().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn accept(&self) -> io::Result<NamedPipe> {
        // Clear first: a connect finishing from here on sets it again, so no
        // wake-up is lost between the scan below and the return.
        let _ = self.inner.readiness.set_readiness(Ready::empty());
        let mut instances = self.inner.lock();
        let mut i = 0;
        while i < instances.len() {
            match instances[i].connect() {
                Ok(()) if instances[i].shared().peer_gone() => {
                    // The client came and left: make the instance listen again.
                    let _ = instances[i].disconnect();
                    let _ = instances[i].connect();
                    i += 1;
                }
                Ok(()) => {
                    // The replacement first, then hand the connected one out.
                    if let Ok(fresh) = self.inner.instance(false) {
                        instances.push(fresh);
                    }
                    let pipe = instances.swap_remove(i);
                    pipe.shared().accepted();
                    return Ok(pipe);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => i += 1,
                Err(_) => {
                    // The connect failed: start it over on the same instance.
                    let _ = instances[i].disconnect();
                    let _ = instances[i].connect();
                    i += 1;
                }
            }
        }
        self.inner.top_up(&mut instances)?;
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<NamedPipe>> {
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A new instance, bound to the driver and connecting.
    fn instance(&self, first: bool) -> io::Result<NamedPipe> {
        let pipe = NamedPipe::from_owned(self.options.create_handle(&self.addr, first)?, true);
        let keep_alive: Arc<dyn Send + Sync> = self.driver.clone();
        pipe.drive(&self.driver.poll, self.readiness.clone(), keep_alive)?;
        match pipe.connect() {
            Ok(()) => {
                // A client was there already.
                let _ = self.readiness.set_readiness(Ready::readable());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(pipe)
    }

    /// Creates instances until `pending` are there; fails only if none is.
    fn top_up(&self, instances: &mut Vec<NamedPipe>) -> io::Result<()> {
        while instances.len() < self.pending {
            match self.instance(false) {
                Ok(p) => instances.push(p),
                Err(e) if instances.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(())
    }
}

impl Evented for PipeListener {
    fn register(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        poll.register(&self.registration, token, interest, opts)?;
        // Clients may have connected before: let the new registration know.
        self.inner.readiness.set_readiness(Ready::readable())
    }

    fn reregister(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        poll.reregister(&self.registration, token, interest, opts)?;
        self.inner.readiness.set_readiness(Ready::readable())
    }

    fn deregister(&self, poll: &Poll) -> io::Result<()> {
        poll.deregister(&self.registration)
    }
}

impl fmt::Debug for PipeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeListener")
            .field("addr", &self.inner.addr)
            .field("pending", &self.inner.pending)
            .field("listening", &self.inner.lock().len())
            .finish()
    }
}
