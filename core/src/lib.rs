//! The shared engine of Windows named pipe fronts: the IOCP state machine,
//! the Win32 layer, the options, security and peer identity, and the
//! listener's plan, written once for the `mio-named-pipes` crate (mio 0.6)
//! and the async front.
//!
//! Windows named pipes do their I/O through IOCP, a *completion* model: the
//! kernel is handed a buffer and says when it is done. Event loops and
//! async runtimes want *readiness*. The core bridges the two with internal
//! buffering; a front adds only what its event loop needs: the header of
//! each operation, the completion port that dequeues it, and where
//! readiness goes ([`Front`], in [`front`]).
//!
//! Users depend on a front, not on this crate: its builders
//! ([`ServerOptions`], [`ClientOptions`]) appear under the front's own
//! names (`mio_named_pipes::ServerOptions` is `ServerOptions<Mio>`), and
//! the types they share ([`PipeMode`], [`SecurityDescriptor`],
//! [`PipeInfo`], [`PipeEnd`], [`ImpersonationGuard`]) are re-exported by
//! the front.
//!
//! This crate compiles on every platform; its content exists on Windows
//! only (and the plain-Rust engine and listener plan natively, for their
//! tests).
#![cfg_attr(not(windows), allow(dead_code, unused_imports))]

// The engine is plain Rust: it is built on Windows, and natively for its tests.
#[cfg(any(windows, test))]
mod engine;
// The listener's decisions, plain Rust like the engine.
#[cfg(any(windows, test))]
pub mod accept_plan;
#[cfg(windows)]
mod sys;

#[cfg(windows)]
pub mod front;
#[cfg(windows)]
mod info;
#[cfg(windows)]
mod options;

#[cfg(windows)]
pub use front::Front;
#[cfg(windows)]
pub use info::{ImpersonationGuard, PipeEnd, PipeInfo};
#[cfg(windows)]
pub use options::{
    ClientOptions, PipeMode, SecurityDescriptor, ServerOptions, DEFAULT_LINGER, UNLIMITED_INSTANCES,
};
