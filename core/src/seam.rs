//! The seam between the core and its fronts: the traits a front
//! implements (published in [`crate::front`]).

use std::ffi::{c_void, OsStr};
use std::io;
use std::os::windows::io::RawHandle;

use crate::engine::Readiness;
use crate::options::ServerOptions;
use crate::sys::kernel::PipeSpec;

/// One front: the types a front makes of the core's pipes, and how the
/// core's operations meet the front's completion port.
///
/// # Safety
///
/// [`Front::Header`] must begin with the `OVERLAPPED` the kernel writes:
/// [`Front::overlapped`] returns the header's own address (the core checks
/// this for every operation and panics otherwise). The header may be sent
/// to and shared with other threads: nothing in it but its `OVERLAPPED`
/// changes while the operation is in flight, and only the kernel writes
/// that.
pub unsafe trait Front: Sized + 'static {
    /// What each operation's allocation starts with.
    type Header: 'static;
    /// Where a pipe's readiness goes.
    type Sink: Sink;
    /// The front's pipe, made by [`ServerOptions::create`] and
    /// [`ClientOptions::open`](crate::ClientOptions::open).
    type Pipe;
    /// The front's listener, made by [`ServerOptions::listen`].
    type Listener;

    /// A new header, for one operation.
    fn header() -> Self::Header;
    /// The `OVERLAPPED` inside `header`, as the pointer the kernel gets.
    fn overlapped(header: &Self::Header) -> *mut c_void;
    /// Makes the front's pipe of a handle (see [`PipeSpec`]), with
    /// [`Shared::new`](crate::front::Shared::new).
    fn pipe(spec: PipeSpec) -> Self::Pipe;
    /// Makes the front's listener: `options` are checked, `pending` is 1
    /// or more and within the instance limit. Its instances come from
    /// [`server_instance`].
    ///
    /// # Errors
    ///
    /// The errors of creating the first instance.
    fn listen(
        options: ServerOptions<Self>,
        addr: &OsStr,
        pending: usize,
    ) -> io::Result<Self::Listener>;
}

/// Where a pipe's readiness goes. Called under the pipe's lock: it must
/// not call back into the pipe.
pub trait Sink: Send + 'static {
    /// The readiness last set.
    fn readiness(&self) -> Readiness;
    /// Sets the readiness (also unchanged, for a new registration).
    fn set_readiness(&self, ready: Readiness);
}

/// How a front ties a pipe handle to its completion port.
pub trait Port {
    /// Associates `handle` with the port, once for the handle's life; every
    /// operation the core starts on it carries the front's header.
    ///
    /// # Errors
    ///
    /// The OS error of the association.
    fn associate(&self, handle: RawHandle) -> io::Result<()>;
    /// Checks that `handle`, associated before, is associated with this port.
    ///
    /// # Errors
    ///
    /// An error saying the handle belongs to another port.
    fn check(&self, handle: RawHandle) -> io::Result<()>;
}

/// A new server instance of `addr` made with `options` for a front's
/// listener; `first` adds `FILE_FLAG_FIRST_PIPE_INSTANCE`.
///
/// # Errors
///
/// The errors of [`ServerOptions::create`].
pub fn server_instance<F: Front>(
    options: &ServerOptions<F>,
    addr: &OsStr,
    first: bool,
) -> io::Result<PipeSpec> {
    options.spec(addr, first)
}
