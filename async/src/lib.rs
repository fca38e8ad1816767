//! Asynchronous Windows named pipes for any executor (tokio, smol,
//! async-std, futures), on the engine of mio-named-pipes.
//!
//! Windows named pipes do their I/O through IOCP: the kernel is handed a
//! buffer and says when it is done. This crate drives the engine of
//! `named-pipes-core` (the one mio-named-pipes runs on) from a completion
//! port of its own: one per process, created with the first pipe, drained
//! by one thread in batches; a pipe's readiness wakes the task waiting on
//! it. It starts and needs no runtime: its futures run on any executor.
//!
//! [`NamedPipe`] is both ends: server instances from [`ServerOptions`]
//! (await [`NamedPipe::connect`] for a client, [`NamedPipe::disconnect`] to
//! serve the next), clients from [`ClientOptions`] or [`NamedPipe::open`]
//! (which waits for a busy pipe off the task's thread). Whole messages
//! arrive with [`NamedPipe::recv_msg`]. With feature `tokio`, `NamedPipe`
//! and `&NamedPipe` implement tokio's `AsyncRead` and `AsyncWrite`; with
//! feature `futures-io`, those of `futures-io`. The peer methods
//! ([`NamedPipe::info`], the process and session ids,
//! [`NamedPipe::impersonate_client`]) are the core's.
//!
//! For code written against `tokio::net::windows::named_pipe`, the names
//! are the same: [`NamedPipeServer`] and [`NamedPipeClient`] (both
//! [`NamedPipe`]), [`ServerOptions`], [`ClientOptions`], [`PipeMode`],
//! [`NamedPipe::ready`] (taking tokio's `Interest` with feature `tokio`),
//! `readable`, `writable`, `try_read`, `try_write` and the rest; tokio's own
//! `tests/net_named_pipe.rs` runs against this crate with only its import
//! changed.
//!
//! [`PipeListener`] keeps instances listening and hands out connected
//! pipes with `accept().await`; with feature `futures-core`, it is a
//! `Stream` of them too.
//!
//! This crate compiles on every platform; its content exists on Windows
//! only.
#![cfg_attr(not(windows), allow(dead_code, unused_imports))]

#[cfg(windows)]
mod builders;
#[cfg(windows)]
mod front;
#[cfg(windows)]
mod io;
#[cfg(windows)]
mod listener;
#[cfg(windows)]
mod named_pipe;
#[cfg(windows)]
mod open;
#[cfg(windows)]
mod peer;
mod ready;
#[cfg(windows)]
mod split;
mod waiters;

#[cfg(windows)]
pub use builders::{ClientOptions, ServerOptions};
#[cfg(windows)]
pub use front::AsyncFront;
#[cfg(windows)]
pub use listener::{Accept, PipeListener, DEFAULT_PENDING};
#[cfg(windows)]
pub use named_pipe::{Connect, Drain, NamedPipe, ReadyFuture, RecvMsg};
#[cfg(windows)]
pub use named_pipes_core::{
    is_busy, ImpersonationGuard, PipeEnd, PipeInfo, PipeMode, PipeOwner, SecurityDescriptor,
    DEFAULT_LINGER, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_READ, DEFAULT_WRITE_QUEUE, ERROR_PIPE_BUSY,
    UNLIMITED_INSTANCES,
};
#[cfg(windows)]
pub use open::Open;
pub use ready::{Interest, Ready};
#[cfg(windows)]
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};

/// tokio's name for a server instance: here both ends are a [`NamedPipe`]
/// (on a client, `connect` resolves at once and `disconnect` fails with the
/// OS error), so code written for `tokio::net::windows::named_pipe` keeps
/// its type names.
#[cfg(windows)]
pub type NamedPipeServer = NamedPipe;

/// tokio's name for a client: a [`NamedPipe`] (see [`NamedPipeServer`]).
#[cfg(windows)]
pub type NamedPipeClient = NamedPipe;

/// The quick start of this crate's README, compiled for Windows as
/// doc-tests (the repository's README is compiled by the mio front's, whose
/// tests depend on this crate too).
#[cfg(all(doctest, windows, feature = "tokio"))]
#[doc = include_str!("../README.md")]
struct ReadmeQuickStart;

// The migration guide's code, before and after, compiles.
#[cfg(all(doctest, windows, feature = "tokio"))]
#[doc = include_str!("../../docs/migrating-from-tokio.md")]
mod migrating_from_tokio {}
