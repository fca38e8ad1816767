//! Peer identity: the `NamedPipe` methods over the core's queries.

use std::io;

pub use named_pipes_core::ImpersonationGuard;
/// ```
/// use mio_named_pipes::{ClientOptions, PipeEnd, ServerOptions};
///
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-end-{}", std::process::id());
/// let server = ServerOptions::new().create(&name).unwrap();
/// let client = ClientOptions::new().open(&name).unwrap();
/// assert_eq!(server.info().unwrap().end, PipeEnd::Server);
/// assert_eq!(client.info().unwrap().end, PipeEnd::Client);
/// ```
pub use named_pipes_core::PipeEnd;
/// ```
/// use mio_named_pipes::ServerOptions;
///
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-pipeinfo-{}", std::process::id());
/// let server = ServerOptions::new().max_instances(2).create(&name).unwrap();
/// let info = server.info().unwrap();
/// assert_eq!(info.max_instances, Some(2));
/// println!("buffers: {} in, {} out", info.in_buffer_size, info.out_buffer_size);
/// ```
pub use named_pipes_core::PipeInfo;

use crate::named_pipe::NamedPipe;

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
        self.shared().info()
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
        self.shared().client_process_id()
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
        self.shared().server_process_id()
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
        self.shared().client_session_id()
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
        self.shared().server_session_id()
    }

    /// Makes the calling thread act as the client
    /// (`ImpersonateNamedPipeClient`) until the guard is dropped. Windows
    /// allows it only after data was read from the pipe, and only as far as
    /// the client's security quality of service allows (by default, the
    /// server may identify the client, not act as it). The guard is not
    /// `Send` (impersonation belongs to the thread that took it), and its
    /// drop aborts the process if reverting fails (see
    /// [`ImpersonationGuard`]); [`with_client_identity`](NamedPipe::with_client_identity)
    /// scopes it to a closure.
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
        self.shared().impersonate_client()
    }

    /// Runs `f` with the calling thread acting as the client
    /// (`ImpersonateNamedPipeClient`), and reverts when `f` returns or
    /// panics: the form of [`impersonate_client`](NamedPipe::impersonate_client)
    /// that cannot leak the client's identity past `f`. If reverting fails
    /// the process aborts (see [`ImpersonationGuard`]).
    ///
    /// # Errors
    ///
    /// The OS error of impersonating (on a client end, before any read);
    /// `f` does not run then.
    ///
    /// ```
    /// use mio_named_pipes::{ClientOptions, ServerOptions};
    ///
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-identity-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name).unwrap();
    /// let client = ClientOptions::new().open(&name).unwrap();
    /// // A client end has no client to act as: `f` does not run.
    /// assert!(client.with_client_identity(|| unreachable!()).is_err());
    /// # drop(server);
    /// ```
    pub fn with_client_identity<R>(&self, f: impl FnOnce() -> R) -> io::Result<R> {
        self.shared().with_client_identity(f)
    }
}
