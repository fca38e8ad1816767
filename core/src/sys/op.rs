//! One overlapped operation, owned through one type.
//!
//! Each operation is its own allocation, an [`OpCell`] behind an `Arc`:
//! its `OVERLAPPED` (inside the front's header), its buffer, and the pipe
//! it belongs to. While the kernel may still write it, the kernel holds one
//! reference of its own, lent by [`Op::lend`] as the `OVERLAPPED` pointer
//! and taken back by [`reclaim`] — the one place a raw pointer turns back
//! into an `Arc`, reached from the front's port through [`complete`].
//! Memory the kernel may write is therefore never freed early: if a
//! completion is never dequeued (the port is gone), the cell leaks instead.
//!
//! Its buffer, though, need not leak with it. Once the kernel has finished
//! an operation (the status in its `OVERLAPPED` is no longer
//! `STATUS_PENDING`: [`Op::kernel_done`]) the kernel touches neither the
//! buffer nor the `OVERLAPPED` again; only a live port may still hand the
//! `OVERLAPPED` back. So the buffer of a finished operation that the engine
//! forgot (cancelled by a drop, a disconnect or the linger's end) may be
//! freed by whoever finds it finished first ([`Op::free_buffer`]); the cell
//! itself — a small header — stays until the port hands it back, or leaks
//! with a port that never will.

use std::ffi::c_void;
use std::fmt;
use std::io;
use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use windows_sys::Win32::Foundation::{ERROR_IO_PENDING, ERROR_MORE_DATA, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
use windows_sys::Win32::System::Pipes::ConnectNamedPipe;
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

use super::front::{Front, Instances, PipeSpec, Sink};
use super::kernel::Shared;
use super::port::BareHeader;
use crate::engine::table::OpKind;
use crate::engine::{Outcome, Start};

/// The allocation of one operation.
///
/// `repr(C)` with `header` first: the kernel and the front's port know the
/// operation only by the address of the `OVERLAPPED`, which is the address
/// of `header` (the front's contract, checked in [`Op::new`]: its header
/// begins with the `OVERLAPPED`; mio's `Overlapped` does), and so of the
/// cell.
#[repr(C)]
pub(crate) struct OpCell<F: Front> {
    /// The front's header: the `OVERLAPPED`, then what the port needs (mio:
    /// the callback its Poll runs when it dequeues it).
    header: F::Header,
    /// Which call this is.
    kind: OpKind,
    /// The data: written by the kernel (reads, into the spare capacity) or
    /// read by it (writes) while the operation is in flight. The lock is
    /// never held while the kernel has the buffer; it decides who takes the
    /// buffer once the kernel is done: the dequeued completion, or
    /// [`Op::free_buffer`].
    buf: Mutex<Vec<u8>>,
    /// The pipe, told of the outcome.
    owner: Arc<Shared<F>>,
}

/// A front the layout check below (and the driver's tests) is made with:
/// its header is a bare `OVERLAPPED`, the smallest a front may have.
pub(crate) struct Probe;

// SAFETY: `BareHeader` is the `OVERLAPPED` alone, and `overlapped` returns
// its address.
unsafe impl Front for Probe {
    type Header = BareHeader;
    type Sink = NoSink;
    type Pipe = ();
    type Listener = ();
    fn header() -> BareHeader {
        BareHeader::new()
    }
    fn overlapped(header: &BareHeader) -> *mut c_void {
        header.as_ptr()
    }
    fn pipe(_: PipeSpec) {}
    fn listen(_: Instances, _: usize) -> io::Result<()> {
        Ok(())
    }
}

/// The readiness of nothing, for [`Probe`].
pub(crate) struct NoSink;

impl Sink for NoSink {
    fn readiness(&self) -> crate::engine::Readiness {
        crate::engine::Readiness::default()
    }
    fn set_readiness(&self, _: crate::engine::Readiness) {}
}

// `repr(C)` puts the header at offset 0 whatever the front; checked here
// for one front, and at run time for each operation in `Op::new`.
const _: () = assert!(mem::offset_of!(OpCell<Probe>, header) == 0);

// SAFETY: `buf` is behind a lock; the header's `OVERLAPPED` is written only
// by the kernel while the operation is in flight, and read (its status)
// through atomics or after the kernel is done; the rest of the header does
// not change and may go to other threads (the `Front` contract).
// Everything else is immutable or thread-safe.
unsafe impl<F: Front> Send for OpCell<F> {}
// SAFETY: as above.
unsafe impl<F: Front> Sync for OpCell<F> {}

/// The engine's handle on one operation. Equality is identity.
pub(crate) struct Op<F: Front>(Arc<OpCell<F>>);

impl<F: Front> Clone for Op<F> {
    fn clone(&self) -> Self {
        Op(Arc::clone(&self.0))
    }
}

/// A forgotten operation, held without keeping it alive (see `Shared`).
pub(crate) struct WeakOp<F: Front>(Weak<OpCell<F>>);

impl<F: Front> WeakOp<F> {
    /// The operation, unless its completion was handed back and dropped.
    pub(crate) fn upgrade(&self) -> Option<Op<F>> {
        self.0.upgrade().map(Op)
    }
}

impl<F: Front> PartialEq for Op<F> {
    fn eq(&self, other: &Op<F>) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<F: Front> fmt::Debug for Op<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Op({:?} at {:p})", self.0.kind, Arc::as_ptr(&self.0))
    }
}

/// For fronts: hands a completion dequeued from the front's port to its
/// pipe's engine, which updates the pipe's readiness (and may start the
/// next operation). This is how every completion reaches the core.
///
/// # Safety
///
/// `overlapped` must be the `OVERLAPPED` of an operation the core started
/// for front `F` ([`Front::overlapped`] of a header the core made), as the
/// port dequeued it; each completion is handed over exactly once.
pub unsafe fn complete<F: Front>(overlapped: *mut c_void) {
    // SAFETY: per the contract, a dequeued completion of an operation
    // started with a lent reference, taken back this once.
    let op = unsafe { reclaim::<F>(overlapped.cast()) };
    let (buf, outcome) = op.finish(None);
    let owner = Arc::clone(&op.0.owner);
    owner.complete(&op, buf, outcome);
}

/// Takes back the reference [`Op::lend`] gave the kernel.
///
/// # Safety
/// `ov` must come from `Op::lend`, and be taken back once: from the
/// dequeued completion, or after the starting call said none will come.
unsafe fn reclaim<F: Front>(ov: *mut OVERLAPPED) -> Op<F> {
    // SAFETY: per the contract, `ov` is `Arc::into_raw` of an `OpCell`
    // (the header, and so the `OVERLAPPED`, is at offset 0) not yet taken back.
    Op(unsafe { Arc::from_raw(ov.cast::<OpCell<F>>().cast_const()) })
}

impl<F: Front> Op<F> {
    fn new(kind: OpKind, buf: Vec<u8>, owner: &Arc<Shared<F>>) -> Op<F> {
        let op = Op(Arc::new(OpCell {
            header: F::header(),
            kind,
            buf: Mutex::new(buf),
            owner: Arc::clone(owner),
        }));
        // The front's contract, which `reclaim` and `kernel_done` rely on:
        // the `OVERLAPPED` is the header, and so the cell, itself.
        assert!(
            std::ptr::eq(op.overlapped().cast_const().cast(), Arc::as_ptr(&op.0))
                && mem::size_of::<F::Header>() >= mem::size_of::<OVERLAPPED>(),
            "a front's header must begin with its OVERLAPPED"
        );
        op
    }

    /// A handle on the operation that does not keep it alive.
    pub(crate) fn downgrade(&self) -> WeakOp<F> {
        WeakOp(Arc::downgrade(&self.0))
    }

    fn buf(&self) -> MutexGuard<'_, Vec<u8>> {
        self.0.buf.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the kernel has finished the operation: the status word of
    /// its `OVERLAPPED` (`Internal`) is no longer `STATUS_PENDING`, which the
    /// starting call set before the operation went pending. From then on the
    /// kernel writes neither the buffer nor the `OVERLAPPED`
    /// (`HasOverlappedIoCompleted`); the completion may still sit in the port.
    pub(crate) fn kernel_done(&self) -> bool {
        const STATUS_PENDING: usize = 0x103;
        let status = self.overlapped().cast::<AtomicUsize>();
        // SAFETY: `Internal` is the first field of the `OVERLAPPED`, a
        // pointer-sized, pointer-aligned word inside a live cell (we hold a
        // reference); the kernel may store to it concurrently, so it is read
        // atomically.
        unsafe { (*status).load(Ordering::Acquire) != STATUS_PENDING }
    }

    /// Frees the buffer of an operation that the kernel has finished and
    /// the engine no longer tracks. The completion, if a port still hands it
    /// back, then finds an empty buffer, which no one reads.
    pub(crate) fn free_buffer(&self) {
        debug_assert!(self.kernel_done());
        drop(mem::take(&mut *self.buf()));
    }

    /// The `OVERLAPPED`, for calls that only name the operation (`CancelIoEx`).
    fn overlapped(&self) -> *mut OVERLAPPED {
        F::overlapped(&self.0.header).cast()
    }

    /// Lends the kernel a reference, as the `OVERLAPPED` pointer to pass to
    /// the starting call. Done before the call: its completion may be
    /// dequeued on another thread before the call even returns.
    fn lend(&self) -> *mut OVERLAPPED {
        let raw = Arc::into_raw(Arc::clone(&self.0));
        debug_assert_eq!(raw as usize, self.overlapped() as usize);
        raw.cast_mut().cast()
    }

    /// Interprets the starting call's result. `packet_on_success` tells
    /// whether an immediate success still queues a completion (it does
    /// unless the handle skips the port on success).
    fn started<B>(
        self,
        ok: bool,
        packet_on_success: bool,
        take: impl FnOnce(Option<Vec<u8>>) -> B,
    ) -> Start<Op<F>, B> {
        let error = (!ok).then(io::Error::last_os_error);
        let pending = match error.as_ref().and_then(io::Error::raw_os_error) {
            None => packet_on_success,
            Some(code) => {
                // ERROR_MORE_DATA is a warning: the completion goes through
                // the port. (Handles in message read mode, the only ones that
                // see it, never skip the port; see `Shared::bind`.)
                code == ERROR_IO_PENDING as i32
                    || (code == ERROR_MORE_DATA as i32 && self.0.kind == OpKind::Read)
            }
        };
        if pending {
            return Start::Pending(self);
        }
        // SAFETY: the call finished without pending, so no completion will be
        // queued: the kernel's reference is ours to take back, once.
        drop(unsafe { reclaim::<F>(self.overlapped()) });
        let (buf, outcome) = self.finish(error);
        Start::Done(take(buf), outcome)
    }

    /// The outcome and the buffer of a finished operation. `failed_at_once`
    /// is the error of a starting call that failed without pending: the
    /// `OVERLAPPED` may hold no status then.
    fn finish(&self, failed_at_once: Option<io::Error>) -> (Option<Vec<u8>>, Outcome) {
        let outcome = match failed_at_once {
            Some(e) => Outcome::err(e),
            None => {
                let mut n = 0u32;
                // SAFETY: the operation has finished (dequeued, or succeeded at
                // once), so this only reads the status in the `OVERLAPPED`; it
                // neither waits nor uses the handle.
                let ok = unsafe {
                    GetOverlappedResult(self.0.owner.raw(), self.overlapped(), &mut n, 0)
                };
                Outcome {
                    bytes: n as usize,
                    error: (ok == 0).then(io::Error::last_os_error),
                }
            }
        };
        if self.0.kind == OpKind::Connect {
            return (None, outcome);
        }
        // The kernel is done with the buffer; this takes it out, unless
        // `free_buffer` took it first (then it is empty and no one reads it).
        let mut buf = mem::take(&mut *self.buf());
        if self.0.kind == OpKind::Read {
            let added = outcome.bytes.min(buf.capacity() - buf.len());
            // SAFETY: the kernel wrote `added` bytes right after the old length,
            // within the capacity (a freed buffer has capacity 0: nothing added).
            unsafe { buf.set_len(buf.len() + added) };
        }
        (Some(buf), outcome)
    }
}

/// `ConnectNamedPipe`.
pub(crate) fn start_connect<F: Front>(
    owner: &Arc<Shared<F>>,
    h: HANDLE,
    skip: bool,
) -> Start<Op<F>, ()> {
    let op = Op::new(OpKind::Connect, Vec::new(), owner);
    let ov = op.lend();
    // SAFETY: `h` is a live pipe handle; `ov` stays valid until the kernel's
    // reference is taken back.
    let ok = unsafe { ConnectNamedPipe(h, ov) } != 0;
    op.started(ok, !skip, |_| ())
}

/// `ReadFile` into the spare capacity of `buf`.
pub(crate) fn start_read<F: Front>(
    owner: &Arc<Shared<F>>,
    h: HANDLE,
    skip: bool,
    buf: Vec<u8>,
) -> Start<Op<F>, Vec<u8>> {
    let op = Op::new(OpKind::Read, buf, owner);
    let (ptr, len) = {
        let mut b = op.buf();
        let spare = b.spare_capacity_mut();
        (
            spare.as_mut_ptr().cast::<u8>(),
            u32::try_from(spare.len()).unwrap_or(u32::MAX),
        )
    };
    let ov = op.lend();
    // SAFETY: `ptr..ptr+len` is the spare capacity of a Vec owned by the
    // cell, which neither moves nor frees it until the kernel is done with
    // it (`finish` and `free_buffer` take it only then); `ov` stays valid
    // until the kernel's reference is taken back.
    let ok = unsafe { ReadFile(h, ptr, len, std::ptr::null_mut(), ov) } != 0;
    op.started(ok, !skip, Option::unwrap_or_default)
}

/// `WriteFile` of all of `buf`.
pub(crate) fn start_write<F: Front>(
    owner: &Arc<Shared<F>>,
    h: HANDLE,
    skip: bool,
    buf: Vec<u8>,
) -> Start<Op<F>, Vec<u8>> {
    let op = Op::new(OpKind::Write, buf, owner);
    let (ptr, len) = {
        let b = op.buf();
        (b.as_ptr(), u32::try_from(b.len()).unwrap_or(u32::MAX))
    };
    let ov = op.lend();
    // SAFETY: as in `start_read`, for the initialized part of the buffer.
    let ok = unsafe { WriteFile(h, ptr, len, std::ptr::null_mut(), ov) } != 0;
    op.started(ok, !skip, Option::unwrap_or_default)
}

/// `CancelIoEx` of one operation. Its completion still follows.
pub(crate) fn cancel<F: Front>(h: HANDLE, op: &Op<F>) {
    // SAFETY: `h` is a live handle; the `OVERLAPPED` is alive (the engine
    // holds `op`). Cancelling a finished operation is a harmless failure.
    unsafe { CancelIoEx(h, op.overlapped()) };
}
