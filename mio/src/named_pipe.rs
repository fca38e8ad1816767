//! The public `NamedPipe`: a thin mio front over the core's shared pipe state.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::windows::io::{AsRawHandle, FromRawHandle, IntoRawHandle, OwnedHandle, RawHandle};
use std::sync::Arc;
use std::time::Duration;

use mio::windows::Binding;
use mio::{Evented, Poll, PollOpt, Ready, Registration, Token};
use named_pipes_core::front::{Observer, PipeSpec, Shared};

use crate::glue::{Mio, MioPort, MioSink};

/// One end of a Windows named pipe, registered with a mio 0.6 [`Poll`].
///
/// A `NamedPipe` is a server instance made by [`NamedPipe::new`] (or by
/// `ServerOptions`), or any pipe handle opened with `FILE_FLAG_OVERLAPPED`
/// and adopted with [`FromRawHandle`] — typically a client opened with
/// [`std::fs::OpenOptions`].
///
/// Until it is registered with a `Poll`, every I/O call returns
/// [`io::ErrorKind::WouldBlock`]. Once registered, it reads ahead into an
/// internal buffer and reports readable when data, end of file or an error
/// waits; writes are copied into an internal buffer and handed to the
/// kernel, so a `write` returns at once, and the pipe reports writable when
/// more would be accepted. [`Read`] and [`Write`] are implemented for
/// `&NamedPipe` too, so one thread may read while another writes.
///
/// A client may open a server instance before anyone calls
/// [`connect`](NamedPipe::connect). Registering such an instance serves
/// that client, as mio-named-pipes 0.1 did: the first poll reports it
/// writable, and its data (then end of file, if it left) is read. An
/// instance with no client yet reports nothing until `connect` is called.
///
/// On a pipe in message read mode, a `read` never returns bytes of two
/// messages, and [`NamedPipe::recv_msg`] returns one whole message. On a
/// message-type pipe, each `write` sends its whole buffer as one message —
/// an empty `write` too, as an empty message.
///
/// # Examples
///
/// A server and a client in one event loop:
///
/// ```
/// use std::fs::OpenOptions;
/// use std::io::{Read, Write};
/// use std::os::windows::fs::OpenOptionsExt;
/// use std::os::windows::io::{FromRawHandle, IntoRawHandle};
///
/// use mio::{Events, Poll, PollOpt, Ready, Token};
/// use mio_named_pipes::NamedPipe;
///
/// # fn main() -> std::io::Result<()> {
/// const FILE_FLAG_OVERLAPPED: u32 = 0x4000_0000;
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-{}", std::process::id());
///
/// let poll = Poll::new()?;
/// let server = NamedPipe::new(&name)?;
/// poll.register(&server, Token(0), Ready::all(), PollOpt::edge())?;
///
/// let file = OpenOptions::new()
///     .read(true)
///     .write(true)
///     .custom_flags(FILE_FLAG_OVERLAPPED)
///     .open(&name)?;
/// // SAFETY: the handle was just opened with FILE_FLAG_OVERLAPPED and is owned by nothing else.
/// let mut client = unsafe { NamedPipe::from_raw_handle(file.into_raw_handle()) };
/// poll.register(&client, Token(1), Ready::all(), PollOpt::edge())?;
///
/// server.connect()?; // the client is already there
/// client.write_all(b"ping")?;
///
/// let mut events = mio::Events::with_capacity(16);
/// let mut got = Vec::new();
/// while got.len() < 4 {
///     poll.poll(&mut events, None)?;
///     let mut buf = [0u8; 16];
///     match (&server).read(&mut buf) {
///         Ok(n) => got.extend_from_slice(&buf[..n]),
///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
///         Err(e) => return Err(e),
///     }
/// }
/// assert_eq!(got, b"ping");
/// # Ok(())
/// # }
/// ```
pub struct NamedPipe {
    shared: Arc<Shared<Mio>>,
    registration: Registration,
    binding: Binding,
}

impl NamedPipe {
    /// Creates a server instance of the pipe named `addr` (`\\.\pipe\name`):
    /// duplex, byte mode, overlapped, with 64 KiB buffers each way and no
    /// limit on instances. It must be the first instance of its name
    /// (`FILE_FLAG_FIRST_PIPE_INSTANCE`), so no other process can have
    /// squatted the name, and it rejects remote clients
    /// (`PIPE_REJECT_REMOTE_CLIENTS`). Only the user this process runs as,
    /// and SYSTEM, may open it (as `ServerOptions::current_user_only`, the
    /// default, describes). Use `ServerOptions` for anything else.
    ///
    /// # Errors
    ///
    /// Fails with the OS error: `PermissionDenied` if an instance of that
    /// name exists already, `InvalidInput` if the name holds a NUL.
    ///
    /// ```
    /// use mio_named_pipes::NamedPipe;
    ///
    /// let server = NamedPipe::new(r"\\.\pipe\mio-named-pipes-doc-new").unwrap();
    /// let bad = NamedPipe::new("no\0nul").unwrap_err();
    /// assert_eq!(bad.kind(), std::io::ErrorKind::InvalidInput);
    /// # drop(server);
    /// ```
    pub fn new<A: AsRef<OsStr>>(addr: A) -> io::Result<NamedPipe> {
        Ok(NamedPipe::from_spec(PipeSpec::default_server(
            addr.as_ref(),
        )?))
    }

    /// Wraps a handle the core made ready (see `PipeSpec`).
    pub(crate) fn from_spec(spec: PipeSpec) -> NamedPipe {
        let (registration, readiness) = Registration::new2();
        NamedPipe {
            shared: Shared::new(spec, MioSink(readiness)),
            registration,
            binding: Binding::new(),
        }
    }

    /// The shared state, for the crate's other front types.
    pub(crate) fn shared(&self) -> &Arc<Shared<Mio>> {
        &self.shared
    }

    /// The port of `poll`, through this pipe's binding.
    fn port<'a>(&'a self, poll: &'a Poll, token: Token) -> MioPort<'a> {
        MioPort {
            binding: &self.binding,
            token,
            poll,
        }
    }

    /// Lets a listener's `poll` dequeue this pipe's completions (see `Shared::drive`).
    pub(crate) fn drive(
        &self,
        poll: &Poll,
        observer: Observer,
        keep_alive: Arc<dyn Send + Sync>,
    ) -> io::Result<()> {
        self.shared
            .drive(&self.port(poll, Token(0)), observer, keep_alive)
    }

    /// Waits for a client on this server instance (`ConnectNamedPipe`).
    ///
    /// Returns `Ok(())` once a client is connected — at once, if one already
    /// is. Otherwise it returns `WouldBlock`, and the pipe reports writable
    /// when a client connects (or the attempt fails: call `connect` again, or
    /// [`take_error`](NamedPipe::take_error), to learn how it ended). A
    /// client that connected and already left counts as connected; the first
    /// read then reports end of file.
    ///
    /// # Errors
    ///
    /// `WouldBlock` while not registered or while the connect is pending;
    /// otherwise the OS error of a failed connect.
    pub fn connect(&self) -> io::Result<()> {
        self.shared.connect()
    }

    /// Ends the connection with the client (`DisconnectNamedPipe`), so that
    /// this instance can [`connect`](NamedPipe::connect) the next one.
    ///
    /// Everything of the old connection is dropped: data read ahead but not
    /// yet read, data accepted by `write` but not yet written (call
    /// [`flush`](Write::flush) until it returns `Ok` first to keep it), and
    /// pending errors. Nothing of one client ever reaches the next.
    ///
    /// # Errors
    ///
    /// The OS error, for example when called on a client end.
    pub fn disconnect(&self) -> io::Result<()> {
        self.shared.disconnect()
    }

    /// Takes the error of an operation that failed in the background: a
    /// connect, or a write of data `write` had already accepted.
    ///
    /// # Errors
    ///
    /// Never fails itself; the `io::Result` matches mio's other types.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.shared.take_error())
    }

    /// Sets how long this pipe, once dropped, keeps delivering the data
    /// `write` accepted before the drop (the linger; default
    /// [`DEFAULT_LINGER`](crate::DEFAULT_LINGER), 5 s). Not a Win32 setting: the crate keeps the
    /// handle open while its last writes are in flight, for at most this
    /// long.
    ///
    /// What the peer sees: while it reads, it gets everything written before
    /// the drop, then end of file (`ERROR_BROKEN_PIPE`), as after a TCP
    /// close. If it has not read it all when the limit passes, the write
    /// still in flight is cancelled and the handle closed: the peer reads
    /// what had reached the pipe — possibly the first part of a write, or of
    /// a message — then end of file. `Duration::ZERO` cancels pending writes
    /// as soon as the pipe is dropped. The limit holds whatever the order of
    /// drops: with the `Poll` gone, or never turned again, a process-wide
    /// thread ends the linger.
    pub fn set_linger(&self, limit: Duration) {
        self.shared.set_linger(limit);
    }

    /// The linger limit (see [`set_linger`](NamedPipe::set_linger)).
    pub fn linger(&self) -> Duration {
        self.shared.linger()
    }

    /// Makes a zero-byte message from the peer visible: `read` and
    /// [`recv_msg`](NamedPipe::recv_msg) return `Ok(0)` once for it, and
    /// reading goes on after it (default `false`: empty messages are
    /// skipped). go-winio's `CloseWrite` — which Docker sends at the end of
    /// `docker attach` and `docker exec` output — is such a message, meaning
    /// the end of the stream in that direction while the pipe stays open.
    /// On a byte pipe a peer's zero-byte
    /// `WriteFile` may complete a read with no data too, and is reported the
    /// same way.
    pub fn set_report_empty_messages(&self, on: bool) {
        self.shared.set_report_empty_messages(on);
    }

    /// Receives the next whole message into `buf`, which is cleared first,
    /// and returns its length.
    ///
    /// In message read mode it returns `WouldBlock` until a whole message has
    /// arrived, however large; a message is never split or merged with
    /// another. In byte read mode it returns whatever is buffered. At end of
    /// file it returns `Ok(0)` with `buf` empty; empty messages are skipped
    /// unless [`set_report_empty_messages`](NamedPipe::set_report_empty_messages) is on.
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above, or the OS error of a failed read.
    pub fn recv_msg(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.shared.recv_msg(buf)
    }
}

impl Read for NamedPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Read for &NamedPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.shared.read(buf)
    }
}

impl Write for NamedPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

impl Write for &NamedPipe {
    /// Accepts data into the pipe's internal buffer and returns at once. On a
    /// message-type pipe the whole buffer is accepted, as one message, or
    /// nothing. A failure of data already accepted is reported by a later
    /// `write` or `flush`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.write(buf)
    }

    /// Returns `Ok` once everything accepted was handed to the pipe;
    /// `WouldBlock` until then, and the pipe reports writable when it is.
    fn flush(&mut self) -> io::Result<()> {
        self.shared.flush()
    }
}

impl Evented for NamedPipe {
    fn register(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        self.shared.bind(&self.port(poll, token))?;
        poll.register(&self.registration, token, interest, opts)?;
        self.shared.start();
        Ok(())
    }

    fn reregister(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        self.shared.check_port(&self.port(poll, token))?;
        poll.reregister(&self.registration, token, interest, opts)?;
        self.shared.refresh();
        Ok(())
    }

    fn deregister(&self, poll: &Poll) -> io::Result<()> {
        self.shared.check_port(&self.port(poll, Token(0)))?;
        poll.deregister(&self.registration)
    }
}

impl AsRawHandle for NamedPipe {
    fn as_raw_handle(&self) -> RawHandle {
        self.shared.raw()
    }
}

impl FromRawHandle for NamedPipe {
    /// Adopts a pipe handle opened with `FILE_FLAG_OVERLAPPED`: a client, or
    /// a server instance made elsewhere (connected or not; `connect` works
    /// on it either way). Byte or message mode is read from the handle.
    /// Registering it fails with `InvalidInput` if the handle is not a pipe
    /// (`GetFileType`; a file opened with `FILE_FLAG_OVERLAPPED`, say) or
    /// was not opened for overlapped I/O.
    ///
    /// # Safety
    ///
    /// `handle` must be an open pipe handle, opened for overlapped I/O,
    /// owned by nothing else, and not associated with a completion port yet.
    unsafe fn from_raw_handle(handle: RawHandle) -> NamedPipe {
        // SAFETY: the caller hands over ownership of an open handle.
        NamedPipe::from_spec(PipeSpec::adopt(unsafe {
            OwnedHandle::from_raw_handle(handle)
        }))
    }
}

impl IntoRawHandle for NamedPipe {
    /// Gives the handle up. Operations in flight are cancelled: data
    /// accepted by `write` but not yet written is lost, so call `flush`
    /// until it returns `Ok` first. The handle stays associated with the
    /// Poll's completion port, as Windows handles do for life: overlapped
    /// I/O started on it later must not queue its completions there (give
    /// the `OVERLAPPED` an event whose low bit is set, or do blocking I/O),
    /// or the Poll would take them for its own.
    fn into_raw_handle(self) -> RawHandle {
        self.shared.release()
    }
}

impl Drop for NamedPipe {
    /// Cancels a pending read or connect. Data accepted by `write` is still
    /// delivered, for at most the [linger](NamedPipe::set_linger) limit,
    /// and the handle is closed after it — whether or not the `Poll` still
    /// runs. Buffers the kernel has finished with are freed, even if the
    /// `Poll` that would have dequeued their completions is gone.
    fn drop(&mut self) {
        self.shared.forsake();
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
