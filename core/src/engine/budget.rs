//! The buffer budget: memory that pipes may hold beyond their default limits.
//!
//! A pipe with the default limits reads at most [`MAX_READ`](super::MAX_READ)
//! at once and queues at most [`WRITE_QUEUE`](super::WRITE_QUEUE) behind a
//! write in flight, so that hundreds of streaming pipes stay small. One or a
//! few streaming pipes would cost fewer operations per byte with larger
//! buffers, so a pipe that keeps filling its buffers may grow them — up to
//! [`Limits::grown_read`](super::Limits::grown_read) and
//! [`Limits::grown_queue`](super::Limits::grown_queue) — if it first takes
//! the extra bytes from a [`Budget`] shared by every pipe of the process.
//! What it took is a [`Grant`], handed back when it is dropped: when the
//! pipe shrinks again, disconnects, is closed, released or dropped.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The bytes the process's pipes may hold, all together, beyond their
/// default limits.
pub(crate) const PROCESS_BUDGET: usize = 3 << 20;

/// An allowance of bytes shared by pipes (cloning shares it).
#[derive(Clone)]
pub(crate) struct Budget {
    left: Arc<AtomicUsize>,
    size: usize,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("left", &self.left())
            .field("size", &self.size)
            .finish()
    }
}

impl Budget {
    /// A budget of `size` bytes of its own.
    pub(crate) fn new(size: usize) -> Budget {
        Budget {
            left: Arc::new(AtomicUsize::new(size)),
            size,
        }
    }

    /// The budget of every pipe in this process: [`PROCESS_BUDGET`] bytes.
    pub(crate) fn process() -> Budget {
        static PROCESS: OnceLock<Budget> = OnceLock::new();
        PROCESS.get_or_init(|| Budget::new(PROCESS_BUDGET)).clone()
    }

    /// Bytes not granted now.
    pub(crate) fn left(&self) -> usize {
        self.left.load(Ordering::Relaxed)
    }

    /// Whether every grant was handed back.
    #[cfg(test)]
    pub(crate) fn is_whole(&self) -> bool {
        self.left() == self.size
    }

    /// Takes `bytes` if that many are left; they come back when the grant
    /// is dropped.
    pub(crate) fn take(&self, bytes: usize) -> Option<Grant> {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .ok()?;
        Some(Grant {
            budget: self.clone(),
            bytes,
        })
    }
}

/// Bytes taken from a [`Budget`], given back on drop.
pub(crate) struct Grant {
    budget: Budget,
    bytes: usize,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Grant({} bytes)", self.bytes)
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.budget.left.fetch_add(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_come_back_when_dropped_and_never_exceed_the_budget() {
        let b = Budget::new(100);
        let g1 = b.take(60).expect("60 of 100");
        assert!(b.take(50).is_none(), "only 40 left");
        let g2 = b.take(40).expect("the last 40");
        assert_eq!(b.left(), 0);
        drop(g1);
        assert_eq!(b.left(), 60);
        assert!(!b.is_whole());
        drop(g2);
        assert!(b.is_whole());
        // A clone shares the allowance.
        let c = b.clone();
        let g = c.take(100).expect("all of it");
        assert!(b.take(1).is_none());
        drop(g);
        assert!(b.is_whole());
    }
}
