//! The process-wide reaper: one thread, started when a dropped pipe first
//! needs it and ending once no dropped pipe has needed it for [`IDLE`],
//! that ends the linger of dropped pipes and frees what their cancelled
//! operations leave behind.
//!
//! A dropped pipe whose writes are still being delivered, or whose
//! cancelled operations the kernel has not finished, is handed over here
//! with the time to look at it again. No port is needed for that: the
//! front's port (a mio Poll) may be gone, or never turned again. The thread
//! sleeps until the earliest of those times (no timer per pipe, no busy
//! loop); a pipe whose operations the kernel has not finished is looked at
//! again after a delay that doubles up to a second.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// A dropped pipe, whatever its front.
pub(crate) trait Lingering: Send + Sync {
    /// Looks at the dropped pipe: ends its linger once past the deadline,
    /// frees what the kernel finished. Says when to look again.
    fn visit(self: Arc<Self>, now: Instant) -> Visit;
}

/// When to look at a dropped pipe again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Visit {
    /// Nothing is left: the handle is closed, and every buffer the kernel
    /// had is back or freed.
    Done,
    /// At this time (at once or earlier: as soon as the back-off allows).
    At(Instant),
}

/// The first delay before looking again at operations the kernel has not
/// finished, and the longest.
const FIRST_RETRY: Duration = Duration::from_millis(10);
const LAST_RETRY: Duration = Duration::from_secs(1);
/// How long the thread waits with nothing to look at before it ends. A
/// server dropping a pipe per connection hands over a pipe every few
/// milliseconds (a dropped pipe's cancelled read-ahead is rarely finished
/// by the kernel before the drop returns); ending at once would start a
/// thread for nearly every one of them (90 threads for 1,000 connections
/// in the async front's accept benchmark under Wine).
const IDLE: Duration = Duration::from_secs(10);

struct Entry {
    pipe: Arc<dyn Lingering>,
    at: Instant,
    retry: Duration,
}

struct Reaper {
    entries: Vec<Entry>,
    /// The thread is running (or starting).
    running: bool,
}

static REAPER: Mutex<Reaper> = Mutex::new(Reaper {
    entries: Vec::new(),
    running: false,
});
static WAKE: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, Reaper> {
    REAPER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands a dropped pipe over, to be looked at at `at`.
pub(crate) fn hand_over(pipe: Arc<dyn Lingering>, at: Instant) {
    let mut r = lock();
    r.entries.push(Entry {
        pipe,
        at,
        retry: FIRST_RETRY,
    });
    if r.running {
        WAKE.notify_one();
        return;
    }
    r.running = true;
    let spawned = thread::Builder::new()
        .name("named-pipes linger reaper".into())
        .spawn(run);
    if spawned.is_err() {
        // No thread now: the next hand-over tries again.
        r.running = false;
    }
}

fn run() {
    loop {
        let due = {
            let mut r = lock();
            let mut idle_since = None;
            loop {
                let now = Instant::now();
                let Some(next) = r.entries.iter().map(|e| e.at).min() else {
                    let since = *idle_since.get_or_insert(now);
                    if now.duration_since(since) >= IDLE {
                        r.running = false;
                        return;
                    }
                    r = WAKE
                        .wait_timeout(r, IDLE - now.duration_since(since))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                };
                idle_since = None;
                if next <= now {
                    break;
                }
                r = WAKE
                    .wait_timeout(r, next - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let now = Instant::now();
            let (due, later): (Vec<Entry>, Vec<Entry>) =
                r.entries.drain(..).partition(|e| e.at <= now);
            r.entries = later;
            due
        };
        // Each pipe is visited without the reaper's lock, so that a pipe
        // being dropped meanwhile can hand itself over.
        let now = Instant::now();
        let mut again = Vec::new();
        for mut e in due {
            match Arc::clone(&e.pipe).visit(now) {
                Visit::Done => drop(e),
                Visit::At(t) if t > now => {
                    e.at = t;
                    e.retry = FIRST_RETRY;
                    again.push(e);
                }
                Visit::At(_) => {
                    e.at = now + e.retry;
                    e.retry = (e.retry * 2).min(LAST_RETRY);
                    again.push(e);
                }
            }
        }
        lock().entries.append(&mut again);
    }
}
