//! What the process holds: open handles (by type) and private bytes, in a
//! way that works under Wine, where `GetProcessHandleCount` answers 0.

use std::collections::BTreeMap;
use std::fmt;

use windows_sys::Wdk::Foundation::{NtQueryObject, ObjectTypeInformation};
use windows_sys::Win32::Foundation::{GetHandleInformation, HANDLE};
use windows_sys::Win32::System::ProcessStatus::{
    GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS, PROCESS_MEMORY_COUNTERS_EX,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};

/// The open handles of this process, by object type ("File", "IoCompletion", ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handles {
    pub by_type: BTreeMap<String, usize>,
}

impl Handles {
    pub fn total(&self) -> usize {
        self.by_type.values().sum()
    }

    /// The types of which there are more than `before`, and how many more.
    /// Fewer is no leak: a handle that was being closed when `before` was
    /// taken (one whose type could not even be named then) may be gone.
    pub fn grew(&self, before: &Handles) -> BTreeMap<String, isize> {
        let mut g = self.growth(before);
        g.retain(|_, d| *d > 0);
        g
    }

    /// The types whose count differs from `before`, with the change.
    pub fn growth(&self, before: &Handles) -> BTreeMap<String, isize> {
        let mut out = BTreeMap::new();
        for t in self.by_type.keys().chain(before.by_type.keys()) {
            let d = self.by_type.get(t).copied().unwrap_or(0) as isize
                - before.by_type.get(t).copied().unwrap_or(0) as isize;
            if d != 0 {
                out.insert(t.clone(), d);
            }
        }
        out
    }
}

impl fmt::Display for Handles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} handles {:?}", self.total(), self.by_type)
    }
}

/// The handles of this process but its thread handles. The test harness
/// holds a handle to each test's thread, and starts threads for the tests
/// that wait their turn at any moment; this crate holds no thread handle
/// (its threads are detached).
pub fn handles_but_threads() -> Handles {
    let mut h = handles();
    h.by_type.remove("Thread");
    h
}

/// Handle values are multiples of 4; after this many values in a row that
/// are not open handles, the table has ended.
const GAP: usize = 4096;

/// Every open handle of the process, found by probing handle values with
/// `GetHandleInformation` and named with `NtQueryObject`.
pub fn handles() -> Handles {
    let mut out = Handles::default();
    let mut misses = 0;
    let mut value = 4usize;
    while misses < GAP {
        let h = value as HANDLE;
        let mut flags = 0u32;
        // SAFETY: probing a handle value: an invalid one fails harmlessly.
        if unsafe { GetHandleInformation(h, &mut flags) } != 0 {
            misses = 0;
            // (None: another thread closed it in between; it is not held.)
            if let Some(name) = type_name(h) {
                *out.by_type.entry(name).or_insert(0) += 1;
            }
        } else {
            misses += 1;
        }
        value += 4;
    }
    out
}

/// The type of handle `h`; `None` if it was closed since it was found.
fn type_name(h: HANDLE) -> Option<String> {
    const STATUS_INVALID_HANDLE: i32 = 0xC000_0008_u32 as i32;
    // PUBLIC_OBJECT_TYPE_INFORMATION: a UNICODE_STRING (u16 length in
    // bytes, u16 capacity, padding, pointer) and more; the name follows.
    let mut buf = [0u64; 256];
    let mut len = 0u32;
    // SAFETY: a live handle; the buffer is writable for its whole size.
    let status = unsafe {
        NtQueryObject(
            h,
            ObjectTypeInformation,
            buf.as_mut_ptr().cast(),
            std::mem::size_of_val(&buf) as u32,
            &mut len,
        )
    };
    if status == STATUS_INVALID_HANDLE {
        return None;
    }
    if status < 0 {
        return Some(format!("unknown (NTSTATUS {status:#x})"));
    }
    let bytes = (buf[0] & 0xffff) as usize;
    let ptr = buf[1] as *const u16;
    if ptr.is_null() {
        return Some("unnamed".into());
    }
    // SAFETY: the string NtQueryObject wrote, inside `buf`, `bytes` long.
    let name = unsafe { std::slice::from_raw_parts(ptr, bytes / 2) };
    Some(String::from_utf16_lossy(name))
}

/// What `GetProcessHandleCount` says (0 under Wine, which does not count).
pub fn os_handle_count() -> u32 {
    let mut n = 0u32;
    // SAFETY: the pseudo-handle of this process, a valid out-pointer.
    unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut n) };
    n
}

/// The process's private bytes (`PrivateUsage` of `GetProcessMemoryInfo`,
/// or `PagefileUsage` where that is 0).
pub fn private_bytes() -> usize {
    let mut c = PROCESS_MEMORY_COUNTERS_EX::default();
    // SAFETY: the pseudo-handle of this process, and a counters structure of the size given.
    let ok = unsafe {
        GetProcessMemoryInfo(
            GetCurrentProcess(),
            (&mut c as *mut PROCESS_MEMORY_COUNTERS_EX).cast::<PROCESS_MEMORY_COUNTERS>(),
            std::mem::size_of::<PROCESS_MEMORY_COUNTERS_EX>() as u32,
        )
    };
    assert!(
        ok != 0,
        "GetProcessMemoryInfo: {}",
        std::io::Error::last_os_error()
    );
    if c.PrivateUsage == 0 {
        // Wine 8 leaves `PrivateUsage` at 0; its `PagefileUsage` (the
        // commit charge, which Windows reports equal to `PrivateUsage`) is
        // the process's anonymous memory.
        return c.PagefileUsage;
    }
    c.PrivateUsage
}

/// Whether `private_bytes` falls back to `PagefileUsage` (Wine).
pub fn private_usage_missing() -> bool {
    let mut c = PROCESS_MEMORY_COUNTERS_EX::default();
    // SAFETY: as in `private_bytes`.
    unsafe {
        GetProcessMemoryInfo(
            GetCurrentProcess(),
            (&mut c as *mut PROCESS_MEMORY_COUNTERS_EX).cast::<PROCESS_MEMORY_COUNTERS>(),
            std::mem::size_of::<PROCESS_MEMORY_COUNTERS_EX>() as u32,
        )
    };
    c.PrivateUsage == 0
}
