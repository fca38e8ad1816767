//! What every peer shares: sizes, the data stream and its check, pipe names,
//! and the context of one trial (abort flag, progress counters, stalls).

use std::any::Any;
use std::fs::OpenOptions;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::{IntoRawHandle, RawHandle};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// `FILE_FLAG_OVERLAPPED`.
pub const FILE_FLAG_OVERLAPPED: u32 = 0x4000_0000;

/// The largest piece [`stream`] hands out, and so the largest read buffer.
pub const READ_BUF: usize = 256 << 10;

/// The caller's buffer for every read of a stream, for every peer, unless
/// `--read-buf` says otherwise: as large as the writes, and as the pipes'
/// own buffers. (The figures depend on it: mio 1.x sizes its reads like the
/// caller's buffer, up to 64 KiB; this crate reads ahead in growing reads.)
pub const DEFAULT_READ_BUF: usize = 64 << 10;

/// How long an event loop waits in one poll while its pipe would block. A
/// poll that returns no event at all after this long, while a healthy peer
/// moves megabytes a second, is counted as a stall (a missed wakeup, most
/// likely), and the loop carries on.
pub const STALL: Duration = Duration::from_secs(1);

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Bytes of the bulk transfer.
    pub bulk: usize,
    /// Bytes of one write (bulk and many).
    pub chunk: usize,
    /// Timed ping-pong round trips.
    pub rounds: usize,
    /// Untimed round trips before them.
    pub warmup: usize,
    /// Bytes of one ping.
    pub msg: usize,
    /// Pipes of the many workload.
    pub pipes: usize,
    /// Bytes through each of them.
    pub per_pipe: usize,
    /// The caller's buffer for each read of a stream (bulk and many).
    pub read_buf: usize,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        bulk: 64 << 20,
        chunk: 64 << 10,
        rounds: 2000,
        warmup: 100,
        msg: 100,
        pipes: 256,
        per_pipe: 1 << 20,
        read_buf: DEFAULT_READ_BUF,
    };

    pub const QUICK: Sizes = Sizes {
        bulk: 8 << 20,
        chunk: 64 << 10,
        rounds: 200,
        warmup: 20,
        msg: 100,
        pipes: 32,
        per_pipe: 256 << 10,
        read_buf: DEFAULT_READ_BUF,
    };
}

/// A pipe name no other trial (or process) uses.
pub fn pipe_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        r"\\.\pipe\mnp-bench-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens a client of `name` for overlapped I/O and gives up its handle.
pub fn overlapped_client(name: &str) -> RawHandle {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(FILE_FLAG_OVERLAPPED)
        .open(name)
        .unwrap_or_else(|e| panic!("opening client {name}: {e}"))
        .into_raw_handle()
}

// ---------------------------------------------------------------- the stream

/// The period of the stream: a prime, so no power-of-two sized loss or
/// repetition of data can line up with it.
const PERIOD: usize = 1_048_573;

/// The bytes every stream carries: pseudo-random, with period [`PERIOD`],
/// stored with enough tail that any piece of up to [`READ_BUF`] bytes at any
/// offset is one contiguous slice. Writers send slices of it (no per-byte
/// work on the sending side), readers compare what they get with it
/// (a `memcmp`, cheap next to the pipe).
fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut v: Vec<u8> = (0..PERIOD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        v.extend_from_within(..READ_BUF);
        v
    })
}

/// The `len` bytes of the stream at offset `off` (`len <= READ_BUF`).
pub fn stream(off: usize, len: usize) -> &'static [u8] {
    assert!(len <= READ_BUF);
    &pattern()[off % PERIOD..][..len]
}

/// Builds the stream table before anything is timed.
pub fn init_stream() {
    pattern();
}

/// Checks one received stream: every byte, in order, and the count.
#[derive(Debug)]
pub struct Verifier {
    got: usize,
    total: usize,
    what: String,
}

impl Verifier {
    pub fn new(total: usize, what: impl Into<String>) -> Verifier {
        Verifier {
            got: 0,
            total,
            what: what.into(),
        }
    }

    /// Takes `data`, the next bytes read; panics if they are not the ones sent.
    pub fn take(&mut self, data: &[u8]) {
        assert!(
            self.got + data.len() <= self.total,
            "{}: received {} bytes, more than the {} sent",
            self.what,
            self.got + data.len(),
            self.total
        );
        for (i, piece) in data.chunks(READ_BUF).enumerate() {
            let off = self.got + i * READ_BUF;
            if piece != stream(off, piece.len()) {
                let bad = piece
                    .iter()
                    .zip(stream(off, piece.len()))
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                panic!(
                    "{}: wrong data at stream offset {} (received {:#04x}, sent {:#04x})",
                    self.what,
                    off + bad,
                    piece[bad],
                    stream(off + bad, 1)[0]
                );
            }
        }
        self.got += data.len();
    }

    /// Panics on an end of file before everything arrived.
    pub fn eof(&self) -> ! {
        panic!(
            "{}: unexpected end of file after {} of {} bytes",
            self.what, self.got, self.total
        )
    }

    pub fn got(&self) -> usize {
        self.got
    }

    pub fn done(&self) -> bool {
        self.got == self.total
    }
}

// ---------------------------------------------------------------- a trial

/// Shared by the threads of one trial and the watchdog that waits for it.
#[derive(Debug, Default)]
pub struct Ctx {
    abort: AtomicBool,
    failure: Mutex<Option<String>>,
    /// Bytes the writers had accepted.
    pub sent: AtomicUsize,
    /// Bytes the readers had received (and checked).
    pub received: AtomicUsize,
    /// Polls that waited [`STALL`] and returned no event.
    pub stalls: AtomicUsize,
    /// Polls that returned early with no event while the pipe would block.
    pub empty: AtomicUsize,
}

/// The panic of a thread whose trial was given up (not itself a failure).
#[derive(Debug)]
pub struct Abandoned;

/// Prints panics on a line of their own (the progress line is unfinished),
/// and not at all for threads of a trial given up.
pub fn install_panic_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<Abandoned>().is_none() {
            eprintln!();
            default(info);
        }
    }));
}

/// The message of a panic payload.
pub fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if p.downcast_ref::<Abandoned>().is_some() {
        "trial abandoned".to_string()
    } else {
        "panic".to_string()
    }
}

impl Ctx {
    /// Spawns a thread of this trial. If it panics, the failure is recorded
    /// (so the watchdog reports it even if a sibling is now stuck) and the
    /// other threads' waits give up.
    pub fn spawn<T: Send + 'static>(
        &'static self,
        name: String,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        thread::Builder::new()
            .name(name.clone())
            .spawn(move || match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(t) => t,
                Err(p) => {
                    self.fail(format!("{name}: {}", panic_message(&*p)));
                    panic::resume_unwind(p)
                }
            })
            .expect("spawning a thread")
    }

    /// Records a failure (the first one wins) and tells every wait to give up.
    pub fn fail(&self, msg: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(msg);
        }
        self.abort.store(true, Ordering::Release);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Tells every wait to give up (after a hang).
    pub fn abort(&self) {
        self.abort.store(true, Ordering::Release);
    }

    /// Panics if the trial was given up; called by every wait.
    pub fn check(&self) {
        if self.abort.load(Ordering::Acquire) {
            panic::panic_any(Abandoned);
        }
    }

    pub fn add_sent(&self, n: usize) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_received(&self, n: usize) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    pub fn empty_wakeup(&self) {
        self.empty.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stall(&self) {
        self.stalls.fetch_add(1, Ordering::Relaxed);
    }
}

/// Joins a thread of a trial, passing its panic on.
pub fn join<T>(h: JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|p| panic::resume_unwind(p))
}

// ---------------------------------------------------------------- traces, memory

/// This process's private bytes now and at their peak so far, from
/// `GetProcessMemoryInfo` (`PrivateUsage`, `PeakPagefileUsage`). Wine 8
/// leaves `PrivateUsage` at 0 and reports the process's anonymous resident
/// memory (`RssAnon` + `VmSwap` of Linux) as both `PagefileUsage` and
/// `PeakPagefileUsage`, so there "now" is `PagefileUsage` and the peak is
/// only as good as the caller's sampling.
pub fn private_bytes() -> (usize, usize) {
    use windows_sys::Win32::System::ProcessStatus::{
        GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS, PROCESS_MEMORY_COUNTERS_EX,
    };
    use windows_sys::Win32::System::Threading::GetCurrentProcess;
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut c: PROCESS_MEMORY_COUNTERS_EX = unsafe { std::mem::zeroed() };
    c.cb = std::mem::size_of::<PROCESS_MEMORY_COUNTERS_EX>() as u32;
    // SAFETY: the pseudo handle of this process; `c` is writable and `cb`
    // says its size (the _EX struct starts with the plain one).
    let ok = unsafe {
        GetProcessMemoryInfo(
            GetCurrentProcess(),
            (&mut c as *mut PROCESS_MEMORY_COUNTERS_EX).cast::<PROCESS_MEMORY_COUNTERS>(),
            c.cb,
        )
    };
    assert!(
        ok != 0,
        "GetProcessMemoryInfo: {}",
        std::io::Error::last_os_error()
    );
    let now = if c.PrivateUsage > 0 {
        c.PrivateUsage
    } else {
        c.PagefileUsage
    };
    (now, c.PeakPagefileUsage.max(now))
}
