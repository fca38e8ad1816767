//! Security descriptors from SDDL strings, the process user's SID, the
//! current-user-only descriptor, and the owner of an opened pipe.

use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr;
use std::sync::{Arc, OnceLock};

use windows_sys::core::PWSTR;
use windows_sys::Win32::Foundation::{LocalFree, ERROR_INVALID_PARAMETER, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    ConvertStringSidToSidW, GetSecurityInfo, SDDL_REVISION_1, SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// A self-relative security descriptor allocated by the system, freed with
/// `LocalFree` on drop.
#[derive(Debug)]
pub(crate) struct Descriptor(*mut c_void);

// SAFETY: the descriptor is immutable memory owned by this value alone;
// Windows only reads it.
unsafe impl Send for Descriptor {}
// SAFETY: as above.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// `ConvertStringSecurityDescriptorToSecurityDescriptorW`.
    pub(crate) fn from_sddl(sddl: &str) -> io::Result<Descriptor> {
        if sddl.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an SDDL string must not contain NUL",
            ));
        }
        let w: Vec<u16> = sddl.encode_utf16().chain(Some(0)).collect();
        let mut sd = ptr::null_mut();
        // SAFETY: `w` is NUL-terminated and outlives the call; `sd` receives
        // an allocation we own; the size out-parameter may be null.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                w.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            // ERROR_INVALID_PARAMETER, and ERROR_UNKNOWN_REVISION (1305),
            // ERROR_INVALID_ACL (1336), ERROR_INVALID_SID (1337),
            // ERROR_INVALID_SECURITY_DESCR (1338): the string is at fault.
            let invalid = matches!(e.raw_os_error(),
                Some(c) if c == ERROR_INVALID_PARAMETER as i32 || c == 1305 || (1336..=1338).contains(&c));
            return Err(if invalid {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid SDDL security descriptor {sddl:?}: {e}"),
                )
            } else {
                e
            });
        }
        Ok(Descriptor(sd))
    }

    /// `SECURITY_ATTRIBUTES` pointing at this descriptor; valid while `self` lives.
    pub(crate) fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        }
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by the conversion above, freed once.
        unsafe { LocalFree(self.0) };
    }
}

/// Frees a `LocalAlloc`ed pointer on drop.
struct Local(*mut c_void);

impl Drop for Local {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a pointer the system allocated for us with LocalAlloc, freed once.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// The string form (`S-1-5-...`) of a SID the caller keeps alive.
fn sid_string(sid: PSID) -> io::Result<String> {
    let mut s: PWSTR = ptr::null_mut();
    // SAFETY: `sid` points to a valid SID for the call (the caller's promise);
    // `s` receives a LocalAlloc'ed string we free.
    if unsafe { ConvertSidToStringSidW(sid, &mut s) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let _free = Local(s.cast());
    let mut len = 0;
    // SAFETY: the system returned a NUL-terminated string; we stop at its NUL.
    while unsafe { *s.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` u16s before the NUL are part of the string.
    let units = unsafe { std::slice::from_raw_parts(s, len) };
    Ok(String::from_utf16_lossy(units))
}

/// Parses a SID string (`S-1-5-18`, or an SDDL alias such as `SY`, `BA`)
/// and prints it back in its canonical `S-1-...` form.
///
/// # Errors
///
/// `InvalidInput` naming the string when it is no SID.
pub(crate) fn canonical_sid(s: &str) -> io::Result<String> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} is not a SID (such as S-1-5-18)"),
        )
    };
    if s.contains('\0') {
        return Err(bad());
    }
    let w: Vec<u16> = s.encode_utf16().chain(Some(0)).collect();
    let mut sid: PSID = ptr::null_mut();
    // SAFETY: `w` is NUL-terminated and outlives the call; `sid` receives a
    // LocalAlloc'ed SID we free.
    if unsafe { ConvertStringSidToSidW(w.as_ptr(), &mut sid) } == 0 {
        return Err(bad());
    }
    let _free = Local(sid);
    sid_string(sid)
}

/// The SID of the user the process runs as (`GetTokenInformation(TokenUser)`
/// on the process token), asked once per process.
pub(crate) fn current_user_sid() -> io::Result<String> {
    static SID: OnceLock<String> = OnceLock::new();
    if let Some(s) = SID.get() {
        return Ok(s.clone());
    }
    let s = process_user_sid()?;
    Ok(SID.get_or_init(|| s).clone())
}

fn process_user_sid() -> io::Result<String> {
    // SAFETY: the current process's pseudo handle, valid for the call.
    process_user(unsafe { GetCurrentProcess() })
}

/// The SID of the user process `process` runs as (its token's user). The
/// handle needs `PROCESS_QUERY_LIMITED_INFORMATION` and must stay open for
/// the call.
pub(crate) fn process_user(process: HANDLE) -> io::Result<String> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: a process handle the caller keeps open; `token` receives a
    // handle we own and close below.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just opened, closed once by OwnedHandle.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    let mut len = 0u32;
    // SAFETY: asks the size only: a null buffer of length 0.
    unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            ptr::null_mut(),
            0,
            &mut len,
        )
    };
    if len == 0 {
        return Err(io::Error::last_os_error());
    }
    // u64s: TOKEN_USER holds pointers, so its buffer must be aligned for them.
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: `buf` has room for `len` bytes and is aligned for TOKEN_USER.
    if unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            buf.as_mut_ptr().cast(),
            len,
            &mut len,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call filled `buf` with a TOKEN_USER whose SID points inside `buf`.
    let user = unsafe { &*buf.as_ptr().cast::<TOKEN_USER>() };
    sid_string(user.User.Sid)
}

/// The SID of the well-known LocalSystem account.
pub(crate) const LOCAL_SYSTEM: &str = "S-1-5-18";
/// The SID of the builtin Administrators group.
pub(crate) const ADMINISTRATORS: &str = "S-1-5-32-544";

/// The SDDL of a current-user-only pipe: owned by `user`, a protected DACL
/// granting full control to `user` and to SYSTEM, and to nobody else.
pub(crate) fn current_user_sddl(user: &str) -> String {
    format!("O:{user}D:P(A;;GA;;;{user})(A;;GA;;;SY)")
}

/// The security descriptor of current-user-only pipes (see
/// [`current_user_sddl`]), made once per process.
pub(crate) fn current_user_only() -> io::Result<Arc<Descriptor>> {
    static SD: OnceLock<Arc<Descriptor>> = OnceLock::new();
    if let Some(sd) = SD.get() {
        return Ok(Arc::clone(sd));
    }
    let sd = Arc::new(Descriptor::from_sddl(&current_user_sddl(
        &current_user_sid()?,
    ))?);
    Ok(Arc::clone(SD.get_or_init(|| sd)))
}

/// The owner of the kernel object behind `h`, as a SID string
/// (`GetSecurityInfo`, `SE_KERNEL_OBJECT`, `OWNER_SECURITY_INFORMATION`; the
/// handle needs `READ_CONTROL`).
pub(crate) fn owner_sid(h: HANDLE) -> io::Result<String> {
    let mut owner: PSID = ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: `h` is a live handle the caller owns; `owner` receives a pointer
    // into `sd`, a LocalAlloc'ed descriptor we free after reading it.
    let e = unsafe {
        GetSecurityInfo(
            h,
            SE_KERNEL_OBJECT,
            OWNER_SECURITY_INFORMATION,
            &mut owner,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut sd,
        )
    };
    if e != 0 {
        return Err(io::Error::from_raw_os_error(e as i32));
    }
    let _free = Local(sd);
    if owner.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the pipe has no owner",
        ));
    }
    sid_string(owner)
}
