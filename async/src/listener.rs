//! `PipeListener`: server instances kept listening, connected pipes
//! handed out by `accept().await`.

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use named_pipes_core::accept_plan::{plan, Slot};
use named_pipes_core::front::Instances;

use crate::front;
use crate::{NamedPipe, ServerOptions};

/// How many instances [`PipeListener::bind`] keeps listening.
pub const DEFAULT_PENDING: usize = 4;

/// A server that keeps several instances of a pipe listening and hands
/// out connected pipes, like a `TcpListener`:
/// `loop { let pipe = listener.accept().await?; /* spawn a task for it */ }`.
///
/// `pending` instances (see [`ServerOptions::listen`](named_pipes_core::ServerOptions::listen))
/// listen from the start. When a client connects, the task waiting in
/// [`accept`](PipeListener::accept) is woken; that poll makes instances
/// whose client left listen again and hands out the oldest connected pipe;
/// the replacement is made by the next poll of `accept` (or before the
/// hand-out, when no other instance would be listening meanwhile).
/// Replacements are made only while `accept` is polled: with no task
/// in `accept`, connected pipes wait (at most `2 * pending` instances in
/// all, as in mio-named-pipes' listener), and clients beyond them meet
/// `ERROR_PIPE_BUSY` (or wait, with a `busy_timeout`). A client that
/// connected and left before `accept` is skipped (`accept` asks the pipe,
/// `PeekNamedPipe`). Instances read nothing while they wait: a pipe handed
/// out starts reading ahead with its first read, so a server that writes
/// first, or drops the pipe unread, pays for no read and its cancel. The
/// first instance is created with `FILE_FLAG_FIRST_PIPE_INSTANCE`, and so
/// is the next one whenever none of the listener's instances is left
/// (handed out ones count until their handles close). Only the listener's
/// user and SYSTEM may connect, unless the options say otherwise (see
/// `ServerOptions::current_user_only`).
/// Dropping the listener
/// cancels the connects still listening and drops the connected pipes
/// not handed out.
///
/// # Examples
///
/// ```no_run
/// use async_named_pipes::PipeListener;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = PipeListener::bind(r"\\.\pipe\async-named-pipes-doc-listener")?;
/// loop {
///     let mut pipe = listener.accept().await?;
///     tokio::spawn(async move {
///         let mut buf = [0u8; 1024];
///         while let Ok(n @ 1..) = pipe.read(&mut buf).await {
///             if pipe.write_all(&buf[..n]).await.is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// # }
/// ```
///
/// With feature `futures-core`, `PipeListener` and `&PipeListener` are a
/// `futures_core::Stream` of connected pipes (the `Stream` of futures,
/// tokio-stream and smol): each item is an `accept`. The listener itself
/// is the stream, so it can be moved into a task and combined like any
/// stream; `&PipeListener` is one too, for a listener shared or kept for
/// later (`(&listener).next()`). An error is an item, not the end: the
/// stream never ends, and the next poll tries again at once (a consumer
/// that skips errors retries a lasting one, such as all `max_instances`
/// taken, without pause).
///
/// ```no_run
/// use async_named_pipes::PipeListener;
/// use futures_util::StreamExt;
/// use tokio::io::AsyncWriteExt;
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = PipeListener::bind(r"\\.\pipe\async-named-pipes-doc-stream")?;
/// // The listener moves into a task of its own, which greets every client.
/// tokio::spawn(listener.for_each_concurrent(None, |pipe| async move {
///     match pipe {
///         Ok(mut pipe) => {
///             let _ = pipe.write_all(b"hello").await;
///         }
///         Err(e) => eprintln!("accept failed: {e}"),
///     }
/// }));
/// # Ok(())
/// # }
/// ```
pub struct PipeListener {
    maker: Instances,
    pending: usize,
    /// The instances listening, or connected and not yet handed out.
    instances: Mutex<Vec<NamedPipe>>,
}

impl PipeListener {
    /// Listens on `addr` with [`ServerOptions`]' defaults and
    /// [`DEFAULT_PENDING`] instances.
    ///
    /// # Errors
    ///
    /// The errors of [`ServerOptions::listen`](named_pipes_core::ServerOptions::listen):
    /// `PermissionDenied` when an instance of that name exists already.
    pub fn bind<A: AsRef<OsStr>>(addr: A) -> io::Result<PipeListener> {
        ServerOptions::new().listen(addr, DEFAULT_PENDING)
    }

    /// Creates the first `pending` instances, listening at once.
    pub(crate) fn new(maker: Instances, pending: usize) -> io::Result<PipeListener> {
        let mut instances = Vec::with_capacity(2 * pending);
        for i in 0..pending {
            let made = NamedPipe::from_spec(maker.create(i == 0)?);
            made.listen()?;
            instances.push(made);
        }
        Ok(PipeListener {
            maker,
            pending,
            instances: Mutex::new(instances),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<NamedPipe>> {
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a connected pipe and takes it.
    ///
    /// # Errors
    ///
    /// The OS error when no instance can be listening at all (for example,
    /// `max_instances` are taken by pipes handed out and still open).
    pub fn accept(&self) -> Accept<'_> {
        Accept { listener: self }
    }

    /// [`accept`](PipeListener::accept) as a poll function.
    ///
    /// # Errors
    ///
    /// As [`accept`](PipeListener::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<NamedPipe>> {
        let r = self.settle(cx);
        front::wake_deferred();
        r
    }

    /// Carries out the core's accept plan for the instances as they are,
    /// parking the task on every instance still listening.
    fn settle(&self, cx: &mut Context<'_>) -> Poll<io::Result<NamedPipe>> {
        let mut instances = self.lock();
        let mut slots: Vec<Slot> = instances.iter().map(|p| p.slot(cx)).collect();
        // A connected candidate whose client left is known only once read
        // from or asked: ask them in turn until one has its client.
        for (s, pipe) in slots.iter_mut().zip(instances.iter()) {
            if *s == Slot::Connected {
                if !pipe.shared().probe_gone() {
                    break;
                }
                *s = Slot::Gone;
            }
        }
        let plan = plan(&slots, self.pending, true);
        let mut keep = vec![true; slots.len()];
        // An instance found connected by now is not handed out by this
        // poll, and its connect will not wake the task again: poll again.
        let mut again = false;
        // Why the last instance that could not listen again was given up.
        let mut lost = None;
        for &i in &plan.relisten {
            let now = match instances[i].disconnect() {
                Ok(()) => {
                    instances[i].shared().quiet();
                    instances[i].slot(cx)
                }
                Err(e) => {
                    lost = Some(e);
                    Slot::Gone
                }
            };
            keep[i] = now != Slot::Gone;
            again |= now == Slot::Connected;
        }
        // The replacements first, unless another instance listens: then
        // the connected one is handed out at once, and the next poll of
        // `accept` (the accept loop's next call, mostly at once) makes them
        // while the connection is being served.
        let create = if plan.later { 0 } else { plan.create };
        let mut failed = None;
        let mut fresh = Vec::with_capacity(create);
        for _ in 0..create {
            let made = self.maker.create(false).map(NamedPipe::from_spec);
            match made.and_then(|p| p.listen().map(|_| p)) {
                Ok(p) => {
                    again |= p.slot(cx) != Slot::Listening;
                    fresh.push(p);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let mut taken = None;
        let old = std::mem::take(&mut *instances);
        for (i, pipe) in old.into_iter().enumerate() {
            if plan.take == Some(i) {
                taken = Some(pipe);
            } else if keep[i] {
                instances.push(pipe);
            }
        }
        instances.extend(fresh);
        match (taken, failed) {
            (Some(pipe), _) => Poll::Ready(Ok(pipe)),
            (None, Some(e)) if instances.is_empty() => Poll::Ready(Err(e)),
            // Instances all lost: to a driver that stopped, or to
            // `DisconnectNamedPipe` failing; say why.
            (None, _) if instances.is_empty() => {
                Poll::Ready(Err(front::driver().err().unwrap_or_else(|| match lost {
                    Some(e) => io::Error::new(
                        e.kind(),
                        format!("the listener has no instance left listening: {e}"),
                    ),
                    None => io::Error::other("the listener has no instance left listening"),
                })))
            }
            (None, _) => {
                if again {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}

impl NamedPipe {
    /// What a listener's instance is now; parks the listener's task on it
    /// while it listens (its connect reports writable).
    fn slot(&self, cx: &mut Context<'_>) -> Slot {
        match self.poll_connect(cx) {
            Poll::Ready(Ok(())) if self.shared().peer_gone() => Slot::Gone,
            Poll::Ready(Ok(())) => Slot::Connected,
            Poll::Pending => Slot::Listening,
            // The connect failed: the client is gone.
            Poll::Ready(Err(_)) => Slot::Gone,
        }
    }
}

/// The future of [`PipeListener::accept`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Accept<'a> {
    listener: &'a PipeListener,
}

impl Future for Accept<'_> {
    type Output = io::Result<NamedPipe>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<NamedPipe>> {
        self.listener.poll_accept(cx)
    }
}

impl fmt::Debug for PipeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeListener")
            .field("addr", &self.maker.addr())
            .field("pending", &self.pending)
            .field("instances", &self.lock().len())
            .finish()
    }
}
