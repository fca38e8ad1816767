//! The builders, as this front names them: the core's, making this
//! front's pipes.

use crate::front::AsyncFront;

/// Creates server instances (`CreateNamedPipeW`) as [`NamedPipe`]s; the
/// builder lives in `named-pipes-core`, shared with mio-named-pipes.
///
/// Defaults: duplex, byte mode, 64 KiB buffers each way, unlimited
/// instances, remote clients rejected, only this process's user (and
/// SYSTEM) may open it
/// ([`current_user_only`](named_pipes_core::ServerOptions::current_user_only)),
/// not necessarily the first instance.
/// Every instance is opened for overlapped I/O. Await
/// [`NamedPipe::connect`] on the instance [`create`](named_pipes_core::ServerOptions::create)
/// returns. [`listen`](named_pipes_core::ServerOptions::listen) returns a
/// [`PipeListener`](crate::PipeListener).
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
/// # Ok(())
/// # }
/// ```
///
/// [`NamedPipe`]: crate::NamedPipe
/// [`NamedPipe::connect`]: crate::NamedPipe::connect
pub type ServerOptions = named_pipes_core::ServerOptions<AsyncFront>;

/// Opens clients of a named pipe (`CreateFileW`), for overlapped I/O, as
/// [`NamedPipe`]s; the builder lives in `named-pipes-core`, shared with
/// mio-named-pipes.
///
/// [`open`](named_pipes_core::ClientOptions::open) blocks the calling
/// thread for up to the [`busy_timeout`](named_pipes_core::ClientOptions::busy_timeout)
/// while every instance is busy (by default it does not wait: it fails with
/// `ERROR_PIPE_BUSY`); [`NamedPipe::open`] waits without blocking the task's
/// thread.
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
