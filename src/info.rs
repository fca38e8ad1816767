//! Peer identity: what a pipe says about itself and the process at the other end.

use std::io;
use std::marker::PhantomData;

use windows_sys::Win32::System::Pipes::{PIPE_SERVER_END, PIPE_TYPE_MESSAGE};

use crate::sys::info::{self, Id};
use crate::{NamedPipe, PipeMode};

/// Which end of a pipe a handle is.
///
/// ```
/// use mio_named_pipes::{ClientOptions, PipeEnd, ServerOptions};
///
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-end-{}", std::process::id());
/// let server = ServerOptions::new().create(&name).unwrap();
/// let client = ClientOptions::new().open(&name).unwrap();
/// assert_eq!(server.info().unwrap().end, PipeEnd::Server);
/// assert_eq!(client.info().unwrap().end, PipeEnd::Client);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PipeEnd {
    /// The client end.
    Client,
    /// A server instance.
    Server,
}

/// What `GetNamedPipeInfo` says about a pipe.
///
/// ```
/// use mio_named_pipes::ServerOptions;
///
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-pipeinfo-{}", std::process::id());
/// let server = ServerOptions::new().max_instances(2).create(&name).unwrap();
/// let info = server.info().unwrap();
/// assert_eq!(info.max_instances, Some(2));
/// println!("buffers: {} in, {} out", info.in_buffer_size, info.out_buffer_size);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeInfo {
    /// Byte or message type.
    pub mode: PipeMode,
    /// Which end this handle is.
    pub end: PipeEnd,
    /// The most instances of the name; `None` for no limit.
    pub max_instances: Option<u32>,
    /// The input buffer size, in bytes.
    pub in_buffer_size: u32,
    /// The output buffer size, in bytes.
    pub out_buffer_size: u32,
}

/// The calling thread acts as the pipe's client until this guard is
/// dropped, which reverts (`RevertToSelf`). Made by
/// [`NamedPipe::impersonate_client`]. It is not `Send`: impersonation
/// belongs to one thread.
///
/// See [`NamedPipe::impersonate_client`] for an example.
#[derive(Debug)]
pub struct ImpersonationGuard {
    _not_send: PhantomData<*const ()>,
}

impl Drop for ImpersonationGuard {
    fn drop(&mut self) {
        // Reverting can only fail if the thread token is gone; nothing to do then.
        let _ = info::revert();
    }
}

impl NamedPipe {
    /// The pipe's type, end, instance limit and buffer sizes.
    ///
    /// # Errors
    ///
    /// The OS error, for a handle that is not a pipe.
    ///
    /// ```
    /// use mio_named_pipes::{PipeEnd, PipeMode, ServerOptions};
    ///
    /// let server = ServerOptions::new()
    ///     .pipe_mode(PipeMode::Message)
    ///     .max_instances(3)
    ///     .create(format!(r"\\.\pipe\mio-named-pipes-doc-info-{}", std::process::id()))
    ///     .unwrap();
    /// let info = server.info().unwrap();
    /// assert_eq!((info.mode, info.end, info.max_instances), (PipeMode::Message, PipeEnd::Server, Some(3)));
    /// ```
    pub fn info(&self) -> io::Result<PipeInfo> {
        let (flags, out, inb, max) = info::info(self.shared().raw())?;
        Ok(PipeInfo {
            mode: if flags & PIPE_TYPE_MESSAGE != 0 {
                PipeMode::Message
            } else {
                PipeMode::Byte
            },
            end: if flags & PIPE_SERVER_END != 0 {
                PipeEnd::Server
            } else {
                PipeEnd::Client
            },
            // Windows reports PIPE_UNLIMITED_INSTANCES (255); Wine reports u32::MAX.
            max_instances: (max != 255 && max != u32::MAX).then_some(max),
            in_buffer_size: inb,
            out_buffer_size: out,
        })
    }

    /// The process id of the client (`GetNamedPipeClientProcessId`).
    ///
    /// # Errors
    ///
    /// The OS error, for example when no client is connected.
    ///
    /// ```
    /// use mio_named_pipes::{ClientOptions, ServerOptions};
    ///
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-cpid-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name).unwrap();
    /// let client = ClientOptions::new().open(&name).unwrap();
    /// assert_eq!(server.client_process_id().unwrap(), std::process::id());
    /// # drop(client);
    /// ```
    pub fn client_process_id(&self) -> io::Result<u32> {
        info::id(self.shared().raw(), Id::ClientProcess)
    }

    /// The process id of the server (`GetNamedPipeServerProcessId`).
    ///
    /// # Errors
    ///
    /// The OS error.
    ///
    /// ```
    /// use mio_named_pipes::{ClientOptions, ServerOptions};
    ///
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-spid-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name).unwrap();
    /// let client = ClientOptions::new().open(&name).unwrap();
    /// assert_eq!(client.server_process_id().unwrap(), std::process::id());
    /// # drop(server);
    /// ```
    pub fn server_process_id(&self) -> io::Result<u32> {
        info::id(self.shared().raw(), Id::ServerProcess)
    }

    /// The session id of the client (`GetNamedPipeClientSessionId`).
    ///
    /// # Errors
    ///
    /// The OS error.
    ///
    /// ```
    /// use mio_named_pipes::{ClientOptions, ServerOptions};
    ///
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-csid-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name).unwrap();
    /// let client = ClientOptions::new().open(&name).unwrap();
    /// // Both ends live in this process, so in one session.
    /// if let (Ok(a), Ok(b)) = (server.client_session_id(), client.server_session_id()) {
    ///     assert_eq!(a, b);
    /// }
    /// ```
    pub fn client_session_id(&self) -> io::Result<u32> {
        info::id(self.shared().raw(), Id::ClientSession)
    }

    /// The session id of the server (`GetNamedPipeServerSessionId`).
    ///
    /// # Errors
    ///
    /// The OS error.
    ///
    /// ```
    /// use mio_named_pipes::{ClientOptions, ServerOptions};
    ///
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-ssid-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name).unwrap();
    /// let client = ClientOptions::new().open(&name).unwrap();
    /// println!("server session: {:?}", client.server_session_id());
    /// # drop(server);
    /// ```
    pub fn server_session_id(&self) -> io::Result<u32> {
        info::id(self.shared().raw(), Id::ServerSession)
    }

    /// Makes the calling thread act as the client
    /// (`ImpersonateNamedPipeClient`) until the guard is dropped. Windows
    /// allows it only after data was read from the pipe, and only as far as
    /// the client's security quality of service allows (by default, the
    /// server may identify the client, not act as it).
    ///
    /// # Errors
    ///
    /// The OS error, for example on a client end or before any read.
    ///
    /// ```
    /// use std::io::Write;
    /// use mio::{Events, Poll, PollOpt, Ready, Token};
    /// use mio_named_pipes::{ClientOptions, ServerOptions};
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-impersonate-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let mut client = ClientOptions::new().open(&name)?;
    /// let poll = Poll::new()?;
    /// poll.register(&server, Token(0), Ready::all(), PollOpt::edge())?;
    /// poll.register(&client, Token(1), Ready::all(), PollOpt::edge())?;
    /// client.write_all(b"hello")?;
    /// // Windows lets the server impersonate only once it read from the pipe.
    /// let mut msg = Vec::new();
    /// let mut events = Events::with_capacity(8);
    /// while server.connect().is_err() {
    ///     poll.poll(&mut events, None)?;
    /// }
    /// while server.recv_msg(&mut msg).is_err() {
    ///     poll.poll(&mut events, None)?;
    /// }
    /// let guard = server.impersonate_client()?;
    /// // ... check access as the client ...
    /// drop(guard); // back to the server's own identity
    /// # Ok(())
    /// # }
    /// ```
    pub fn impersonate_client(&self) -> io::Result<ImpersonationGuard> {
        info::impersonate(self.shared().raw())?;
        Ok(ImpersonationGuard {
            _not_send: PhantomData,
        })
    }
}
