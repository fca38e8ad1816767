//! Peer identity: the `NamedPipe` methods over the core's queries.

use std::io;

use named_pipes_core::{ImpersonationGuard, PipeInfo};

use crate::named_pipe::NamedPipe;

impl NamedPipe {
    /// The pipe's type, end, instance limit and buffer sizes
    /// (`GetNamedPipeInfo`).
    ///
    /// # Errors
    ///
    /// The OS error, for a handle that is not a pipe.
    pub fn info(&self) -> io::Result<PipeInfo> {
        self.shared().info()
    }

    /// The process id of the client (`GetNamedPipeClientProcessId`).
    ///
    /// # Errors
    ///
    /// The OS error, for example when no client is connected.
    pub fn client_process_id(&self) -> io::Result<u32> {
        self.shared().client_process_id()
    }

    /// The process id of the server (`GetNamedPipeServerProcessId`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn server_process_id(&self) -> io::Result<u32> {
        self.shared().server_process_id()
    }

    /// The session id of the client (`GetNamedPipeClientSessionId`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn client_session_id(&self) -> io::Result<u32> {
        self.shared().client_session_id()
    }

    /// The session id of the server (`GetNamedPipeServerSessionId`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn server_session_id(&self) -> io::Result<u32> {
        self.shared().server_session_id()
    }

    /// Makes the calling thread act as the client
    /// (`ImpersonateNamedPipeClient`) until the guard is dropped. Windows
    /// allows it only after data was read from the pipe, and only as far as
    /// the client's security quality of service allows. Do not hold the
    /// guard across an `.await`: the task may move to another thread, and
    /// on a single-threaded executor every task that runs meanwhile runs as
    /// the client (see [`ImpersonationGuard`]);
    /// [`with_client_identity`](NamedPipe::with_client_identity) cannot.
    ///
    /// # Errors
    ///
    /// The OS error, for example on a client end or before any read.
    pub fn impersonate_client(&self) -> io::Result<ImpersonationGuard> {
        self.shared().impersonate_client()
    }

    /// Runs `f` with the calling thread acting as the client
    /// (`ImpersonateNamedPipeClient`), and reverts when `f` returns or
    /// panics. `f` is a plain closure, not a future: nothing can `.await`
    /// while the thread is the client, so no other task ever runs as it,
    /// whatever the executor. If reverting fails the process aborts (see
    /// [`ImpersonationGuard`]).
    ///
    /// # Errors
    ///
    /// The OS error of impersonating (on a client end, before any read);
    /// `f` does not run then.
    ///
    /// ```no_run
    /// use async_named_pipes::NamedPipe;
    ///
    /// # async fn serve(server: NamedPipe) -> std::io::Result<()> {
    /// let mut request = Vec::new();
    /// server.recv_msg(&mut request).await?; // Windows needs a read first
    /// let allowed = server.with_client_identity(|| {
    ///     // ... open the file the client asked for, as the client ...
    ///     std::fs::metadata(r"C:\some\file").is_ok()
    /// })?;
    /// # let _ = allowed;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_client_identity<R>(&self, f: impl FnOnce() -> R) -> io::Result<R> {
        self.shared().with_client_identity(f)
    }
}
