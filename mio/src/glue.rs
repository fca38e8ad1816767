//! The mio 0.6 pieces the core drives: the front's marker type, where a
//! pipe's readiness goes (a `SetReadiness`), and a Poll's completion port
//! (through a `Binding`). The `Front` impl that ties them to `NamedPipe`
//! and `PipeListener` is in `front.rs`.

use std::io;
use std::os::windows::io::{AsRawHandle, RawHandle};

use mio::windows::Binding;
use mio::{Poll, Ready, SetReadiness, Token};
use named_pipes_core::front::{Port, Readiness, Sink};

/// The mio 0.6 front, as the core's options know it: they make
/// `NamedPipe`s and `PipeListener`s (its `Front` impl is in `front.rs`).
#[derive(Clone, Copy, Debug)]
pub struct Mio;

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
