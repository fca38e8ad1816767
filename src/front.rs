//! The mio 0.6 glue: what this front plugs into the core. Each operation
//! starts with mio's `Overlapped` header, whose callback the Poll runs when
//! it dequeues the completion; a handle is associated with a Poll through a
//! `Binding`; readiness goes to a `SetReadiness`.

use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, RawHandle};

use mio::windows::{Binding, Overlapped};
use mio::{Poll, Ready, SetReadiness, Token};
use named_pipes_core::front::{self, Instances, PipeSpec, Port, Readiness, Sink};
use named_pipes_core::Front;

use crate::{NamedPipe, PipeListener};

/// The mio 0.6 front, as the core's options know it: they make
/// [`NamedPipe`]s and [`PipeListener`]s.
#[derive(Clone, Copy, Debug)]
pub struct Mio;

// SAFETY: mio's `Overlapped` is `repr(C)` with the `OVERLAPPED` first (mio's
// own layout contract: its Poll casts each dequeued `OVERLAPPED` pointer back
// to the header), so `overlapped` returns the header's own address; besides
// the `OVERLAPPED`, which only the kernel writes while the operation is in
// flight, it holds a function pointer that never changes.
unsafe impl Front for Mio {
    type Header = Overlapped;
    type Sink = MioSink;
    type Pipe = NamedPipe;
    type Listener = PipeListener;

    fn header() -> Overlapped {
        Overlapped::new(|entry| {
            // SAFETY: mio runs this callback only for an `OVERLAPPED` inside
            // a header made here, that is, of an operation the core started
            // for this front; the Poll dequeues each exactly once.
            unsafe { front::complete::<Mio>(entry.lpOverlapped.cast()) }
        })
    }

    fn overlapped(header: &Overlapped) -> *mut c_void {
        header.as_mut_ptr().cast()
    }

    fn pipe(spec: PipeSpec) -> NamedPipe {
        NamedPipe::from_spec(spec)
    }

    fn listen(instances: Instances, pending: usize) -> io::Result<PipeListener> {
        PipeListener::new(instances, pending)
    }
}

/// A pipe's readiness, as mio's `SetReadiness`.
#[derive(Debug)]
pub struct MioSink(pub(crate) SetReadiness);

impl Sink for MioSink {
    fn readiness(&self) -> Readiness {
        let ready = self.0.readiness();
        Readiness {
            readable: ready.is_readable(),
            writable: ready.is_writable(),
        }
    }

    fn set_readiness(&self, r: Readiness) {
        let mut ready = Ready::empty();
        if r.readable {
            ready |= Ready::readable();
        }
        if r.writable {
            ready |= Ready::writable();
        }
        // Fails only if the `Registration` is gone, with the pipe.
        let _ = self.0.set_readiness(ready);
    }
}

/// A Poll's completion port, through a pipe's `Binding`.
pub(crate) struct MioPort<'a> {
    pub(crate) binding: &'a Binding,
    pub(crate) token: Token,
    pub(crate) poll: &'a Poll,
}

impl Port for MioPort<'_> {
    fn associate(&self, handle: RawHandle) -> io::Result<()> {
        // SAFETY: every operation the core starts on this handle passes an
        // `OVERLAPPED` that lives inside mio's `Overlapped` header (`Mio`'s
        // `Front::Header`), as the Poll requires.
        unsafe {
            self.binding
                .register_handle(&RawRef(handle), self.token, self.poll)
        }
    }

    fn check(&self, handle: RawHandle) -> io::Result<()> {
        // SAFETY: only checks that `poll` is the Poll registered before.
        unsafe { self.binding.deregister_handle(&RawRef(handle), self.poll) }
    }
}

/// A handle value for mio's `&dyn AsRawHandle` parameters.
struct RawRef(RawHandle);

impl AsRawHandle for RawRef {
    fn as_raw_handle(&self) -> RawHandle {
        self.0
    }
}
