//! Interim demo: a named pipe echoes one line with plain Win32 calls.
//! Replaced by the mio echo server once the engine lands.

#[cfg(windows)]
fn main() {
    use std::io::{Read, Write};
    use std::os::windows::ffi::OsStrExt;
    use std::os::windows::io::FromRawHandle;
    use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
    use windows_sys::Win32::System::Pipes::{CreateNamedPipeW, PIPE_TYPE_BYTE};

    let name = format!(r"\\.\pipe\mio-named-pipes-demo-{}", std::process::id());
    let wide: Vec<u16> = std::ffi::OsStr::new(&name)
        .encode_wide()
        .chain(Some(0))
        .collect();
    // SAFETY: `wide` is NUL-terminated and outlives the call.
    let h = unsafe {
        CreateNamedPipeW(
            wide.as_ptr(),
            PIPE_ACCESS_DUPLEX,
            PIPE_TYPE_BYTE,
            1,
            4096,
            4096,
            0,
            std::ptr::null(),
        )
    };
    assert!(
        !h.is_null() && h as isize != -1,
        "{}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `h` is a fresh handle owned by nothing else.
    let mut server = unsafe { std::fs::File::from_raw_handle(h) };
    let mut client = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&name)
        .unwrap();
    client.write_all(b"hello, pipe\n").unwrap();
    let mut buf = [0u8; 12];
    server.read_exact(&mut buf).unwrap();
    server.write_all(&buf).unwrap();
    client.read_exact(&mut buf).unwrap();
    print!("echoed: {}", String::from_utf8_lossy(&buf));
}

#[cfg(not(windows))]
fn main() {
    eprintln!("this example runs on Windows; on Linux use `cargo xtask demo`");
}
