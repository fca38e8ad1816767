//! The process's standard output, taken over: a relay that has to close
//! it (its reader then sees the end of the stream) while it goes on.

use std::io;
use std::os::windows::io::{FromRawHandle, OwnedHandle};
use std::ptr;

use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows_sys::Win32::System::Console::{GetStdHandle, SetStdHandle, STD_OUTPUT_HANDLE};

/// Takes the process's standard output handle over: the process then has
/// none (std's `io::stdout()` writes nowhere, as in a process started
/// without one), and the returned handle is its only owner, so dropping it
/// closes stdout: the reader at the other end sees the end of the stream
/// while the process goes on. `Ok(None)` when the process has no stdout.
///
/// # Safety
///
/// Nothing else in the process may use the handle after this call: no
/// `BorrowedHandle` or raw handle taken from `io::stdout()` (or
/// `GetStdHandle`) before it may outlive it. Call it early in `main`,
/// before other threads start.
pub unsafe fn take_stdout() -> io::Result<Option<OwnedHandle>> {
    // SAFETY: no pointers; reads the process's standard handle slot.
    let h = unsafe { GetStdHandle(STD_OUTPUT_HANDLE) };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    if h.is_null() {
        return Ok(None);
    }
    // SAFETY: no pointers; the slot is emptied, so std no longer finds `h`.
    if unsafe { SetStdHandle(STD_OUTPUT_HANDLE, ptr::null_mut()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is open (the process's stdout until now) and, by the
    // caller's contract and the emptied slot, no one else uses it.
    Ok(Some(unsafe { OwnedHandle::from_raw_handle(h) }))
}
