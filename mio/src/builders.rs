//! The builders, as this front names them: the core's, making this
//! front's pipes.

use crate::glue::Mio;

/// Creates server instances (`CreateNamedPipeW`) as [`NamedPipe`]s, and
/// [`PipeListener`]s; the builder lives in `named-pipes-core`, shared with
/// the async front.
///
/// Defaults: duplex, byte mode, 64 KiB buffers each way, unlimited
/// instances, remote clients rejected, only this process's user (and
/// SYSTEM) may open it
/// ([`current_user_only`](named_pipes_core::ServerOptions::current_user_only)),
/// not necessarily the first instance
/// (a [`PipeListener`] always makes its first one so). Every instance is
/// opened for overlapped I/O. [`create`](named_pipes_core::ServerOptions::create)
/// returns a [`NamedPipe`]: call [`NamedPipe::connect`] once it is
/// registered. [`listen`](named_pipes_core::ServerOptions::listen) returns a
/// [`PipeListener`]. A pipe's linger is set with
/// [`linger`](named_pipes_core::ServerOptions::linger), default
/// [`DEFAULT_LINGER`](crate::DEFAULT_LINGER); [`NamedPipe::set_linger`] says
/// what the peer sees.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mio_named_pipes::{PipeMode, ServerOptions, UNLIMITED_INSTANCES};
///
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-options-{}", std::process::id());
/// let server = ServerOptions::new()
///     .pipe_mode(PipeMode::Message)
///     .first_pipe_instance(true)
///     .max_instances(UNLIMITED_INSTANCES)
///     .linger(Duration::from_millis(500))
///     .create(&name)
///     .unwrap();
/// let info = server.info().unwrap();
/// assert_eq!((info.mode, info.max_instances), (PipeMode::Message, None));
/// assert_eq!(server.linger(), Duration::from_millis(500));
///
/// // Bad options are refused with `InvalidInput`.
/// let e = ServerOptions::new().max_instances(0).create(r"\\.\pipe\x").unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
///
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-listen-{}", std::process::id());
/// let listener = ServerOptions::new().listen(&name, 8).unwrap();
/// # drop((server, listener));
/// ```
///
/// [`NamedPipe`]: crate::NamedPipe
/// [`NamedPipe::connect`]: crate::NamedPipe::connect
/// [`NamedPipe::set_linger`]: crate::NamedPipe::set_linger
/// [`PipeListener`]: crate::PipeListener
pub type ServerOptions = named_pipes_core::ServerOptions<Mio>;

/// Opens clients of a named pipe (`CreateFileW`), for overlapped I/O, as
/// [`NamedPipe`]s; the builder lives in `named-pipes-core`, shared with the
/// async front.
///
/// Defaults: read and write access, byte read mode, the server may
/// identify the client but not act as it (`SECURITY_SQOS_PRESENT |
/// SECURITY_IDENTIFICATION`), no waiting when every instance is busy, any
/// owner of the pipe accepted
/// ([`current_user_only`](named_pipes_core::ClientOptions::current_user_only)
/// and [`expect_owner`](named_pipes_core::ClientOptions::expect_owner) check
/// who serves).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mio_named_pipes::{ClientOptions, ServerOptions};
///
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-client-{}", std::process::id());
/// let server = ServerOptions::new().create(&name).unwrap();
/// let client = ClientOptions::new()
///     .busy_timeout(Some(Duration::from_secs(1)))
///     .open(&name)
///     .unwrap();
///
/// let e = ClientOptions::new().open(r"\\.\pipe\mio-named-pipes-nobody-here").unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
/// # drop((server, client));
/// ```
///
/// [`NamedPipe`]: crate::NamedPipe
pub type ClientOptions = named_pipes_core::ClientOptions<Mio>;
