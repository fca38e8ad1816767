//! Opening a client end: `CreateFileW`, waiting for a free instance with
//! `WaitNamedPipeW`, and setting the read mode.

use std::ffi::OsStr;
use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::ptr;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_FILE_NOT_FOUND, ERROR_HANDLES_CLOSED, ERROR_PIPE_BUSY, ERROR_SEM_TIMEOUT,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING};
use windows_sys::Win32::System::Pipes::{SetNamedPipeHandleState, WaitNamedPipeW};

use super::pipe::{owned, wide};
use super::{info, security};
use crate::engine::policy;

/// How to open a client.
#[derive(Clone, Debug)]
pub(crate) struct ClientParams {
    /// `dwDesiredAccess`.
    pub(crate) access: u32,
    /// `SECURITY_*` quality-of-service flags, or'ed into the flags.
    pub(crate) security_qos: u32,
    /// A `PIPE_READMODE_*` to set after opening, if any.
    pub(crate) read_mode: Option<u32>,
    /// How long to wait for a free instance; `None`: fail at once.
    pub(crate) busy_timeout: Option<Duration>,
    /// The owners (canonical SID strings) the pipe may have; empty: any.
    pub(crate) owners: Vec<String>,
    /// The process id the pipe's server must have, if any.
    pub(crate) server_pid: Option<u32>,
    /// `lpSecurityAttributes`: null, or attributes the caller keeps valid
    /// for the whole `open`.
    pub(crate) security: *const SECURITY_ATTRIBUTES,
}

/// How long a busy wait that ended early pauses before it tries again.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Whether a busy wait that ended with `code` tries again (while its
/// timeout lasts): every instance closed while it waited
/// (`ERROR_HANDLES_CLOSED`, as Wine reports it), or the name gone for a
/// moment (`ERROR_FILE_NOT_FOUND`: the server re-creating its instances).
fn retry_busy_wait(code: Option<i32>) -> bool {
    code == Some(ERROR_HANDLES_CLOSED as i32) || code == Some(ERROR_FILE_NOT_FOUND as i32)
}

/// Opens `addr` for overlapped I/O, waiting up to `busy_timeout` while every
/// instance is busy. A wait that ends early (every instance closed, the
/// name gone for a moment) tries again until the timeout; if the name is
/// still missing then, that is the error.
pub(crate) fn open(addr: &OsStr, p: &ClientParams) -> io::Result<OwnedHandle> {
    let name = wide(addr)?;
    let deadline = p.busy_timeout.map(|t| Instant::now() + t);
    // Every instance was found busy once: the pipe exists, so its name
    // missing later is a moment between instances.
    let mut waited = false;
    loop {
        // SAFETY: `name` is NUL-terminated and outlives the call;
        // `p.security` is null or attributes the caller keeps valid for the
        // whole open (the contract of `open_with_security_attributes_raw`);
        // no template.
        let h = unsafe {
            CreateFileW(
                name.as_ptr(),
                p.access,
                0,
                p.security,
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED | p.security_qos,
                ptr::null_mut(),
            )
        };
        match owned(h) {
            Ok(h) => {
                // Before anything else: an unexpected server gets nothing
                // but the open (the handle closes on the error).
                check_server(&h, p)?;
                if let Some(mode) = p.read_mode {
                    set_read_mode(&h, mode)?;
                }
                return Ok(h);
            }
            Err(e) if waited && retry_busy_wait(e.raw_os_error()) => match deadline {
                Some(d) if Instant::now() < d => std::thread::sleep(RETRY_PAUSE),
                _ => return Err(e),
            },
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                let Some(deadline) = deadline else {
                    return Err(e);
                };
                waited = true;
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out());
                }
                // Wait for an instance to free up; then race for it again.
                let ms = u32::try_from(left.as_millis())
                    .unwrap_or(u32::MAX - 1)
                    .max(1);
                // SAFETY: `name` is NUL-terminated and outlives the call.
                if unsafe { WaitNamedPipeW(name.as_ptr(), ms) } == 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() == Some(ERROR_SEM_TIMEOUT as i32) {
                        return Err(timed_out());
                    }
                    if retry_busy_wait(e.raw_os_error()) {
                        // Ended early: race for an instance again (the
                        // name's absence is judged there).
                        std::thread::sleep(RETRY_PAUSE);
                    } else if e.raw_os_error() != Some(ERROR_PIPE_BUSY as i32) {
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Checks who serves the pipe just opened: its owner and its server's
/// process id, as `p` asks; `PermissionDenied` with what was found otherwise.
fn check_server(h: &OwnedHandle, p: &ClientParams) -> io::Result<()> {
    let denied = |msg| io::Error::new(io::ErrorKind::PermissionDenied, msg);
    if !p.owners.is_empty() {
        let owner = security::owner_sid(h.as_raw_handle())?;
        policy::check_owner(&owner, &p.owners).map_err(denied)?;
    }
    if p.server_pid.is_some() {
        let pid = info::id(h.as_raw_handle(), info::Id::ServerProcess)?;
        policy::check_server_process(pid, p.server_pid).map_err(denied)?;
    }
    Ok(())
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "every instance of the pipe stayed busy for the whole busy_timeout",
    )
}

/// `SetNamedPipeHandleState` with a new read mode.
pub(crate) fn set_read_mode(h: &OwnedHandle, mode: u32) -> io::Result<()> {
    // SAFETY: a live pipe handle; `mode` outlives the call; null for the
    // settings left alone.
    if unsafe { SetNamedPipeHandleState(h.as_raw_handle().cast(), &mode, ptr::null(), ptr::null()) }
        == 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
