//! What a pipe handle says about itself and its peer.

use std::io;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Security::RevertToSelf;
use windows_sys::Win32::System::Pipes::{
    GetNamedPipeClientProcessId, GetNamedPipeClientSessionId, GetNamedPipeInfo,
    GetNamedPipeServerProcessId, GetNamedPipeServerSessionId, ImpersonateNamedPipeClient,
};

fn check(ok: i32) -> io::Result<()> {
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `GetNamedPipeInfo`: (flags, out buffer, in buffer, max instances).
pub(crate) fn info(h: HANDLE) -> io::Result<(u32, u32, u32, u32)> {
    let (mut flags, mut out, mut inb, mut max) = (0, 0, 0, 0);
    // SAFETY: a live pipe handle; valid out-pointers.
    check(unsafe { GetNamedPipeInfo(h, &mut flags, &mut out, &mut inb, &mut max) })?;
    Ok((flags, out, inb, max))
}

/// Which id to ask for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Id {
    ClientProcess,
    ServerProcess,
    ClientSession,
    ServerSession,
}

/// `GetNamedPipe{Client,Server}{Process,Session}Id`.
pub(crate) fn id(h: HANDLE, which: Id) -> io::Result<u32> {
    let mut v = 0u32;
    // SAFETY: a live pipe handle; a valid out-pointer.
    let ok = unsafe {
        match which {
            Id::ClientProcess => GetNamedPipeClientProcessId(h, &mut v),
            Id::ServerProcess => GetNamedPipeServerProcessId(h, &mut v),
            Id::ClientSession => GetNamedPipeClientSessionId(h, &mut v),
            Id::ServerSession => GetNamedPipeServerSessionId(h, &mut v),
        }
    };
    check(ok)?;
    Ok(v)
}

/// `ImpersonateNamedPipeClient` on the calling thread.
pub(crate) fn impersonate(h: HANDLE) -> io::Result<()> {
    // SAFETY: a live server pipe handle.
    check(unsafe { ImpersonateNamedPipeClient(h) })
}

/// `RevertToSelf` on the calling thread.
pub(crate) fn revert() -> io::Result<()> {
    // SAFETY: no arguments; affects only the calling thread's token.
    check(unsafe { RevertToSelf() })
}
