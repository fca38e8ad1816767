//! The clients of the accept benchmarks, shared by `accept` and
//! `async_fronts`: threads that open the pipe (waiting with `WaitNamedPipeW`
//! while every instance is busy, retrying at once on `NotFound`), read the
//! server's one-byte greeting `!` and close, as fast as they can.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::windows::ffi::OsStrExt;
use std::thread;
use std::time::{Duration, Instant};

use windows_sys::Win32::System::Pipes::WaitNamedPipeW;

const ERROR_PIPE_BUSY: i32 = 231;

/// Opens `name`, waiting while every instance is busy.
pub fn open(name: &str) -> File {
    let wide: Vec<u16> = std::ffi::OsStr::new(name)
        .encode_wide()
        .chain(Some(0))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match OpenOptions::new().read(true).write(true).open(name) {
            Ok(f) => return f,
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && Instant::now() < deadline => {
                // SAFETY: `wide` is NUL-terminated and outlives the call.
                unsafe { WaitNamedPipeW(wide.as_ptr(), 1000) };
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && Instant::now() < deadline => {
                // The mio 1.x loop has no instance between two.
                thread::yield_now();
            }
            Err(e) => panic!("client open: {e}"),
        }
    }
}

/// `per_thread` connections from each client thread; returns when all are done.
pub fn clients(name: &str, threads: usize, per_thread: usize) -> Vec<thread::JoinHandle<()>> {
    (0..threads)
        .map(|_| {
            let name = name.to_owned();
            thread::spawn(move || {
                for _ in 0..per_thread {
                    let mut f = open(&name);
                    let mut b = [0u8; 1];
                    f.read_exact(&mut b).unwrap();
                    assert_eq!(&b, b"!");
                }
            })
        })
        .collect()
}
