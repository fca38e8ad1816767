//! How long a client's `open` waits while every instance of the pipe is
//! busy: the `busy_timeout` turned into a deadline, and each wait
//! (`WaitNamedPipeW`) sized to what is left of it.

use std::time::{Duration, Instant};

/// The most one `WaitNamedPipeW` may wait, in milliseconds: below
/// `NMPWAIT_WAIT_FOREVER` (`u32::MAX`), which is no timeout at all.
const MAX_WAIT_MS: u32 = u32::MAX - 1;

/// A client's wait for a free instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BusyWait {
    /// No `busy_timeout`: a busy pipe fails at once.
    Fail,
    /// Wait until then.
    Until(Instant),
    /// A `busy_timeout` too large for the clock (`Duration::MAX`, say):
    /// wait for ever, never a panic.
    Forever,
}

impl BusyWait {
    /// The wait of an `open` that starts at `now` with `timeout`.
    pub(crate) fn new(timeout: Option<Duration>, now: Instant) -> BusyWait {
        match timeout {
            None => BusyWait::Fail,
            Some(t) => now
                .checked_add(t)
                .map_or(BusyWait::Forever, BusyWait::Until),
        }
    }

    /// How long the next `WaitNamedPipeW` waits, in milliseconds (at least
    /// 1, at most `slice`, rounded up); `None`: give up, the pipe is busy
    /// (no timeout) or the deadline has passed.
    pub(crate) fn next(&self, now: Instant, slice: Duration) -> Option<u32> {
        let left = match *self {
            BusyWait::Fail => return None,
            BusyWait::Until(t) => match t.saturating_duration_since(now) {
                left if left.is_zero() => return None,
                left => left,
            },
            BusyWait::Forever => Duration::MAX,
        };
        let wait = left.min(slice);
        let ms = wait.as_millis() + u128::from(wait.subsec_nanos() % 1_000_000 != 0);
        Some(
            u32::try_from(ms)
                .unwrap_or(MAX_WAIT_MS)
                .clamp(1, MAX_WAIT_MS),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn any_timeout_too_large_for_the_clock_waits_for_ever() {
        let now = Instant::now();
        for t in [
            Duration::MAX,
            Duration::from_secs(u64::MAX),
            Duration::MAX - MS,
        ] {
            let w = BusyWait::new(Some(t), now);
            assert_eq!(w, BusyWait::Forever);
            // Each wait is the longest one with a timeout, never "no wait".
            assert_eq!(w.next(now, Duration::MAX), Some(MAX_WAIT_MS));
            assert_eq!(
                w.next(now + Duration::from_secs(1 << 40), 100 * MS),
                Some(100)
            );
        }
    }

    #[test]
    fn a_timeout_is_a_deadline_and_waits_shrink_towards_it() {
        let now = Instant::now();
        let w = BusyWait::new(Some(1500 * MS), now);
        assert_eq!(w.next(now, Duration::MAX), Some(1500));
        assert_eq!(w.next(now, 100 * MS), Some(100), "sliced");
        assert_eq!(w.next(now + 1499 * MS, Duration::MAX), Some(1));
        assert_eq!(w.next(now + 1500 * MS, Duration::MAX), None, "timed out");
        // Less than a millisecond left still waits a millisecond.
        assert_eq!(w.next(now + 1499 * MS + MS / 2, Duration::MAX), Some(1));
        // Days fit; years are clamped below NMPWAIT_WAIT_FOREVER.
        let long = BusyWait::new(Some(Duration::from_secs(10 * 365 * 86_400)), now);
        assert_eq!(long.next(now, Duration::MAX), Some(MAX_WAIT_MS));
    }

    #[test]
    fn no_timeout_and_a_zero_timeout_fail_at_once() {
        let now = Instant::now();
        assert_eq!(BusyWait::new(None, now).next(now, Duration::MAX), None);
        assert_eq!(
            BusyWait::new(Some(Duration::ZERO), now).next(now, Duration::MAX),
            None
        );
    }
}
