//! Facts about the system the tests run on, for the tests of every crate
//! of the workspace (the async front's tests include this file too): which
//! Wine runs them, if any, and whether the calling thread impersonates.

/// The Wine version when running under Wine (ntdll exports
/// `wine_get_version`), `None` on Windows. Tests use it to say plainly where
/// Wine lacks or fakes an API, instead of passing silently.
pub fn wine_version() -> Option<String> {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let ntdll: Vec<u16> = "ntdll.dll\0".encode_utf16().collect();
    // SAFETY: a NUL-terminated name; ntdll is always loaded.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return None;
    }
    // SAFETY: a valid module handle and a NUL-terminated export name.
    let f = unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine's `const char *wine_get_version(void)` returns a static C string.
    let get: extern "C" fn() -> *const std::ffi::c_char = unsafe { std::mem::transmute(f) };
    // SAFETY: as above.
    Some(
        unsafe { std::ffi::CStr::from_ptr(get()) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// Prints a line that stands out in test output, for a check Wine cannot make.
pub fn wine_limitation(what: &str) {
    println!(
        "WINE LIMITATION ({}): {what}",
        wine_version().unwrap_or_default()
    );
}

/// Whether the calling thread has a token of its own (is impersonating).
pub fn thread_token() -> bool {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::Security::TOKEN_QUERY;
    use windows_sys::Win32::System::Threading::{GetCurrentThread, OpenThreadToken};
    let mut token = std::ptr::null_mut();
    // SAFETY: the pseudo handle of the current thread; `token` receives a handle we close.
    let ok = unsafe { OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, 1, &mut token) } != 0;
    if ok {
        // SAFETY: a handle just opened, closed once.
        unsafe { CloseHandle(token) };
    }
    ok
}

/// How many threads this process has now (a Toolhelp snapshot).
pub fn thread_count() -> usize {
    use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
    };
    use windows_sys::Win32::System::Threading::GetCurrentProcessId;
    // SAFETY: a snapshot of every thread of the system; closed below.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    assert!(
        snap != INVALID_HANDLE_VALUE,
        "CreateToolhelp32Snapshot failed"
    );
    // SAFETY: no arguments; it cannot fail.
    let me = unsafe { GetCurrentProcessId() };
    let mut entry = THREADENTRY32 {
        dwSize: std::mem::size_of::<THREADENTRY32>() as u32,
        ..Default::default()
    };
    let mut n = 0;
    // SAFETY: a live snapshot and an entry whose `dwSize` is set.
    let mut more = unsafe { Thread32First(snap, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == me {
            n += 1;
        }
        // SAFETY: as above.
        more = unsafe { Thread32Next(snap, &mut entry) } != 0;
    }
    // SAFETY: the snapshot handle, closed once.
    unsafe { CloseHandle(snap) };
    n
}

/// Checks impersonation on the calling thread: no token before,
/// `impersonate` (a server end's `impersonate_client`, after data was read)
/// gives it the client's token, and dropping the guard it returns reverts.
/// Says so where Wine gives no token or lacks the call.
pub fn check_impersonation<G>(impersonate: impl FnOnce() -> std::io::Result<G>) {
    assert!(!thread_token(), "no impersonation token before");
    match impersonate() {
        Ok(guard) => {
            let during = thread_token();
            drop(guard);
            assert!(!thread_token(), "the guard reverted");
            if wine_version().is_some() && !during {
                wine_limitation(
                    "ImpersonateNamedPipeClient succeeds but gives the thread no token",
                );
            } else {
                assert!(during, "impersonating gives the thread the client's token");
            }
        }
        Err(e) if wine_version().is_some() => {
            wine_limitation(&format!(
                "ImpersonateNamedPipeClient is not implemented: {e}"
            ));
        }
        Err(e) => panic!("impersonating a connected client that sent data: {e}"),
    }
}

/// The closure form of impersonation, a server end's `with_client_identity`
/// (after data was read): `run` calls it with the closure it is given.
pub type WithIdentity<'a> = &'a dyn Fn(Box<dyn FnOnce() -> bool + '_>) -> std::io::Result<bool>;

/// Checks `with_client_identity` on the calling thread: the closure runs
/// with the client's token, and the thread has none after it returns, nor
/// after it panics. Says so where Wine gives no token or lacks the call.
pub fn check_client_identity(run: WithIdentity<'_>) {
    assert!(!thread_token(), "no impersonation token before");
    match run(Box::new(thread_token)) {
        Ok(during) => {
            assert!(!thread_token(), "reverted after the closure");
            if wine_version().is_some() && !during {
                wine_limitation(
                    "ImpersonateNamedPipeClient succeeds but gives the thread no token",
                );
            } else {
                assert!(during, "the closure runs with the client's token");
            }
        }
        Err(e) if wine_version().is_some() => {
            wine_limitation(&format!(
                "ImpersonateNamedPipeClient is not implemented: {e}"
            ));
            return;
        }
        Err(e) => panic!("impersonating a connected client that sent data: {e}"),
    }
    // A panic inside the closure still reverts (the guard drops while unwinding).
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(Box::new(|| panic!("a panic while acting as the client")))
    }));
    assert!(panicked.is_err(), "the panic came through");
    assert!(!thread_token(), "reverted after a panic in the closure");
}
