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
mod info;
#[cfg(windows)]
mod options;

#[cfg(windows)]
pub mod front {
    //! What a front (the mio 0.6 crate, an async runtime's crate) plugs into
    //! the core, and what the core offers fronts in return. Users of a front
    //! need none of this.
    //!
    //! A front decides three things, through [`Front`]:
    //!
    //! - the header each operation's allocation starts with: an `OVERLAPPED`
    //!   first, and whatever its completion port's dequeuing needs after it
    //!   (mio 0.6's `Overlapped` adds the callback its `Poll` runs);
    //! - how a dequeued completion reaches the core: by calling [`complete`]
    //!   with the `OVERLAPPED` pointer, the one place a raw pointer turns back
    //!   into an operation;
    //! - where readiness goes ([`Sink`]): a mio `SetReadiness`, or task wakers.
    //!
    //! The core keeps everything else: the engine, the Win32 calls, the rules
    //! of kernel memory and cleanup (the linger and the reaper), the options
    //! and the listener's plan ([`crate::accept_plan`]).

    pub use crate::engine::Readiness;
    pub use crate::sys::front::PipeSpec;
    pub use crate::sys::front::{Front, Instances, Port, Sink};
    pub use crate::sys::kernel::{Observer, Shared};
    pub use crate::sys::op::complete;
    pub use crate::sys::port::{BareHeader, Driver, BATCH};
}

#[cfg(windows)]
pub use info::{ImpersonationGuard, PipeEnd, PipeInfo};
#[cfg(windows)]
pub use options::{
    ClientOptions, PipeMode, PipeOwner, SecurityDescriptor, ServerOptions, DEFAULT_MAX_MESSAGE,
    DEFAULT_MAX_READ, DEFAULT_WRITE_QUEUE, UNLIMITED_INSTANCES,
};
#[cfg(windows)]
pub use sys::front::Front;
#[cfg(windows)]
pub use sys::front::DEFAULT_LINGER;
#[cfg(windows)]
pub use sys::stdio::take_stdout;
#[cfg(windows)]
pub use sys::tcp::{tcp_peer, TcpPeer};
