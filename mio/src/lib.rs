//! Asynchronous Windows named pipes for [mio] 0.6.
//!
//! Windows named pipes do their I/O through IOCP, a *completion* model: the
//! kernel is handed a buffer and says when it is done. mio is a *readiness*
//! model: it says when an operation would not block. This crate bridges the
//! two with internal buffering. [`NamedPipe`] implements [`Read`] and
//! [`Write`] (also for `&NamedPipe`) and `mio::Evented`; a server instance
//! [`connect`](NamedPipe::connect)s a client and reports it as a writable
//! event, and [`disconnect`](NamedPipe::disconnect)s it to serve the next.
//! Clients are opened with [`std::fs::OpenOptions`] and
//! `FILE_FLAG_OVERLAPPED`, then adopted with
//! [`FromRawHandle`](std::os::windows::io::FromRawHandle).
//!
//! Until a pipe is registered with a `Poll`, every I/O call returns
//! `WouldBlock`.
//!
//! Beyond `NamedPipe::new`, the crate has builders with secure defaults:
//! `ServerOptions` creates server instances (byte or message
//! `PipeMode`, access directions, instance limits, buffer sizes, a
//! `SecurityDescriptor` from SDDL), and `ClientOptions` opens clients
//! (access, read mode, security quality of service, waiting while every
//! instance is busy). `PipeListener` keeps several instances listening
//! and hands out connected pipes, like a `TcpListener`, skipping clients
//! that already left. `NamedPipe::info` and the peer methods tell the
//! pipe's mode and buffers, the process and session ids of either end,
//! and let a server impersonate its client (`ImpersonationGuard`).
//!
//! This crate compiles on every platform; its content exists on Windows
//! only. The `mio-06` feature (on by default) carries the mio 0.6
//! integration.
//!
//! The engine behind it (the IOCP state machine, the Win32 calls, the
//! options, security and peer identity) lives in the crate
//! `named-pipes-core`, shared with the async front; depend on this crate,
//! not on that one.
//!
//! [mio]: https://docs.rs/mio/0.6
//! [`Read`]: std::io::Read
//! [`Write`]: std::io::Write
#![cfg_attr(
    not(all(windows, feature = "mio-06")),
    allow(dead_code, unused_imports)
)]

// The engine, the Win32 layer, the options and peer identity live in
// `named_pipes_core`, shared with the async front; this crate is the mio
// 0.6 front over it.
#[cfg(all(windows, feature = "mio-06"))]
mod builders;
#[cfg(all(windows, feature = "mio-06"))]
mod front;
#[cfg(all(windows, feature = "mio-06"))]
mod glue;
#[cfg(all(windows, feature = "mio-06"))]
mod listener;
#[cfg(all(windows, feature = "mio-06"))]
mod named_pipe;
#[cfg(all(windows, feature = "mio-06"))]
mod peer;

#[cfg(all(windows, feature = "mio-06"))]
pub use builders::{ClientOptions, ServerOptions};
#[cfg(all(windows, feature = "mio-06"))]
pub use listener::{PipeListener, DEFAULT_PENDING};
#[cfg(all(windows, feature = "mio-06"))]
pub use named_pipe::NamedPipe;
#[cfg(all(windows, feature = "mio-06"))]
pub use named_pipes_core::{
    PipeMode, PipeOwner, SecurityDescriptor, DEFAULT_LINGER, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_READ,
    DEFAULT_WRITE_QUEUE, UNLIMITED_INSTANCES,
};
#[cfg(all(windows, feature = "mio-06"))]
pub use peer::{ImpersonationGuard, PipeEnd, PipeInfo};

/// The quick starts of the repository's README (both fronts) and of this
/// crate's README, compiled for Windows as doc-tests: a quick start that no
/// longer builds fails the tests.
#[cfg(all(doctest, windows, feature = "mio-06"))]
#[doc = include_str!("../../README.md")]
#[doc = include_str!("../README.md")]
struct ReadmeQuickStarts;
