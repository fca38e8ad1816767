//! The completion-port behaviour the engine relies on, checked on the
//! running system (Windows, or Wine): if one of these fails, the engine's
//! bookkeeping of which operations still belong to the kernel is wrong there.
#![cfg(windows)]

use std::os::windows::ffi::OsStrExt;
use std::ptr;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_IO_PENDING, ERROR_MORE_DATA, ERROR_PIPE_LISTENING, GENERIC_READ,
    GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, SetFileCompletionNotificationModes, WriteFile, FILE_FLAG_OVERLAPPED,
    OPEN_EXISTING, PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PIPE_READMODE_MESSAGE, PIPE_TYPE_MESSAGE, PIPE_WAIT,
};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatus, OVERLAPPED,
};

fn wide(s: &str) -> Vec<u16> {
    std::ffi::OsStr::new(s)
        .encode_wide()
        .chain(Some(0))
        .collect()
}

fn last() -> u32 {
    std::io::Error::last_os_error().raw_os_error().unwrap() as u32
}

struct Setup {
    server: HANDLE,
    client: HANDLE,
    port: HANDLE,
}

impl Drop for Setup {
    fn drop(&mut self) {
        // SAFETY: all three are valid handles owned by this struct, closed once.
        unsafe {
            CloseHandle(self.client);
            CloseHandle(self.server);
            CloseHandle(self.port);
        }
    }
}

/// A message-mode pipe whose server end is on a fresh completion port;
/// `skip` sets FILE_SKIP_COMPLETION_PORT_ON_SUCCESS on it.
fn setup(tag: &str, skip: bool) -> Setup {
    let name = wide(&format!(
        r"\\.\pipe\mio-named-pipes-iocp-{tag}-{}",
        std::process::id()
    ));
    // SAFETY: `name` is NUL-terminated and outlives the calls; null attributes are allowed.
    unsafe {
        let server = CreateNamedPipeW(
            name.as_ptr(),
            PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
            PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT,
            1,
            65536,
            65536,
            0,
            ptr::null(),
        );
        assert_ne!(server, INVALID_HANDLE_VALUE);
        let port = CreateIoCompletionPort(server, ptr::null_mut(), 7, 0);
        assert!(!port.is_null(), "CreateIoCompletionPort: {}", last());
        if skip {
            assert!(
                SetFileCompletionNotificationModes(server, 1) != 0,
                "SetFileCompletionNotificationModes: {}",
                last()
            );
        }
        Setup {
            server,
            client: INVALID_HANDLE_VALUE,
            port,
        }
    }
}

impl Setup {
    fn open_client(&mut self, tag: &str) {
        let name = wide(&format!(
            r"\\.\pipe\mio-named-pipes-iocp-{tag}-{}",
            std::process::id()
        ));
        // SAFETY: as above.
        self.client = unsafe {
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
        assert_ne!(self.client, INVALID_HANDLE_VALUE, "CreateFileW: {}", last());
    }

    fn client_writes(&self, msg: &[u8]) {
        let mut n = 0;
        // SAFETY: a valid synchronous handle; `msg` and `n` outlive the call.
        assert!(
            unsafe {
                WriteFile(
                    self.client,
                    msg.as_ptr(),
                    msg.len() as u32,
                    &mut n,
                    ptr::null_mut(),
                )
            } != 0
        );
    }

    /// The next packet on the port, if one arrives within `ms`.
    fn packet(&self, ms: u32) -> Option<(usize, *mut OVERLAPPED)> {
        let (mut n, mut key, mut ov) = (0u32, 0usize, ptr::null_mut());
        // SAFETY: valid port and out-pointers.
        let ok = unsafe { GetQueuedCompletionStatus(self.port, &mut n, &mut key, &mut ov, ms) };
        if ok == 0 && ov.is_null() {
            assert_eq!(last(), WAIT_TIMEOUT);
            return None;
        }
        Some((n as usize, ov))
    }
}

#[test]
fn immediate_failure_queues_no_packet() {
    let s = setup("fail", false);
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    let mut buf = [0u8; 16];
    // SAFETY: `buf` and `ov` outlive the operation: it fails at once (no client yet).
    let ok = unsafe { ReadFile(s.server, buf.as_mut_ptr(), 16, ptr::null_mut(), &mut ov) };
    assert_eq!(ok, 0);
    assert_eq!(last(), ERROR_PIPE_LISTENING);
    assert!(
        s.packet(100).is_none(),
        "a packet was queued for a call that failed at once"
    );
}

#[test]
fn skip_mode_queues_no_packet_for_an_immediate_success() {
    let mut s = setup("skip", true);
    let mut cov: OVERLAPPED = unsafe { std::mem::zeroed() };
    // SAFETY: `cov` outlives the operation (we wait for its packet below, if any).
    let c = unsafe { ConnectNamedPipe(s.server, &mut cov) };
    let pending = c == 0 && last() == ERROR_IO_PENDING;
    s.open_client("skip");
    if pending {
        let (_, ov) = s.packet(5000).expect("the connect's packet");
        assert_eq!(ov, &mut cov as *mut _);
    }
    s.client_writes(b"hello");
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    let mut buf = [0u8; 16];
    // SAFETY: data is waiting, so the read completes at once; `buf`/`ov` outlive it either way.
    let ok = unsafe { ReadFile(s.server, buf.as_mut_ptr(), 16, ptr::null_mut(), &mut ov) };
    assert!(
        ok != 0,
        "a read of waiting data did not complete at once: {}",
        last()
    );
    assert_eq!(&buf[..5], b"hello");
    assert!(
        s.packet(200).is_none(),
        "a packet was queued although the handle skips the port on success"
    );

    // A read that has to wait still completes through the port.
    let mut ov2: OVERLAPPED = unsafe { std::mem::zeroed() };
    // SAFETY: `buf`/`ov2` outlive the operation; we wait for its packet.
    let ok = unsafe { ReadFile(s.server, buf.as_mut_ptr(), 16, ptr::null_mut(), &mut ov2) };
    assert!(ok == 0 && last() == ERROR_IO_PENDING);
    s.client_writes(b"later");
    let (n, ov) = s.packet(5000).expect("the pending read's packet");
    assert_eq!((n, ov), (5, &mut ov2 as *mut _));
}

/// An ERROR_MORE_DATA read (a warning, not an error) completes through the
/// port. The engine relies on this only without skip-on-success: whether a
/// packet follows an immediate ERROR_MORE_DATA in skip mode differs between
/// implementations (Wine 8 queues none), so handles in message read mode
/// never use skip mode.
#[test]
fn more_data_queues_a_packet_without_skip_mode() {
    let mut s = setup("more", false);
    s.open_client("more");
    s.client_writes(&[7u8; 100]);
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    let mut buf = [0u8; 16];
    // SAFETY: `buf`/`ov` outlive the operation; we wait for its packet.
    let ok = unsafe { ReadFile(s.server, buf.as_mut_ptr(), 16, ptr::null_mut(), &mut ov) };
    assert_eq!(ok, 0);
    let code = last();
    assert!(
        code == ERROR_MORE_DATA || code == ERROR_IO_PENDING,
        "ReadFile: {code}"
    );
    let (n, got) = s
        .packet(5000)
        .unwrap_or_else(|| panic!("no packet for an ERROR_MORE_DATA read (ReadFile said {code})"));
    assert_eq!((n, got), (16, &mut ov as *mut _));
}
