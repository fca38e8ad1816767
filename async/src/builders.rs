//! The builders, as this front names them: the core's, making this
//! front's pipes.

use crate::front::AsyncFront;

/// Creates server instances (`CreateNamedPipeW`) as [`NamedPipe`]s, and
/// [`PipeListener`]s; the builder lives in `named-pipes-core`, shared with
/// mio-named-pipes, and its methods' examples read as they do here.
///
/// Defaults: duplex, byte mode, 64 KiB buffers each way, unlimited
/// instances, remote clients rejected, only this process's user (and
/// SYSTEM) may open it
/// ([`current_user_only`](named_pipes_core::ServerOptions::current_user_only)),
/// not necessarily the first instance. Every instance is opened for
/// overlapped I/O.
///
/// | method | here |
/// | --- | --- |
/// | [`create`](named_pipes_core::ServerOptions::create) | a [`NamedPipe`] server instance: await [`NamedPipe::connect`] for its client |
/// | [`listen`](named_pipes_core::ServerOptions::listen) | a [`PipeListener`]: `accept().await` hands out connected pipes, any number of instances listening |
/// | [`write_queue`](named_pipes_core::ServerOptions::write_queue) | what a write queues behind a write in flight; a write with nothing queued takes the whole buffer, and a flush never waits for the peer |
/// | [`linger`](named_pipes_core::ServerOptions::linger) | how long a dropped pipe may go without progress delivering what it accepted ([`DEFAULT_LINGER`](crate::DEFAULT_LINGER), 2 minutes) |
///
/// # Errors
///
/// `create` and `listen` fail with `InvalidInput` for a name not of the
/// form `\\.\pipe\<name>` (the message names the form), and with
/// `ERROR_PIPE_BUSY` (OS error 231, [`is_busy`](crate::is_busy)) when
/// `max_instances` instances are open already.
///
/// # Examples
///
/// ```no_run
/// use async_named_pipes::{PipeMode, ServerOptions};
///
/// # async fn run() -> std::io::Result<()> {
/// let server = ServerOptions::new()
///     .pipe_mode(PipeMode::Message)
///     .first_pipe_instance(true)
///     .create(r"\\.\pipe\async-named-pipes-doc-server")?;
/// server.connect().await?;
/// let mut msg = Vec::new();
/// server.recv_msg(&mut msg).await?;
///
/// // A server loop: a listener keeps instances listening.
/// let listener = ServerOptions::new().listen(r"\\.\pipe\async-named-pipes-doc-loop", 4)?;
/// loop {
///     let pipe = listener.accept().await?;
///     # drop(pipe);
///     // hand `pipe` to a task of its own
/// }
/// # }
/// ```
///
/// [`NamedPipe`]: crate::NamedPipe
/// [`NamedPipe::connect`]: crate::NamedPipe::connect
/// [`PipeListener`]: crate::PipeListener
pub type ServerOptions = named_pipes_core::ServerOptions<AsyncFront>;

/// Opens clients of a named pipe (`CreateFileW`), for overlapped I/O, as
/// [`NamedPipe`]s; the builder lives in `named-pipes-core`, shared with
/// mio-named-pipes, and its methods' examples read as they do here.
///
/// | method | here |
/// | --- | --- |
/// | [`open`](named_pipes_core::ClientOptions::open) | opens at once; while every instance is busy it blocks the calling thread for up to the `busy_timeout` (by default it does not wait) |
/// | [`NamedPipe::open`] | the same, as a future: waits for a busy pipe off the task's thread; cancel safe |
/// | [`busy_timeout`](named_pipes_core::ClientOptions::busy_timeout) | how long either waits while every instance is busy; `Duration::MAX`: for ever |
///
/// # Errors
///
/// `NotFound` with no pipe of that name; `ERROR_PIPE_BUSY` (OS error 231,
/// [`is_busy`](crate::is_busy)) when every instance is busy and no
/// `busy_timeout` is set, `TimedOut` once a `busy_timeout` passed;
/// `InvalidInput` for a name not of the form `\\.\pipe\<name>` or
/// `\\<server>\pipe\<name>` (the message names the form).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use async_named_pipes::{ClientOptions, NamedPipe};
/// use tokio::io::AsyncWriteExt;
///
/// # async fn run() -> std::io::Result<()> {
/// let name = r"\\.\pipe\async-named-pipes-doc-server";
/// let mut client = ClientOptions::new().open(name)?;
/// client.write_all(b"hello").await?;
///
/// // Waiting up to a second for a free instance, off the task's thread:
/// let mut options = ClientOptions::new();
/// options.busy_timeout(Some(Duration::from_secs(1)));
/// let other = NamedPipe::open(&options, name).await?;
/// # drop(other);
/// # Ok(())
/// # }
/// ```
///
/// [`NamedPipe`]: crate::NamedPipe
/// [`NamedPipe::open`]: crate::NamedPipe::open
pub type ClientOptions = named_pipes_core::ClientOptions<AsyncFront>;
