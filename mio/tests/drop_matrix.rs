//! Nothing leaks when a Poll, a pipe or its peer goes away, in any order:
//! every drop order of (Poll, server, client), with writes pending on
//! neither, one or both ends, with and without a peer that reads while the
//! others go. After the linger limit the process holds exactly the handles
//! it held before, and its private bytes have not grown by the buffers.
//!
//! Handles are counted by probing handle values (`GetHandleInformation`)
//! and named by type (`NtQueryObject`): `GetProcessHandleCount` answers 0
//! under Wine. The tests of this binary run one at a time, so that one's
//! pipes never show in another's count.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::io::{self, Read};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mio_named_pipes::{ClientOptions, NamedPipe, ServerOptions};
use util::resources::{
    handles, handles_but_threads, os_handle_count, private_bytes, private_usage_missing, Handles,
};
use util::*;

/// The linger limit of every pipe here: short, to keep the binary quick.
const LINGER: Duration = Duration::from_millis(300);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Thing {
    Poll,
    Server,
    Client,
}

use Thing::*;

const ORDERS: [[Thing; 3]; 6] = [
    [Poll, Server, Client],
    [Poll, Client, Server],
    [Server, Poll, Client],
    [Server, Client, Poll],
    [Client, Poll, Server],
    [Client, Server, Poll],
];

#[derive(Clone, Copy, Debug)]
struct Case {
    server_writes: bool,
    client_writes: bool,
    /// Before each drop, whatever is still alive reads for a while.
    reading: bool,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for reading in [false, true] {
        for (server_writes, client_writes) in
            [(false, false), (true, false), (false, true), (true, true)]
        {
            out.push(Case {
                server_writes,
                client_writes,
                reading,
            });
        }
    }
    out
}

/// How much `write` accepts while a write is in flight: 1 MiB, so that a
/// pipe dropped with writes pending holds a megabyte the kernel has not
/// taken (the library's default queue is smaller).
const QUEUE: usize = 1 << 20;

/// A connected pair with the short linger and a 1 MiB write queue, registered with `l`.
fn lingering_pair(l: &mut Looper) -> (NamedPipe, NamedPipe) {
    let name = name();
    let server = ServerOptions::new()
        .linger(LINGER)
        .write_queue(QUEUE)
        .create(&name)
        .unwrap();
    l.add(&server);
    let client = ClientOptions::new()
        .linger(LINGER)
        .write_queue(QUEUE)
        .open(&name)
        .unwrap();
    l.add(&client);
    l.connect(&server);
    (server, client)
}

/// Reads whatever arrives on the pipes still there, for a while.
fn read_for_a_while(l: &mut Looper, pipes: &[&Option<NamedPipe>]) {
    let mut buf = vec![0u8; 256 * 1024];
    for _ in 0..5 {
        l.turn(Duration::from_millis(10));
        for p in pipes.iter().filter_map(|p| p.as_ref()) {
            loop {
                match (&*p).read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
    }
}

/// One pair, with reads pending on both ends, writes pending as `case`
/// says, dropped with its Poll in `order`.
fn one(order: [Thing; 3], case: Case, seed: u64) {
    let mut l = Looper::new();
    let (server, client) = lingering_pair(&mut l);
    // Both ends read ahead from registration on: a read is pending on each.
    let data = pattern(seed, 1 << 20);
    if case.server_writes {
        assert!(write_until_blocked(&server, &data) > 0);
    }
    if case.client_writes {
        assert!(write_until_blocked(&client, &data) > 0);
    }
    let mut poll = Some(l);
    let (mut server, mut client) = (Some(server), Some(client));
    for thing in order {
        if case.reading {
            if let Some(l) = poll.as_mut() {
                read_for_a_while(l, &[&server, &client]);
            }
        }
        match thing {
            Poll => drop(poll.take()),
            Server => drop(server.take()),
            Client => drop(client.take()),
        }
    }
}

/// Waits until the process holds what it held in `before` (linger limit
/// and the reaper's retries included), or a generous time has passed.
fn settle(before: &Handles) -> Handles {
    let deadline = Instant::now() + LINGER + Duration::from_secs(10);
    std::thread::sleep(LINGER);
    loop {
        let now = handles_but_threads();
        if now == *before || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_handle_counter_sees_pipes_and_ports() {
    let _s = serial();
    let before = handles_but_threads();
    assert!(before.total() > 0, "no handle found: {before}");
    let mut l = Looper::new();
    let pair = lingering_pair(&mut l);
    let with = handles_but_threads();
    let growth = with.growth(&before);
    assert_eq!(growth.get("File"), Some(&2), "two pipe ends: {growth:?}");
    assert_eq!(growth.get("IoCompletion"), Some(&1), "one port: {growth:?}");
    let (os_with, probed) = (os_handle_count(), handles().total());
    drop(pair);
    drop(l);
    assert_eq!(settle(&before), before);
    if os_with == 0 {
        wine_limitation("GetProcessHandleCount answers 0; handles are counted by probing instead");
    } else {
        // Windows counts: the probe finds the handles the OS counts. Other
        // tests' threads may open or close a few between the two calls.
        let slack = 16;
        assert!(
            probed.abs_diff(os_with as usize) <= slack,
            "GetProcessHandleCount says {os_with}, probing found {probed}"
        );
    }
}

#[test]
fn the_private_bytes_meter_sees_buffers_come_and_go() {
    let _s = serial();
    let b0 = private_bytes();
    let v: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 1 << 20]).collect();
    let b1 = private_bytes();
    drop(v);
    let b2 = private_bytes();
    assert!(b1 >= b0 + (60 << 20), "64 MiB more shows: {b0} -> {b1}");
    assert!(b2 + (60 << 20) <= b1, "and goes: {b1} -> {b2}");
    if private_usage_missing() {
        wine_limitation(
            "PrivateUsage of GetProcessMemoryInfo is 0; PagefileUsage is measured instead",
        );
    }
}

#[test]
fn every_drop_order_leaves_nothing_behind() {
    let _s = serial();
    let cases = cases();
    // Warm-up: whatever the first use allocates for good (the reaper's
    // first start, the heap's first growth) is not a leak.
    for case in &cases {
        one(ORDERS[0], *case, 0);
    }
    let _ = settle(&handles_but_threads());
    const REPS: u64 = 3;
    let mut failures = Vec::new();
    for order in ORDERS {
        let before = handles_but_threads();
        let bytes_before = private_bytes();
        let mut seed = 1;
        for _ in 0..REPS {
            for case in &cases {
                one(order, *case, seed);
                seed += 1;
            }
        }
        let after = settle(&before);
        let bytes_after = private_bytes();
        let pairs = REPS as usize * cases.len();
        let grown = bytes_after as isize - bytes_before as isize;
        println!(
            "drop order {order:?}: {pairs} pairs, handles {} -> {} (growth {:?}), private bytes {:+} KiB",
            before.total(),
            after.total(),
            after.growth(&before),
            grown / 1024
        );
        if !after.grew(&before).is_empty() {
            failures.push(format!(
                "{order:?}: handles grew {:?}",
                after.growth(&before)
            ));
        }
        // Each pair wrote up to 2 x 2 MiB; leaking any buffer of one pair
        // in the block would show as far more than this.
        if grown > 4 << 20 {
            failures.push(format!(
                "{order:?}: private bytes grew {} KiB",
                grown / 1024
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_poll_dropped_before_twenty_idle_pairs_leaves_no_port() {
    // A struct `{ poll, pipes }` drops its Poll first.
    let _s = serial();
    let before = handles_but_threads();
    let mut l = Looper::new();
    let pairs: Vec<_> = (0..20).map(|_| lingering_pair(&mut l)).collect();
    drop(l);
    drop(pairs);
    // No write was pending: no linger to wait for.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !handles_but_threads().grew(&before).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = handles_but_threads();
    assert!(
        after.grew(&before).is_empty(),
        "left behind: {:?}",
        after.growth(&before)
    );
}

#[test]
fn both_ends_dropped_with_writes_pending_close_within_the_linger_limit() {
    let _s = serial();
    let before = handles_but_threads();
    let mut l = Looper::new();
    let baseline_with_poll = handles_but_threads();
    let mut pairs = Vec::new();
    for seed in 0..10 {
        let (server, client) = lingering_pair(&mut l);
        let data = pattern(seed, 1 << 20);
        assert!(write_until_blocked(&server, &data) > 0);
        assert!(write_until_blocked(&client, &data) > 0);
        pairs.push((server, client));
    }
    let dropped = Instant::now();
    drop(pairs);
    // The Poll keeps running: neither end ever reads, so only the linger
    // limit can close them.
    let closed_at = loop {
        l.turn(Duration::from_millis(20));
        if handles_but_threads() == baseline_with_poll {
            break dropped.elapsed();
        }
        assert!(
            dropped.elapsed() < LINGER + Duration::from_secs(10),
            "still open after {:?}: {}",
            dropped.elapsed(),
            handles_but_threads()
        );
    };
    println!("10 pairs dropped with writes pending on both ends: closed after {closed_at:?} (linger {LINGER:?})");
    assert!(
        closed_at >= LINGER,
        "closed before the linger limit: {closed_at:?}"
    );
    drop(l);
    assert_eq!(settle(&before), before);
}
