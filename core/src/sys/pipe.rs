//! Pipe handles: creating, opening and asking about them.

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{FromRawHandle, OwnedHandle};
use std::ptr;

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    GetFileType, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, FILE_TYPE_PIPE,
    PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, DisconnectNamedPipe, GetNamedPipeHandleStateW, GetNamedPipeInfo,
    PeekNamedPipe, PIPE_READMODE_BYTE, PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_TYPE_MESSAGE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};

use crate::engine::{name, Framing, Peek};

/// Buffer size of pipes made by `NamedPipe::new`, each way.
pub(crate) const DEFAULT_BUFFER: u32 = 64 * 1024;

/// A NUL-terminated UTF-16 copy of the pipe name `s`; an interior NUL, or
/// a name not of the form `\\.\pipe\<name>` or `\\<server>\pipe\<name>`,
/// is an `InvalidInput` error.
pub(crate) fn wide(s: &OsStr) -> io::Result<Vec<u16>> {
    let w: Vec<u16> = s.encode_wide().chain(Some(0)).collect();
    if w[..w.len() - 1].contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a pipe name must not contain a NUL character",
        ));
    }
    if !name::is_pipe_name(&w[..w.len() - 1]) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not {:?}", name::EXPECTED, s),
        ));
    }
    Ok(w)
}

/// Turns the result of a handle-creating call into an owned handle.
pub(crate) fn owned(h: HANDLE) -> io::Result<OwnedHandle> {
    if h == INVALID_HANDLE_VALUE || h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` was just returned, valid, by a creating call; nothing else owns it.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// Every parameter of `CreateNamedPipeW`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServerParams {
    /// `dwOpenMode` without `FILE_FLAG_OVERLAPPED`, which is always added.
    pub(crate) open_mode: u32,
    /// `dwPipeMode`.
    pub(crate) pipe_mode: u32,
    /// `nMaxInstances`.
    pub(crate) max_instances: u32,
    /// `nOutBufferSize`.
    pub(crate) out_buffer: u32,
    /// `nInBufferSize`.
    pub(crate) in_buffer: u32,
    /// `lpSecurityAttributes`, or null.
    pub(crate) security: *const windows_sys::Win32::Security::SECURITY_ATTRIBUTES,
}

impl ServerParams {
    /// What `NamedPipe::new` creates: duplex, byte mode, first instance,
    /// unlimited instances, 64 KiB buffers, remote clients rejected.
    pub(crate) fn default_server() -> ServerParams {
        ServerParams {
            open_mode: PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
            pipe_mode: PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            max_instances: PIPE_UNLIMITED_INSTANCES,
            out_buffer: DEFAULT_BUFFER,
            in_buffer: DEFAULT_BUFFER,
            security: ptr::null(),
        }
    }
}

/// `CreateNamedPipeW`, always overlapped.
pub(crate) fn create_server(addr: &OsStr, p: &ServerParams) -> io::Result<OwnedHandle> {
    let name = wide(addr)?;
    // SAFETY: `name` is NUL-terminated and outlives the call; `p.security` is
    // null or points to attributes the caller keeps alive across the call.
    let h = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            p.open_mode | FILE_FLAG_OVERLAPPED,
            p.pipe_mode,
            p.max_instances,
            p.out_buffer,
            p.in_buffer,
            0,
            p.security,
        )
    };
    owned(h)
}

/// How `h` frames data: its pipe type and its read mode. Unknown (not a
/// pipe, or the query failed) reads as byte mode both ways.
pub(crate) fn framing(h: HANDLE) -> Framing {
    let mut flags = 0u32;
    // SAFETY: `h` is a handle the caller owns; the out-pointers are valid or null.
    let info = unsafe {
        GetNamedPipeInfo(
            h,
            &mut flags,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    let mut state = 0u32;
    // SAFETY: as above; a null user name buffer with size 0 is allowed.
    let st = unsafe {
        GetNamedPipeHandleStateW(
            h,
            &mut state,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            0,
        )
    };
    Framing {
        message_writes: info != 0 && flags & PIPE_TYPE_MESSAGE != 0,
        message_reads: st != 0 && state & PIPE_READMODE_MESSAGE != 0,
    }
}

/// Refuses a handle that is not a pipe (`GetFileType`): a file opened for
/// overlapped I/O would otherwise register, and every read would return its
/// first bytes again and every write overwrite its start.
pub(crate) fn check_is_pipe(h: HANDLE) -> io::Result<()> {
    // SAFETY: `h` is a handle the caller owns; the call only asks its type.
    let kind = unsafe { GetFileType(h) };
    if kind == FILE_TYPE_PIPE {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("the handle is not a pipe (GetFileType says {kind}, a pipe is {FILE_TYPE_PIPE})"),
    ))
}

/// `PeekNamedPipe` without reading any data.
pub(crate) fn peek(h: HANDLE) -> io::Result<Peek> {
    let (mut avail, mut left) = (0u32, 0u32);
    // SAFETY: `h` is a live pipe handle; a null buffer of size 0 is allowed.
    let ok = unsafe {
        PeekNamedPipe(
            h,
            ptr::null_mut(),
            0,
            ptr::null_mut(),
            &mut avail,
            &mut left,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Peek {
        available: avail as usize,
        message_left: left as usize,
    })
}

/// `DisconnectNamedPipe`.
pub(crate) fn disconnect(h: HANDLE) -> io::Result<()> {
    // SAFETY: `h` is a live pipe handle.
    if unsafe { DisconnectNamedPipe(h) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
