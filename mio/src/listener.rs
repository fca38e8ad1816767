//! `PipeListener`: a server that always has instances listening.
// The thread-local's initializer is `const` already; clippy 1.96 flags the
// macro regardless.
#![allow(clippy::missing_const_for_thread_local)]

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;

use mio::{Evented, Events, Poll, PollOpt, Ready, Registration, SetReadiness, Token};

use named_pipes_core::accept_plan::{plan, Slot};
use named_pipes_core::front::{Instances, Observer};
use named_pipes_core::Front;

use crate::builders::ServerOptions;
use crate::glue::Mio;
use crate::named_pipe::NamedPipe;

/// How many instances [`PipeListener::bind`] keeps listening.
pub const DEFAULT_PENDING: usize = 4;

/// A server that keeps several instances of a pipe listening at all times
/// and hands out connected pipes, like a `TcpListener`.
///
/// `pending` instances (see [`ServerOptions::listen`]) listen at all
/// times: as soon as a client connects to one, the listener creates its
/// replacement, in the background, before anyone calls
/// [`accept`](PipeListener::accept) — so a client does not meet
/// `ERROR_PIPE_BUSY` because the server is slow to accept. What it does
/// not promise: up to `pending` clients arriving at the same moment get in
/// at once, but clients beyond those that arrive before the listener's
/// thread has created the replacements (one completion and one
/// `CreateNamedPipeW` per client) may meet `ERROR_PIPE_BUSY`, even within
/// the limit below. Measured under Wine with `pending` 4 and 8 clients
/// opening back to back: 13 to 65 of 160 openers over several runs (the
/// more the machine is loaded, the more), never one of the first 4 of a
/// burst; none with the openers 20 ms apart. Clients that wait ([`ClientOptions::busy_timeout`](crate::ClientOptions::busy_timeout),
/// `WaitNamedPipe`) all get in; size `pending` to the bursts you expect. Connected
/// pipes wait for `accept` like a TCP backlog; to bound what a flood of
/// clients can make it create, the listener keeps at most `2 * pending`
/// instances (listening or waiting) in all, and past that clients wait
/// (`ERROR_PIPE_BUSY`) until pipes are accepted. A client that connected
/// and left before `accept` is skipped; when the listener is out of room,
/// it reads from the pipes waiting for `accept`, so that a client leaving
/// frees its instance even if nobody accepts. The first instance is created with
/// `FILE_FLAG_FIRST_PIPE_INSTANCE`, so no other process can have squatted
/// the name, and so is the next one whenever none of the listener's
/// instances is left (handed out ones count until their handles close):
/// `accept` then fails with `PermissionDenied` if another process took the
/// name meanwhile. Only the listener's user and SYSTEM may connect, unless
/// the options say otherwise (see `ServerOptions::current_user_only`).
///
/// The listener implements `mio::Evented`: it is readable while a
/// connected pipe waits for `accept`, and an edge-triggered registration
/// gets a new event for each new connection. Its instances' completions are
/// dequeued by a small Poll of the listener's own, on one background
/// thread, which lives until the listener and every pipe it handed out are
/// gone. So the pipes it hands out report their readiness through mio's
/// `Registration`, and can be registered with any `Poll` — the listener's,
/// or a worker thread's. Dropping the listener cancels the connects still
/// listening.
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
    /// Makes the instances, with the listener's options.
    maker: Instances,
    pending: usize,
    driver: Arc<Driver>,
    /// The listener's readiness: readable while a connected instance waits
    /// for `accept`.
    readiness: SetReadiness,
    state: Mutex<State>,
}

struct State {
    /// The instances listening, or connected and not yet accepted.
    instances: Vec<NamedPipe>,
    /// How many connected instances waited at the last look.
    waiting: usize,
}

/// The listener's own Poll, turned by one background thread until the
/// listener and every pipe it made are gone. It runs the instances'
/// completions, and looks at the instances whenever one of them changed
/// (the `observer` each instance calls) to replace connected ones at once.
struct Driver {
    poll: Arc<Poll>,
    stop: Arc<AtomicBool>,
    /// Token 0: wakes the thread, to stop or to look at the instances.
    wake: SetReadiness,
    _wake_registration: Registration,
    /// An instance's readiness changed since the thread last looked.
    dirty: Arc<AtomicBool>,
}

const WAKE: Token = Token(0);

// Whether this thread is a listener's driver thread.
thread_local! {
    static ON_DRIVER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Driver {
    fn new() -> io::Result<Arc<Driver>> {
        let poll = Arc::new(Poll::new()?);
        let (wake_registration, wake) = Registration::new2();
        poll.register(&wake_registration, WAKE, Ready::readable(), PollOpt::edge())?;
        Ok(Arc::new(Driver {
            poll,
            stop: Arc::new(AtomicBool::new(false)),
            wake,
            _wake_registration: wake_registration,
            dirty: Arc::new(AtomicBool::new(false)),
        }))
    }

    /// What each instance calls when its readiness changes (under its
    /// lock). Completions run on the driver thread, which looks at the
    /// instances after each turn of its Poll: there, setting a flag is
    /// enough. Elsewhere the thread must be woken.
    fn observer(&self) -> Observer {
        let (dirty, wake) = (Arc::clone(&self.dirty), self.wake.clone());
        Arc::new(move || {
            if !dirty.swap(true, Ordering::AcqRel) && !ON_DRIVER.with(|d| d.get()) {
                let _ = wake.set_readiness(Ready::readable());
            }
        })
    }

    /// Starts the thread. It holds the listener only weakly: dropping the
    /// listener drops its instances, and the thread runs on until their
    /// last operations completed (each pipe keeps the `Driver` alive).
    fn run(&self, listener: Weak<Inner>) -> io::Result<()> {
        let (poll, stop, dirty) = (
            Arc::clone(&self.poll),
            Arc::clone(&self.stop),
            Arc::clone(&self.dirty),
        );
        thread::Builder::new()
            .name("mio-named-pipes listener".into())
            .spawn(move || {
                ON_DRIVER.with(|d| d.set(true));
                let mut events = Events::with_capacity(256);
                while !stop.load(Ordering::Acquire) {
                    // Runs the completion callbacks of the pipes bound here.
                    if poll.poll(&mut events, None).is_err() {
                        break;
                    }
                    // A look may change instances again (one whose client
                    // left listens again): look until nothing changed.
                    while dirty.swap(false, Ordering::AcqRel) {
                        match listener.upgrade() {
                            Some(inner) => inner.refresh(false),
                            None => break,
                        }
                    }
                }
            })?;
        Ok(())
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
    /// [`DEFAULT_PENDING`] instances: only the user this process runs as,
    /// and SYSTEM, may connect (see
    /// [`current_user_only`](named_pipes_core::ServerOptions::current_user_only)).
    ///
    /// # Errors
    ///
    /// The errors of [`ServerOptions::listen`]: `PermissionDenied` when an
    /// instance of that name exists already.
    ///
    /// ```
    /// use mio_named_pipes::PipeListener;
    ///
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-bind-{}", std::process::id());
    /// let listener = PipeListener::bind(&name).unwrap();
    /// # drop(listener);
    /// ```
    pub fn bind<A: AsRef<OsStr>>(addr: A) -> io::Result<PipeListener> {
        ServerOptions::new().listen(addr, DEFAULT_PENDING)
    }

    pub(crate) fn new(maker: Instances, pending: usize) -> io::Result<PipeListener> {
        let (registration, readiness) = Registration::new2();
        let inner = Arc::new(Inner {
            maker,
            pending,
            driver: Driver::new()?,
            readiness,
            state: Mutex::new(State {
                instances: Vec::with_capacity(2 * pending),
                waiting: 0,
            }),
        });
        {
            let mut st = inner.lock();
            let first = inner.instance(true)?;
            st.instances.push(first);
            inner.settle(&mut st, false, false)?;
        }
        inner.driver.run(Arc::downgrade(&inner))?;
        Ok(PipeListener {
            inner,
            registration,
        })
    }

    /// Takes a connected pipe, or returns `WouldBlock`.
    ///
    /// The pipe is connected but not registered: register it with any
    /// `Poll` to hear of its readiness (reading starts then, or with the
    /// first `read`; writes work at once). Clients that connected and left
    /// before `accept` are skipped: `accept` asks the pipe
    /// (`PeekNamedPipe`) before it hands it out, so only a client leaving
    /// in that very moment is handed out, and then reads end of file. The
    /// listener stays readable while more connected pipes wait, so
    /// level-triggered registrations may accept one per event; a wake-up
    /// for a client that left finds `WouldBlock`.
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
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-accept-{}", std::process::id());
    /// let listener = PipeListener::bind(&name).unwrap();
    /// let e = listener.accept().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn accept(&self) -> io::Result<NamedPipe> {
        let mut st = self.inner.lock();
        match self.inner.settle(&mut st, true, false)? {
            Some(pipe) => Ok(pipe),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// What an instance's state means to the listener.
fn slot(pipe: &NamedPipe) -> Slot {
    match pipe.connect() {
        Ok(()) if pipe.shared().peer_gone() => Slot::Gone,
        Ok(()) => Slot::Connected,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Slot::Listening,
        // The connect failed: the client is gone.
        Err(_) => Slot::Gone,
    }
}

/// Makes an instance whose client left listen again; false if it cannot.
fn relisten(pipe: &NamedPipe) -> bool {
    if pipe.disconnect().is_err() {
        return false;
    }
    pipe.shared().quiet();
    match pipe.connect() {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new instance, bound to the driver and connecting.
    fn instance(&self, first: bool) -> io::Result<NamedPipe> {
        let pipe = Mio::pipe(self.maker.create(first)?);
        let keep_alive: Arc<dyn Send + Sync> = self.driver.clone();
        pipe.drive(&self.driver.poll, self.driver.observer(), keep_alive)?;
        match pipe.connect() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(pipe)
    }

    /// An instance changed: replace connected ones, make the ones whose
    /// client left listen again, and update the readiness. `force`
    /// re-announces a waiting connection to a new registration.
    fn refresh(&self, force: bool) {
        let mut st = self.lock();
        let _ = self.settle(&mut st, false, force);
    }

    /// Carries out the [`plan`] for the instances as they are; hands one out
    /// when `taking`. Fails only when no instance is left at all.
    fn settle(&self, st: &mut State, taking: bool, force: bool) -> io::Result<Option<NamedPipe>> {
        let mut slots: Vec<Slot> = st.instances.iter().map(slot).collect();
        if taking {
            // Instances waiting for `accept` do not read (unless watched), so
            // a client that left may not be known yet: ask the candidates in
            // turn until one has its client.
            for (s, pipe) in slots.iter_mut().zip(&st.instances) {
                if *s == Slot::Connected {
                    if !pipe.shared().probe_gone() {
                        break;
                    }
                    *s = Slot::Gone;
                }
            }
        }
        let plan = plan(&slots, self.pending, taking);
        let mut keep = vec![true; slots.len()];
        for &i in &plan.relisten {
            keep[i] = relisten(&st.instances[i]);
        }
        // The replacements first: they listen before a connected instance
        // is handed out.
        let mut fresh = Vec::with_capacity(plan.create);
        let mut failed = None;
        for _ in 0..plan.create {
            match self.instance(false) {
                Ok(p) => fresh.push(p),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let mut taken = None;
        let old = std::mem::take(&mut st.instances);
        for (i, pipe) in old.into_iter().enumerate() {
            if plan.take == Some(i) {
                pipe.shared().accepted();
                taken = Some(pipe);
            } else if keep[i] {
                if plan.watch && slots[i] == Slot::Connected {
                    pipe.shared().watch();
                }
                st.instances.push(pipe);
            }
        }
        st.instances.extend(fresh);
        // The readiness, under the lock so that it is never stale: readable
        // while a connection waits; set again for each new one, so that an
        // edge-triggered registration hears of every one.
        let want = if plan.ready {
            Ready::readable()
        } else {
            Ready::empty()
        };
        let current = self.readiness.readiness();
        if want != current || (plan.ready && (force || plan.waiting > st.waiting)) {
            let _ = self.readiness.set_readiness(want);
        }
        st.waiting = plan.waiting;
        if taken.is_none() && st.instances.is_empty() {
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(taken)
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
        self.inner.refresh(true);
        Ok(())
    }

    fn reregister(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        poll.reregister(&self.registration, token, interest, opts)?;
        self.inner.refresh(true);
        Ok(())
    }

    fn deregister(&self, poll: &Poll) -> io::Result<()> {
        poll.deregister(&self.registration)
    }
}

impl fmt::Debug for PipeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeListener")
            .field("addr", &self.inner.maker.addr())
            .field("pending", &self.inner.pending)
            .field("instances", &self.inner.lock().instances.len())
            .finish()
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<PipeListener>();
}
