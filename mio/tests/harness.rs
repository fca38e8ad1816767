//! Sanity test of the build-and-run chain: a real named pipe under Wine,
//! created and used with plain Win32 calls, without this crate's engine.
#![cfg(windows)]

use std::os::windows::ffi::OsStrExt;
use std::ptr;

use windows_sys::Win32::Foundation::{
    CloseHandle, GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, OPEN_EXISTING, PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_TYPE_BYTE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};

fn wide(s: &str) -> Vec<u16> {
    std::ffi::OsStr::new(s)
        .encode_wide()
        .chain(Some(0))
        .collect()
}

#[test]
fn create_connect_write_read() {
    let name = wide(&format!(
        r"\\.\pipe\mio-named-pipes-harness-{}",
        std::process::id()
    ));
    // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the call;
    // a null security-attributes pointer is allowed.
    let server = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            PIPE_ACCESS_DUPLEX,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
            PIPE_UNLIMITED_INSTANCES,
            4096,
            4096,
            0,
            ptr::null(),
        )
    };
    assert_ne!(
        server,
        INVALID_HANDLE_VALUE,
        "CreateNamedPipeW: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: as above; no template handle.
    let client = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            ptr::null(),
            OPEN_EXISTING,
            0,
            ptr::null_mut(),
        )
    };
    assert_ne!(
        client,
        INVALID_HANDLE_VALUE,
        "CreateFileW: {}",
        std::io::Error::last_os_error()
    );

    let msg = b"hello through a named pipe";
    let mut n = 0u32;
    // SAFETY: `client` is a valid handle opened for writing; `msg` and `n` outlive the
    // synchronous call.
    let ok = unsafe {
        WriteFile(
            client,
            msg.as_ptr(),
            msg.len() as u32,
            &mut n,
            ptr::null_mut(),
        )
    };
    assert!(ok != 0, "WriteFile: {}", std::io::Error::last_os_error());
    assert_eq!(n as usize, msg.len());

    let mut buf = [0u8; 64];
    let mut got = 0u32;
    // SAFETY: `server` is a valid, connected pipe handle; `buf` and `got` outlive the
    // synchronous call.
    let ok = unsafe {
        ReadFile(
            server,
            buf.as_mut_ptr(),
            buf.len() as u32,
            &mut got,
            ptr::null_mut(),
        )
    };
    assert!(ok != 0, "ReadFile: {}", std::io::Error::last_os_error());
    assert_eq!(&buf[..got as usize], msg);

    // SAFETY: both handles are valid and closed exactly once.
    unsafe {
        CloseHandle(client);
        CloseHandle(server);
    }
}
