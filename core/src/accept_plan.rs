//! For fronts' listeners (`PipeListener` in mio-named-pipes): their
//! decisions, in plain Rust — which instances listen again, how many to
//! create, which one to hand out, and whether the listener is readable.
//! Built on Windows, and natively for its tests.

/// What the listener knows of one of its instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Waiting for a client (a connect in flight).
    Listening,
    /// A client is connected and the pipe was not handed out yet.
    Connected,
    /// The client came and left before `accept`, or the connect failed:
    /// the instance must disconnect and listen again. Never handed out.
    Gone,
}

/// What to do with the instances, as decided by [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Instances to disconnect and make listen again.
    pub relisten: Vec<usize>,
    /// How many new instances to create — before handing one out, unless
    /// [`later`](Plan::later) allows it after.
    pub create: usize,
    /// An instance is handed out and at least one other will still be
    /// listening: the hand-out need not wait for the `create` (a listener
    /// whose replacements are made by `accept` itself may hand the pipe out
    /// first and make them on its next call, so that the connection is
    /// served while they are made). False whenever no instance would be
    /// listening in between.
    pub later: bool,
    /// The instance to hand out, when taking one.
    pub take: Option<usize>,
    /// Whether a connected instance is left waiting for `accept`.
    pub ready: bool,
    /// How many connected instances are left waiting.
    pub waiting: usize,
    /// Fewer than `pending` instances will be listening and there is no
    /// room for more: the connected instances left waiting must read ahead,
    /// so that a client leaving frees its instance without an `accept`.
    /// Otherwise they do not read (a read and its cancel per connection are
    /// most of what a connection costs), and `accept` asks each candidate
    /// whether its client is still there.
    pub watch: bool,
}

/// Decides, from the instances' states, what the listener does. `pending`
/// instances should be listening at all times; connected instances not yet
/// accepted count against a limit of `2 * pending` instances in all, so a
/// flood of clients that are never accepted cannot make the listener create
/// instances without end. `taking`: `accept` wants an instance to hand out
/// (the oldest connected one).
pub fn plan(slots: &[Slot], pending: usize, taking: bool) -> Plan {
    let relisten: Vec<usize> = indices(slots, Slot::Gone).collect();
    let take = if taking {
        indices(slots, Slot::Connected).next()
    } else {
        None
    };
    let connected = indices(slots, Slot::Connected).count();
    let waiting = connected - usize::from(take.is_some());
    // Gone instances listen again.
    let listening = indices(slots, Slot::Listening).count() + relisten.len();
    let total = listening + waiting;
    let create = pending
        .saturating_sub(listening)
        .min((2 * pending).saturating_sub(total));
    Plan {
        relisten,
        create,
        take,
        later: take.is_some() && listening > 0,
        ready: waiting > 0,
        waiting,
        watch: waiting > 0 && listening + create < pending,
    }
}

/// Whether a listener's next instance must be created with
/// `FILE_FLAG_FIRST_PIPE_INSTANCE`: when asked (its very first one), and
/// whenever none of the instances it made is alive (`alive`: listening,
/// waiting, or handed out and not yet closed). With none, the name may have
/// vanished, and another process may have created it since: as a first
/// instance the creation fails then (`PermissionDenied`), instead of joining
/// the squatter's pipe and serving its clients or giving it ours.
pub fn first_instance(asked: bool, alive: usize) -> bool {
    asked || alive == 0
}

fn indices(slots: &[Slot], want: Slot) -> impl Iterator<Item = usize> + '_ {
    slots
        .iter()
        .enumerate()
        .filter(move |(_, s)| **s == want)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::Slot::{Connected as C, Gone as G, Listening as L};
    use super::*;

    #[test]
    fn a_listener_with_no_instance_alive_creates_a_first_instance() {
        assert!(first_instance(true, 0));
        assert!(first_instance(true, 3), "the listener's own first one");
        assert!(first_instance(false, 0), "every instance was lost");
        assert!(!first_instance(false, 1));
    }

    #[test]
    fn a_fresh_listener_creates_its_instances() {
        let p = plan(&[], 4, false);
        assert_eq!((p.create, p.ready, p.take), (4, false, None));
        let p = plan(&[L, L, L, L], 4, false);
        assert_eq!((p.create, p.ready), (0, false));
    }

    #[test]
    fn a_connection_is_replaced_at_once_not_at_accept() {
        // One connected: a replacement listens before anyone accepts.
        let p = plan(&[L, C, L, L], 4, false);
        assert_eq!((p.create, p.ready, p.waiting, p.take), (1, true, 1, None));
        // With one pending instance too.
        let p = plan(&[C], 1, false);
        assert_eq!((p.create, p.ready), (1, true));
    }

    #[test]
    fn accept_takes_the_first_connected_and_replaces_it_if_needed() {
        let p = plan(&[L, C, C, L], 2, true);
        assert_eq!(p.take, Some(1));
        assert_eq!((p.ready, p.waiting), (true, 1), "another one waits");
        assert_eq!(p.create, 0, "two listen already");
        // The last listening one connected and nobody replaced it yet.
        let p = plan(&[C], 1, true);
        assert_eq!((p.take, p.create, p.ready), (Some(0), 1, false));
        // Nothing connected: nothing to take.
        let p = plan(&[L, L], 2, true);
        assert_eq!((p.take, p.ready, p.create), (None, false, 0));
    }

    #[test]
    fn the_hand_out_waits_for_replacements_only_when_none_listens() {
        let p = plan(&[C, L, L, L], 4, true);
        assert_eq!((p.take, p.create, p.later), (Some(0), 1, true));
        let p = plan(&[C], 1, true);
        assert_eq!((p.take, p.create, p.later), (Some(0), 1, false));
        let p = plan(&[C, C], 2, true);
        assert_eq!((p.take, p.create, p.later), (Some(0), 2, false));
        // An instance listening again counts as listening.
        let p = plan(&[G, C], 2, true);
        assert_eq!((p.take, p.later), (Some(1), true));
        // Nothing handed out: nothing to do first.
        let p = plan(&[L, L], 4, true);
        assert_eq!((p.take, p.create, p.later), (None, 2, false));
    }

    #[test]
    fn clients_that_left_are_never_taken_and_listen_again() {
        let p = plan(&[G, L, G], 3, true);
        assert_eq!(p.take, None);
        assert_eq!(p.relisten, vec![0, 2]);
        assert_eq!((p.create, p.ready), (0, false));
        let p = plan(&[G, C], 2, true);
        assert_eq!(
            (p.take, p.relisten.clone(), p.create),
            (Some(1), vec![0], 1)
        );
    }

    #[test]
    fn connections_never_accepted_stop_the_growth() {
        // pending 2: at most 4 instances in all, listening first.
        let p = plan(&[C, C, L, L], 2, false);
        assert_eq!(p.create, 0);
        let p = plan(&[C, C, C, L], 2, false);
        assert_eq!(p.create, 0, "4 instances in all already");
        let p = plan(&[C, C, C, C], 2, false);
        assert_eq!((p.create, p.waiting), (0, 4));
        // Accepting one frees room for one listening instance.
        let p = plan(&[C, C, C, C], 2, true);
        assert_eq!((p.create, p.waiting, p.take), (1, 3, Some(0)));
        let p = plan(&[C, C, C], 2, false);
        assert_eq!(p.create, 1);
    }

    #[test]
    fn waiting_connections_are_watched_only_when_listening_runs_short() {
        // Room to create: nobody needs to notice a client leaving.
        let p = plan(&[C, L], 2, false);
        assert_eq!((p.create, p.watch), (1, false));
        // At the bound, short of listening instances: watch the waiting ones.
        let p = plan(&[C, C, C, L], 2, false);
        assert_eq!((p.create, p.watch), (0, true));
        let p = plan(&[C, C, C, C], 2, false);
        assert!(p.watch);
        // At the bound but listening enough: no need.
        let p = plan(&[C, C, L, L], 2, false);
        assert!(!p.watch);
        // Nothing waiting: nothing to watch.
        let p = plan(&[L], 2, false);
        assert!(!p.watch);
    }

    #[test]
    fn every_state_keeps_the_invariants() {
        // Exhaustive over up to 5 instances and pending 1 to 4.
        let all = [L, C, G];
        for n in 0..=5u32 {
            for code in 0..3usize.pow(n) {
                let mut c = code;
                let slots: Vec<Slot> = (0..n)
                    .map(|_| {
                        let s = all[c % 3];
                        c /= 3;
                        s
                    })
                    .collect();
                for pending in 1..=4 {
                    for taking in [false, true] {
                        let p = plan(&slots, pending, taking);
                        let listening_after = slots.iter().filter(|s| **s != C).count() + p.create;
                        let total_after = slots.len() + p.create - usize::from(p.take.is_some());
                        // Never a busy grow: only up to `pending` listening,
                        // and only within 2 * pending in all (or what exists).
                        assert!(listening_after <= pending.max(slots.len() - p.waiting));
                        assert!(total_after <= (2 * pending).max(slots.len()));
                        // Listening tops up to `pending` whenever there is room.
                        if total_after < 2 * pending {
                            assert!(listening_after >= pending, "{slots:?} {pending} {p:?}");
                        }
                        // Only a connected instance is taken; one is when asked and any exists.
                        if let Some(i) = p.take {
                            assert_eq!(slots[i], C);
                        }
                        assert_eq!(taking && slots.contains(&C), p.take.is_some());
                        assert_eq!(p.ready, p.waiting > 0);
                        // Watching only when listening instances run short
                        // with no room for more.
                        if p.watch {
                            assert!(
                                listening_after < pending
                                    && total_after >= 2 * pending
                                    && p.waiting > 0
                            );
                        }
                        if listening_after < pending && p.waiting > 0 {
                            assert!(p.watch, "{slots:?} {pending} {p:?}");
                        }
                        assert!(p.relisten.iter().all(|&i| slots[i] == G));
                    }
                }
            }
        }
    }
}
