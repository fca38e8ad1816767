//! The public `NamedPipe`: a thin async front over the core's shared pipe
//! state, and the futures of its operations.

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::windows::io::{
    AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, IntoRawHandle, OwnedHandle, RawHandle,
};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use named_pipes_core::front::{PipeSpec, Shared};

use crate::front::{self, AsyncFront, AsyncSink, Side, Wakers};
use crate::{Interest, Ready};

/// One end of a Windows named pipe, for any executor.
///
/// A `NamedPipe` is a server instance made by
/// [`ServerOptions::create`](crate::ServerOptions) (then await
/// [`connect`](NamedPipe::connect) for its client), a client opened by
/// [`ClientOptions::open`](crate::ClientOptions) or
/// [`NamedPipe::open`], or any pipe handle opened for overlapped I/O and
/// adopted with [`From<OwnedHandle>`] or [`FromRawHandle`].
///
/// On its first operation the pipe's handle is associated with the
/// process-wide completion port of this crate, drained by one thread of
/// its own (started with the first pipe, for the life of the process); no
/// runtime is needed or started. From then on the pipe reads ahead into an
/// internal buffer, and writes are copied into an internal buffer and
/// handed to the kernel, so a write completes as soon as the data is
/// accepted (see [`poll_flush`](NamedPipe::poll_flush)). Every method takes
/// `&self`: one task may read while another writes, and any number of tasks
/// may wait on the same side (reading, receiving, `readable`; writing,
/// flushing, shutting down, connecting, `writable`): each is woken when the
/// side turns ready, and those that find nothing left wait again.
///
/// tokio's readiness API is here too, with the same meaning:
/// [`ready`](NamedPipe::ready), [`readable`](NamedPipe::readable),
/// [`writable`](NamedPipe::writable), the `poll_*_ready` functions and the
/// `try_*` methods, which never wait. [`into_split`](NamedPipe::into_split)
/// gives owned halves, as tokio's TCP streams have.
///
/// With feature `tokio`, `NamedPipe` and `&NamedPipe` implement tokio's
/// `AsyncRead` and `AsyncWrite`; with feature `futures-io`, the traits of
/// `futures-io` (smol, async-std, futures).
///
/// # Examples
///
/// With tokio (feature `tokio`; any other executor runs the same futures):
///
/// ```no_run
/// use async_named_pipes::{ClientOptions, ServerOptions};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # async fn run() -> std::io::Result<()> {
/// let name = r"\\.\pipe\async-named-pipes-doc";
/// let mut server = ServerOptions::new().first_pipe_instance(true).create(name)?;
/// let mut client = ClientOptions::new().open(name)?;
/// server.connect().await?;
/// client.write_all(b"hello").await?;
/// let mut buf = [0u8; 5];
/// server.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"hello");
/// // `&NamedPipe` reads and writes too: one task may read while another writes.
/// (&server).write_all(b"world").await?;
/// # Ok(())
/// # }
/// ```
pub struct NamedPipe {
    shared: Arc<Shared<AsyncFront>>,
    wakers: Arc<Wakers>,
    /// Whether the handle was bound to the driver and the engine started:
    /// done on the first operation; the error kind and text if it failed.
    bound: OnceLock<Result<(), (io::ErrorKind, String)>>,
    /// Set by a finished shutdown; writes fail until the next connect.
    shut: AtomicBool,
}

impl NamedPipe {
    /// Wraps a handle the core made ready (see `PipeSpec`).
    pub(crate) fn from_spec(spec: PipeSpec) -> NamedPipe {
        let wakers = Wakers::registered();
        NamedPipe {
            shared: Shared::new(spec, AsyncSink(Arc::clone(&wakers))),
            wakers,
            bound: OnceLock::new(),
            shut: AtomicBool::new(false),
        }
    }

    /// The shared state, for the crate's other modules.
    pub(crate) fn shared(&self) -> &Arc<Shared<AsyncFront>> {
        &self.shared
    }

    /// Makes sure the driver runs and this pipe is bound to it, its engine
    /// started (reading ahead, adopting a client that came early).
    fn bound(&self) -> io::Result<()> {
        self.ready_with(|s| s.start())
    }

    /// [`bound`](NamedPipe::bound), starting the engine with `start` if
    /// this is the pipe's first operation.
    fn ready_with(&self, start: impl FnOnce(&Arc<Shared<AsyncFront>>)) -> io::Result<()> {
        let driver = front::driver()?;
        let bound = self.bound.get_or_init(|| {
            let r = driver
                .bind(&self.shared)
                .map_err(|e| (e.kind(), e.to_string()));
            if r.is_ok() {
                // Readiness it reports wakes tasks once the caller's call
                // returns (`step`), not here, inside the once-cell.
                start(&self.shared);
            }
            r
        });
        match bound {
            Ok(()) => Ok(()),
            Err((kind, why)) => Err(io::Error::new(*kind, why.clone())),
        }
    }

    /// Binds the pipe and starts its connect (a listener's instance):
    /// `true` if a client is connected already. The instance is quiet: a
    /// connect starts no read, and the pipe reads from its first
    /// `poll_read` or `poll_recv_msg` on (most servers write first, and a
    /// read-ahead would cost a read and its cancel per connection that is
    /// dropped unread). Made by the listener itself, it cannot have a client
    /// from before its first connect, so it is not asked for one.
    pub(crate) fn listen(&self) -> io::Result<bool> {
        self.ready_with(|s| s.quiet())?;
        let r = self.shared.connect();
        front::wake_deferred();
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One step of an operation on `side`: parks the task's waker first,
    /// then tries `op`; `WouldBlock` means pending (the waker is woken when
    /// the side turns ready, or when the driver stops).
    fn step<T>(
        &self,
        cx: &mut Context<'_>,
        side: Side,
        op: impl FnOnce(&Arc<Shared<AsyncFront>>) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        if let Err(e) = self.bound() {
            return Poll::Ready(Err(e));
        }
        self.wakers.park(side, cx.waker());
        let r = op(&self.shared);
        front::wake_deferred();
        match r {
            // The driver may have stopped after `bound` and woken the
            // waiting tasks before this one parked: asked after the park,
            // it says so (it records why before it wakes anyone).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => match front::driver() {
                Ok(_) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            r => Poll::Ready(r),
        }
    }

    /// Opens a client of the pipe named `addr` with `options`, waiting
    /// while every instance is busy for up to the options'
    /// [`busy_timeout`](named_pipes_core::ClientOptions::busy_timeout)
    /// without blocking the task's thread: with a timeout the wait
    /// (`WaitNamedPipeW`) runs on a helper thread of its own; without one it
    /// opens at once, on the first poll.
    ///
    /// # Errors
    ///
    /// The errors of [`ClientOptions::open`](named_pipes_core::ClientOptions::open):
    /// `NotFound` with no pipe of that name, `TimedOut` when every instance
    /// stayed busy for the whole timeout.
    pub fn open<A: AsRef<OsStr>>(options: &crate::ClientOptions, addr: A) -> crate::Open {
        crate::open::Open::new(options.clone(), addr.as_ref().to_owned())
    }

    /// Waits for a client on this server instance (`ConnectNamedPipe`).
    /// Resolves at once if a client is connected already (also one that
    /// came before the call, or came and left: its first read then reports
    /// end of file).
    ///
    /// # Errors
    ///
    /// The OS error of a failed connect, or why the pipe cannot be driven.
    pub fn connect(&self) -> Connect<'_> {
        Connect { pipe: self }
    }

    /// [`connect`](NamedPipe::connect) as a poll function.
    ///
    /// # Errors
    ///
    /// As [`connect`](NamedPipe::connect).
    pub fn poll_connect(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = self.step(cx, Side::Write, |s| s.connect());
        if let Poll::Ready(Ok(())) = r {
            self.shut.store(false, Ordering::Release);
        }
        r
    }

    /// Ends the connection with the client (`DisconnectNamedPipe`), so that
    /// this server instance can [`connect`](NamedPipe::connect) the next
    /// one. Everything of the old connection is dropped: data read ahead
    /// and not yet read, data written and not yet flushed (await
    /// a flush first to keep it), pending errors.
    /// Nothing of one client ever reaches the next.
    ///
    /// # Errors
    ///
    /// The OS error, for example on a client end.
    pub fn disconnect(&self) -> io::Result<()> {
        let r = self.shared.disconnect();
        front::wake_deferred();
        r
    }

    /// Receives the next whole message into `buf` (cleared first) and
    /// returns its length. In message read mode a message arrives whole,
    /// however large, never split or merged; in byte read mode this is
    /// whatever is buffered. At end of file it returns 0 with `buf` empty;
    /// empty messages are skipped.
    ///
    /// # Errors
    ///
    /// The OS error of a failed read.
    pub fn recv_msg<'a>(&'a self, buf: &'a mut Vec<u8>) -> RecvMsg<'a> {
        RecvMsg { pipe: self, buf }
    }

    /// [`recv_msg`](NamedPipe::recv_msg) as a poll function.
    ///
    /// # Errors
    ///
    /// As [`recv_msg`](NamedPipe::recv_msg).
    pub fn poll_recv_msg(
        &self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<usize>> {
        self.step(cx, Side::Read, |s| s.recv_msg(buf))
    }

    /// Reads into `buf`: what was read ahead, at most `buf.len()` bytes,
    /// never bytes of two messages (message read mode). `Ok(0)` at end of
    /// file (the other end closed), or for an empty `buf`.
    ///
    /// # Errors
    ///
    /// The OS error of a failed read.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.step(cx, Side::Read, |s| s.read(buf))
    }

    /// Writes from `buf`: copies what the write queue accepts (byte mode;
    /// on a message-type pipe the whole buffer, as one message, or nothing
    /// yet) and hands it to the kernel; ready as soon as something was
    /// accepted. On a server instance, await [`connect`](NamedPipe::connect)
    /// first: nothing is accepted before a client is connected.
    ///
    /// # Errors
    ///
    /// An earlier failure of data already accepted, or the failure of this
    /// write; after a [shutdown](NamedPipe::poll_shutdown), `BrokenPipe`.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Err(e) = self.check_not_shut() {
            return Poll::Ready(Err(e));
        }
        self.step(cx, Side::Write, |s| s.write(buf))
    }

    /// Ready once every byte accepted by a write was handed to the kernel:
    /// written into the pipe's buffer, or taken by the reader — not that
    /// the reader has read it (Windows tells a writer nothing of that
    /// until the pipe's buffer is full).
    ///
    /// # Errors
    ///
    /// An earlier failure of data already accepted (the reader left, say).
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.step(cx, Side::Write, |s| s.flush())
    }

    /// Flushes (see [`poll_flush`](NamedPipe::poll_flush)), then refuses
    /// every later write with `BrokenPipe`. A named pipe has no half-close:
    /// the other end sees no end of file from this — only dropping this end
    /// (or [`disconnect`](NamedPipe::disconnect) on a server) ends the
    /// connection — and reading goes on as before. After a `disconnect`, the
    /// next successful `connect` accepts writes again.
    ///
    /// # Errors
    ///
    /// The error of the flush.
    pub fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = self.poll_flush(cx);
        if let Poll::Ready(Ok(())) = r {
            self.shut.store(true, Ordering::Release);
        }
        r
    }

    /// Waits until the pipe is ready for any of `interest` (tokio's
    /// `Interest` converts into it with feature `tokio`) and says which.
    /// Used with the `try_*` methods: wait, try, and wait again on
    /// `WouldBlock`. Readiness may be spurious (another task took the data
    /// or the room first): a `try_*` after it may still return
    /// `WouldBlock`. Any number of tasks may wait on the same pipe, for the
    /// same readiness or another; each is woken when it turns ready.
    ///
    /// Readable means a read returns at once: data, end of file, or an
    /// error. Writable means a write is accepted (the write queue has room
    /// and the pipe is connected), or an error waits. A server instance is
    /// writable only once connected.
    ///
    /// # Errors
    ///
    /// Why the pipe cannot be driven (the handle is not a pipe opened for
    /// overlapped I/O, or the completion port failed); `InvalidInput` for
    /// an interest with neither readable nor writable (tokio's `PRIORITY`
    /// or `ERROR` alone: a pipe has no such readiness).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses nothing.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use async_named_pipes::{ClientOptions, Interest};
    /// use std::io;
    ///
    /// # async fn run() -> io::Result<()> {
    /// let client = ClientOptions::new().open(r"\\.\pipe\async-named-pipes-doc-ready")?;
    /// loop {
    ///     let ready = client.ready(Interest::READABLE | Interest::WRITABLE).await?;
    ///     if ready.is_readable() {
    ///         let mut buf = [0u8; 1024];
    ///         match client.try_read(&mut buf) {
    ///             Ok(0) => break,
    ///             Ok(n) => println!("read {n} bytes"),
    ///             Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
    ///             Err(e) => return Err(e),
    ///         }
    ///     }
    ///     if ready.is_writable() {
    ///         match client.try_write(b"hello") {
    ///             Ok(n) => println!("wrote {n} bytes"),
    ///             Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
    ///             Err(e) => return Err(e),
    ///         }
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn ready(&self, interest: impl Into<Interest>) -> ReadyFuture<'_> {
        ReadyFuture {
            pipe: self,
            interest: interest.into(),
        }
    }

    /// Waits until the pipe is readable: `ready(Interest::READABLE)`
    /// without the answer. Usually followed by [`try_read`](NamedPipe::try_read).
    ///
    /// # Errors
    ///
    /// As [`ready`](NamedPipe::ready).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.ready(Interest::READABLE).await.map(|_| ())
    }

    /// Waits until the pipe is writable: `ready(Interest::WRITABLE)`
    /// without the answer. Usually followed by [`try_write`](NamedPipe::try_write).
    ///
    /// # Errors
    ///
    /// As [`ready`](NamedPipe::ready).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn writable(&self) -> io::Result<()> {
        self.ready(Interest::WRITABLE).await.map(|_| ())
    }

    /// [`ready`](NamedPipe::ready) as a poll function: `Ready` with the
    /// readiness found (of `interest`), or `Pending` with the task woken
    /// when any of it turns ready.
    ///
    /// # Errors
    ///
    /// As [`ready`](NamedPipe::ready).
    pub fn poll_ready(&self, cx: &mut Context<'_>, interest: Interest) -> Poll<io::Result<Ready>> {
        if !interest.is_readable() && !interest.is_writable() {
            // Only from tokio's other interests (priority, error), which
            // would otherwise wait for ever.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a named pipe is ready for reading or writing: the interest has neither",
            )));
        }
        if let Err(e) = self.bound() {
            return Poll::Ready(Err(e));
        }
        if interest.is_readable() {
            // Readable means data read ahead: a listener's quiet instance
            // reads from now on.
            self.shared.watch();
            front::wake_deferred();
        }
        let sides = [
            interest.is_readable().then_some(Side::Read),
            interest.is_writable().then_some(Side::Write),
        ];
        let now = self.wakers.park_and_get(sides, cx.waker());
        let readable = interest.is_readable() && now.readable;
        let writable = interest.is_writable() && now.writable;
        if readable || writable {
            let read_closed = readable && self.shared.peer_gone();
            let write_closed = writable && self.shut.load(Ordering::Acquire);
            return Poll::Ready(Ok(Ready::new(
                readable,
                writable,
                read_closed,
                write_closed,
            )));
        }
        // As in `step`: a driver that stopped before the park is reported.
        match front::driver() {
            Ok(_) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Polls for read readiness, as tokio's `poll_read_ready`: `Ready(Ok(()))`
    /// once readable (possibly spuriously), else `Pending` with the task
    /// woken when it turns readable. Any number of tasks may poll.
    ///
    /// # Errors
    ///
    /// As [`ready`](NamedPipe::ready).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(cx, Interest::READABLE).map_ok(|_| ())
    }

    /// Polls for write readiness, as tokio's `poll_write_ready` (see
    /// [`poll_read_ready`](NamedPipe::poll_read_ready)).
    ///
    /// # Errors
    ///
    /// As [`ready`](NamedPipe::ready).
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(cx, Interest::WRITABLE).map_ok(|_| ())
    }

    /// Reads what was read ahead into `buf`, without waiting: the bytes
    /// read (at most one message's, in message read mode), `Ok(0)` at end
    /// of file or for an empty `buf`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing was read ahead yet (wait with
    /// [`readable`](NamedPipe::readable)); the OS error of a failed read.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.bound()?;
        let r = self.shared.read(buf);
        front::wake_deferred();
        r
    }

    /// [`try_read`](NamedPipe::try_read) into several buffers, filled in
    /// turn (with bytes of one message at most).
    ///
    /// # Errors
    ///
    /// As [`try_read`](NamedPipe::try_read).
    pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.bound()?;
        let r = self.shared.read_vectored(bufs);
        front::wake_deferred();
        r
    }

    /// [`try_read`](NamedPipe::try_read) into the spare capacity of `buf`,
    /// advancing it by the bytes read (feature `tokio`, as tokio's
    /// `try_read_buf`, for any `bytes::BufMut`).
    ///
    /// # Errors
    ///
    /// As [`try_read`](NamedPipe::try_read).
    #[cfg(feature = "tokio")]
    pub fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        // The engine copies into an initialized slice (no `unsafe` in this
        // crate's front): through a zeroed one of at most 64 KiB per call,
        // made only once something is read ahead.
        const AT_MOST: usize = 64 * 1024;
        let len = buf.chunk_mut().len().min(AT_MOST);
        if len == 0 {
            return Ok(0);
        }
        self.bound()?;
        if !self.wakers.readiness().readable {
            // Nothing read ahead (as far as the last report says: at worst
            // a spurious `WouldBlock`); a quiet pipe reads ahead from now on.
            self.shared.watch();
            front::wake_deferred();
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut tmp = vec![0u8; len];
        let n = self.try_read(&mut tmp)?;
        buf.put_slice(&tmp[..n]);
        Ok(n)
    }

    /// Writes `buf` without waiting: copies what the write queue accepts
    /// (byte mode; on a message-type pipe the whole buffer as one message,
    /// or nothing) and hands it to the kernel; the number of bytes accepted.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is accepted now (wait with
    /// [`writable`](NamedPipe::writable)); an earlier failure of data
    /// already accepted, or this write's; `BrokenPipe` after a shutdown.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.check_not_shut()?;
        self.bound()?;
        let r = self.shared.write(buf);
        front::wake_deferred();
        r
    }

    /// [`try_write`](NamedPipe::try_write) of several buffers gathered
    /// into one write (one message on a message-type pipe).
    ///
    /// # Errors
    ///
    /// As [`try_write`](NamedPipe::try_write).
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.try_write(&gather(bufs))
    }

    /// [`poll_write`](NamedPipe::poll_write) of several buffers gathered
    /// into one write (one message on a message-type pipe), for the
    /// traits' `poll_write_vectored`.
    ///
    /// # Errors
    ///
    /// As [`poll_write`](NamedPipe::poll_write).
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write(cx, &gather(bufs))
    }

    fn check_not_shut(&self) -> io::Result<()> {
        if self.shut.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown: a named pipe has no half-close; \
                 the pipe accepts writes again after disconnect and connect",
            ));
        }
        Ok(())
    }

    /// Takes the error of an operation that failed in the background: a
    /// connect, or a write of data already accepted.
    pub fn take_error(&self) -> Option<io::Error> {
        let r = self.shared.take_error();
        front::wake_deferred();
        r
    }

    /// Sets how long this pipe, once dropped, keeps delivering the data
    /// writes accepted before the drop (default
    /// [`DEFAULT_LINGER`](crate::DEFAULT_LINGER), 5 s; not a Win32
    /// setting). Past it, the write in flight is cancelled and the handle
    /// closed; a process-wide thread of the core ends the linger, whatever
    /// the runtime does.
    pub fn set_linger(&self, limit: Duration) {
        self.shared.set_linger(limit);
    }

    /// The linger limit (see [`set_linger`](NamedPipe::set_linger)).
    pub fn linger(&self) -> Duration {
        self.shared.linger()
    }
}

/// The buffers of a vectored write as one.
fn gather(bufs: &[io::IoSlice<'_>]) -> Vec<u8> {
    let mut all = Vec::with_capacity(bufs.iter().map(|b| b.len()).sum());
    for b in bufs {
        all.extend_from_slice(b);
    }
    all
}

/// The future of [`NamedPipe::ready`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct ReadyFuture<'a> {
    pipe: &'a NamedPipe,
    interest: Interest,
}

impl Future for ReadyFuture<'_> {
    type Output = io::Result<Ready>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        self.pipe.poll_ready(cx, self.interest)
    }
}

/// The future of [`NamedPipe::connect`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Connect<'a> {
    pipe: &'a NamedPipe,
}

impl Future for Connect<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pipe.poll_connect(cx)
    }
}

/// The future of [`NamedPipe::recv_msg`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct RecvMsg<'a> {
    pipe: &'a NamedPipe,
    buf: &'a mut Vec<u8>,
}

impl Future for RecvMsg<'_> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.pipe.poll_recv_msg(cx, this.buf)
    }
}

impl AsRawHandle for NamedPipe {
    fn as_raw_handle(&self) -> RawHandle {
        self.shared.raw()
    }
}

impl AsHandle for NamedPipe {
    /// The pipe's handle, for calls that only name it (`GetNamedPipeInfo`,
    /// say). Overlapped I/O on it would have its completions delivered to
    /// this crate's completion port: do none (see [`IntoRawHandle`]).
    fn as_handle(&self) -> BorrowedHandle<'_> {
        self.shared.as_handle()
    }
}

/// How long giving up the handle waits for the kernel to finish the
/// cancelled operations (they finish at once after `CancelIoEx`, as a rule).
const RELEASE_WAIT: Duration = Duration::from_secs(1);

impl From<NamedPipe> for OwnedHandle {
    /// Gives the handle up, open and connected, as
    /// [`into_raw_handle`](IntoRawHandle::into_raw_handle) does.
    fn from(pipe: NamedPipe) -> OwnedHandle {
        pipe.into_owned_handle()
    }
}

impl IntoRawHandle for NamedPipe {
    /// Gives the handle up, open and connected: the pipe's operations in
    /// flight are cancelled (`CancelIoEx`), and the call waits until the
    /// kernel has finished them (at most 1 s; they finish at once as a
    /// rule), so that none of them reads or writes through the handle
    /// afterwards. What the pipe held is dropped: data read ahead and not
    /// yet read, and data accepted by writes and not yet handed to the
    /// kernel (await [`poll_flush`](NamedPipe::poll_flush) first, and read
    /// until `WouldBlock`, to keep nothing back). A read ahead that the
    /// kernel finished before its cancel took its bytes out of the pipe:
    /// they are lost too, so give a pipe up before anything it will read
    /// was sent, or after the peer is known to have sent nothing more.
    ///
    /// The handle stays associated with this crate's completion port: a
    /// Windows handle keeps its port for life. Blocking I/O on it is safe,
    /// and so is overlapped I/O whose completions bypass the port: an
    /// `OVERLAPPED` whose `hEvent` is an event handle with its low bit set
    /// (the documented way to queue no completion packet); wait on that
    /// event or `GetOverlappedResult`. Overlapped I/O with a clear low bit
    /// (or `hEvent` null) queues its completion to this crate's port, whose
    /// driver thread takes every packet's `OVERLAPPED` for one of its own
    /// operations (it skips only packets without one): never do that. The
    /// handle also keeps the notification modes set on it when it was
    /// bound (byte read mode): `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS` and
    /// `FILE_SKIP_SET_EVENT_ON_HANDLE` (the handle itself is not signalled:
    /// wait on the `OVERLAPPED`'s event, not on the handle). It cannot be
    /// adopted again by this crate ([`From<OwnedHandle>`] fails on the first
    /// operation: a handle is associated with a port once).
    fn into_raw_handle(self) -> RawHandle {
        self.into_owned_handle().into_raw_handle()
    }
}

impl NamedPipe {
    fn into_owned_handle(self) -> OwnedHandle {
        let released = self.shared.release_owned(RELEASE_WAIT);
        front::wake_deferred();
        // Dropping `self` now finds the engine released: it closes nothing.
        let (handle, _) = released
            .expect("a live pipe's handle is open: only dropping or giving up the pipe closes it");
        handle
    }
}

impl From<OwnedHandle> for NamedPipe {
    /// Adopts a pipe handle opened with `FILE_FLAG_OVERLAPPED`: a client, or
    /// a server instance made elsewhere (connected or not; `connect` works
    /// on it either way). Byte or message mode is read from the handle. The
    /// first operation fails with `InvalidInput` if the handle is not a pipe
    /// or was not opened for overlapped I/O, and with the OS error if it is
    /// associated with another completion port already.
    fn from(handle: OwnedHandle) -> NamedPipe {
        NamedPipe::from_spec(PipeSpec::adopt(handle))
    }
}

impl FromRawHandle for NamedPipe {
    /// As `From<OwnedHandle>`.
    ///
    /// # Safety
    ///
    /// `handle` must be an open handle owned by nothing else.
    unsafe fn from_raw_handle(handle: RawHandle) -> NamedPipe {
        // SAFETY: the caller hands over ownership of an open handle.
        NamedPipe::from(unsafe { OwnedHandle::from_raw_handle(handle) })
    }
}

impl Drop for NamedPipe {
    /// Cancels a pending read or connect. Data already accepted by writes
    /// is still delivered, for at most the [linger](NamedPipe::set_linger)
    /// limit, then the handle is closed — with or without a runtime. The
    /// tasks' wakers are dropped after the pipe is let go, outside its lock.
    fn drop(&mut self) {
        self.wakers.unregister();
        let wakers = self.wakers.take_all();
        self.shared.forsake();
        front::wake_deferred();
        drop(wakers);
    }
}

impl fmt::Debug for NamedPipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("NamedPipe");
        self.shared.describe(&mut d);
        d.finish()
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<NamedPipe>();
}

#[cfg(test)]
mod tests {
    use std::sync::PoisonError;
    use std::task::Waker;

    use super::*;
    use crate::front::tests::{Count, WAKE_ALL};
    use crate::front::{wake_all, STOPPED_IN_TEST};
    use crate::{ClientOptions, ServerOptions};

    const WHY: &str = "the driver stopped (simulated)";

    fn fails_saying_why<T: fmt::Debug>(p: Poll<io::Result<T>>) {
        match p {
            Poll::Ready(Err(e)) => assert_eq!(e.to_string(), WHY),
            p => panic!("{p:?} where the error was due"),
        }
    }

    /// The driver stopping, simulated (see `STOPPED_IN_TEST`) in the
    /// order the core's driver keeps: the error first, then `on_stop`. The
    /// only test in this binary that stops the driver: every pipe fails
    /// from then on.
    #[test]
    fn a_stopped_driver_wakes_every_waiting_task_and_their_next_poll_fails() {
        let _serial = WAKE_ALL.lock().unwrap_or_else(PoisonError::into_inner);
        let name = format!(r"\\.\pipe\async-named-pipes-unit-{}", std::process::id());
        let server = ServerOptions::new()
            .first_pipe_instance(true)
            .create(&name)
            .unwrap();
        let client = ClientOptions::new().open(&name).unwrap();
        // A second instance, listening with no client.
        let lonely = ServerOptions::new().create(&name).unwrap();
        let (reader, connector, late) = (
            Arc::new(Count::default()),
            Arc::new(Count::default()),
            Arc::new(Count::default()),
        );
        let reader_waker = Waker::from(Arc::clone(&reader));
        let connector_waker = Waker::from(Arc::clone(&connector));
        let late_waker = Waker::from(Arc::clone(&late));
        // The client came first: the connect is done at once.
        let connected = Waker::from(Arc::new(Count::default()));
        let mut cx = Context::from_waker(&connected);
        assert!(matches!(server.poll_connect(&mut cx), Poll::Ready(Ok(()))));
        let mut cx = Context::from_waker(&reader_waker);
        // A read with nothing sent and a connect with no client wait.
        let mut buf = [0u8; 8];
        assert!(server.poll_read(&mut cx, &mut buf).is_pending());
        let mut cx = Context::from_waker(&connector_waker);
        assert!(lonely.poll_connect(&mut cx).is_pending());
        // A listener's accept waits on each of its instances.
        let listener = ServerOptions::new()
            .listen(format!("{name}-listener"), 2)
            .unwrap();
        let acceptor = Arc::new(Count::default());
        let acceptor_waker = Waker::from(Arc::clone(&acceptor));
        let mut cx = Context::from_waker(&acceptor_waker);
        assert!(listener.poll_accept(&mut cx).is_pending());

        // The driver stops after a task's `ready` and wakes everyone before
        // that task parks: the task, asked after its park, fails rather than
        // wait for a wake that came before it.
        let mut cx = Context::from_waker(&late_waker);
        let missed = client.step(&mut cx, Side::Read, |_| {
            STOPPED_IN_TEST.set(WHY.to_owned()).unwrap();
            Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
        });
        fails_saying_why(missed);

        // `on_stop`: the tasks waiting are woken (that last one too: it
        // parked), once.
        assert_eq!((reader.get(), connector.get(), late.get()), (0, 0, 0));
        assert_eq!(acceptor.get(), 0);
        wake_all();
        assert_eq!((reader.get(), connector.get(), late.get()), (1, 1, 1));
        // Once per instance listening.
        assert_eq!(acceptor.get(), 2);
        // Their next poll fails saying why, and so does every later one.
        let mut cx = Context::from_waker(&reader_waker);
        fails_saying_why(server.poll_read(&mut cx, &mut buf));
        fails_saying_why(lonely.poll_connect(&mut cx));
        fails_saying_why(client.poll_write(&mut cx, b"x"));
        let mut cx = Context::from_waker(&acceptor_waker);
        fails_saying_why(listener.poll_accept(&mut cx));
    }
}
