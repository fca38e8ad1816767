//! The tasks waiting on one side of a pipe: a list, so that any number of
//! tasks may wait on the same pipe and side (OS-free, with native tests).

use std::mem;
use std::task::Waker;

/// The tasks waiting on one side of a pipe: any number of them, each
/// once (a task that parks again, with a waker that
/// [`will_wake`](Waker::will_wake) the same task, takes no second
/// place). All of them are woken when the side turns ready: readiness
/// may be taken by one of them only, the others try, fail and park again.
///
/// A task that parked and then stopped waiting (its future dropped) keeps
/// its place until the side next turns ready or the pipe is dropped: the
/// list holds at most one waker per task that waited on this side since.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    /// The first task: one waiting task, the common case, costs no
    /// allocation.
    first: Option<Waker>,
    /// The others.
    rest: Vec<Waker>,
}

/// The waiters taken from a [`Waiters`], to wake (or drop) outside the lock.
pub(crate) type Taken = std::iter::Chain<std::option::IntoIter<Waker>, std::vec::IntoIter<Waker>>;

impl Waiters {
    /// Adds `waker`, unless a waker of the same task is there: `true` if added.
    pub(crate) fn park(&mut self, waker: &Waker) -> bool {
        let same = |w: &Waker| w.will_wake(waker);
        if self.first.as_ref().is_some_and(same) || self.rest.iter().any(same) {
            return false;
        }
        if self.first.is_none() {
            self.first = Some(waker.clone());
        } else {
            self.rest.push(waker.clone());
        }
        true
    }

    /// Takes every waiter (to be woken, or dropped, by the caller outside
    /// the lock).
    pub(crate) fn take(&mut self) -> Taken {
        let rest = if self.rest.is_empty() {
            Vec::new()
        } else {
            mem::take(&mut self.rest)
        };
        self.first.take().into_iter().chain(rest)
    }

    /// How many tasks wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn every_task_waits_once_and_all_are_taken() {
        let tasks: Vec<Arc<Count>> = (0..3).map(|_| Arc::default()).collect();
        let wakers: Vec<Waker> = tasks.iter().map(|t| Waker::from(Arc::clone(t))).collect();
        let mut w = Waiters::default();
        assert!(w.park(&wakers[0]));
        assert!(w.park(&wakers[1]));
        // The same task again (a clone of its waker): no second place.
        assert!(!w.park(&wakers[0].clone()));
        assert!(w.park(&wakers[2]));
        assert_eq!(w.len(), 3);
        for waker in w.take() {
            waker.wake();
        }
        assert_eq!(w.len(), 0);
        let woken: Vec<usize> = tasks.iter().map(|t| t.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [1, 1, 1]);
        // Taken: parking again is possible, and nothing else is woken.
        assert!(w.park(&wakers[1]));
        assert_eq!(w.take().count(), 1);
        assert_eq!(w.take().count(), 0);
    }
}
