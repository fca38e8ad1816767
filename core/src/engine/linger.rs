//! The linger of a dropped pipe: how long its accepted writes may still
//! take to be delivered.
//!
//! A dropped pipe keeps delivering what `write` accepted, as a closed TCP
//! socket does, and gives up only on a peer that stops reading: the limit
//! is a time without progress. The deadline starts at the drop and moves
//! to `limit` past every look that finds the kernel took more bytes
//! ([`Engine::bytes_written`](super::Engine::bytes_written)), so a peer
//! that reads late, or slowly, gets every byte, and one that never reads
//! (with its end open) holds the pipe for `limit`, not for ever.

use std::time::{Duration, Instant};

/// The deadline of one dropped pipe's linger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Linger {
    /// Time allowed without progress.
    limit: Duration,
    /// The bytes written when the deadline was last set.
    seen: u64,
    /// When the linger ends unless more is written; `None`: never (a
    /// limit too large for the clock, `Duration::MAX` say).
    deadline: Option<Instant>,
}

impl Linger {
    /// The linger of a pipe dropped at `now`, having written `written`
    /// bytes so far.
    pub(crate) fn start(limit: Duration, now: Instant, written: u64) -> Linger {
        Linger {
            limit,
            seen: written,
            deadline: now.checked_add(limit),
        }
    }

    /// A look at `now`, the pipe having written `written` bytes so far:
    /// progress since the last look moves the deadline to `limit` from
    /// now. Returns whether the linger is over (no progress, and past the
    /// deadline).
    pub(crate) fn expired(&mut self, now: Instant, written: u64) -> bool {
        if written != self.seen {
            self.seen = written;
            self.deadline = now.checked_add(self.limit);
            return false;
        }
        self.deadline.is_some_and(|t| t <= now)
    }

    /// When to look again, if ever.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_peer_that_never_reads_ends_the_linger_at_the_limit() {
        let t0 = Instant::now();
        let mut l = Linger::start(5 * S, t0, 100);
        assert_eq!(l.deadline(), Some(t0 + 5 * S));
        assert!(!l.expired(t0 + 4 * S, 100));
        assert!(l.expired(t0 + 5 * S, 100));
        assert!(l.expired(t0 + 60 * S, 100));
    }

    #[test]
    fn progress_moves_the_deadline_so_a_late_or_slow_reader_gets_everything() {
        let t0 = Instant::now();
        let mut l = Linger::start(5 * S, t0, 0);
        // The reader starts late: at the deadline the kernel took more.
        assert!(!l.expired(t0 + 5 * S, 64 * 1024));
        assert_eq!(l.deadline(), Some(t0 + 10 * S));
        // It keeps reading, slowly: each look finds progress.
        for i in 2..20u32 {
            assert!(!l.expired(t0 + 5 * i * S, u64::from(i) * 64 * 1024));
        }
        // Then it stops: one limit later, the linger is over.
        let last = t0 + 95 * S;
        assert!(!l.expired(last + 4 * S, 19 * 64 * 1024));
        assert!(l.expired(last + 5 * S, 19 * 64 * 1024));
    }

    #[test]
    fn a_limit_too_large_for_the_clock_means_for_ever_not_a_panic() {
        let t0 = Instant::now();
        let mut l = Linger::start(Duration::MAX, t0, 0);
        assert_eq!(l.deadline(), None);
        assert!(!l.expired(t0 + 1000 * S, 0));
        assert!(!l.expired(t0 + 1000 * S, 7));
        assert_eq!(l.deadline(), None);
        // A zero limit ends at the first look without progress.
        let mut z = Linger::start(Duration::ZERO, t0, 0);
        assert!(z.expired(t0, 0));
    }
}
