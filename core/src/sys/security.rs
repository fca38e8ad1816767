//! Security descriptors from SDDL strings.

use std::ffi::c_void;
use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::{LocalFree, ERROR_INVALID_PARAMETER};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;

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
