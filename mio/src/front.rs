//! The mio 0.6 front as the core sees it: each operation starts with
//! mio's `Overlapped` header, whose callback the Poll runs when it dequeues
//! the completion and which hands it to the core; the core's options make
//! `NamedPipe`s and `PipeListener`s.

use std::ffi::c_void;
use std::io;

use mio::windows::Overlapped;
use named_pipes_core::front::{self, Instances, PipeSpec};
use named_pipes_core::Front;

use crate::glue::{Mio, MioSink};
use crate::listener::PipeListener;
use crate::named_pipe::NamedPipe;

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
