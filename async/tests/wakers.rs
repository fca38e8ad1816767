//! Wakers are woken outside the pipe's lock: a waker may drop the very
//! pipe that woke it. No executor: the test polls by hand.
#![cfg(windows)]

mod util;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use async_named_pipes::{NamedPipe, PipeMode};
use util::{pair, PATIENCE};

/// A waker that owns a pipe and drops it when woken.
struct DropsThePipe {
    pipe: Mutex<Option<NamedPipe>>,
    dropped: Mutex<Option<mpsc::Sender<()>>>,
}

impl Wake for DropsThePipe {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let pipe = self.pipe.lock().unwrap().take();
        // Dropping the pipe locks it: under the lock that reported the
        // readiness, this would never return.
        drop(pipe);
        if let Some(tx) = self.dropped.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `f` once with a waker that does nothing.
fn poll_once<T>(f: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    f(&mut Context::from_waker(&waker))
}

/// Polls `f` until ready, parking the thread between polls.
fn block_on<T>(mut f: impl FnMut(&mut Context<'_>) -> Poll<T>) -> T {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Poll::Ready(v) = f(&mut Context::from_waker(&waker)) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing after {PATIENCE:?}"
        );
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_waker_may_drop_the_pipe_that_woke_it() {
    for side in ["read", "write"] {
        let (server, client) = pair(PipeMode::Byte);
        block_on(|cx| server.poll_connect(cx)).unwrap();
        let (tx, rx) = mpsc::channel();
        let holder = Arc::new(DropsThePipe {
            pipe: Mutex::new(None),
            dropped: Mutex::new(Some(tx)),
        });
        let waker = Waker::from(Arc::clone(&holder));
        let mut cx = Context::from_waker(&waker);
        if side == "read" {
            // The server waits to read; the client's write wakes it.
            let mut buf = [0u8; 8];
            assert!(server.poll_read(&mut cx, &mut buf).is_pending());
            *holder.pipe.lock().unwrap() = Some(server);
            drop((waker, holder));
            assert!(matches!(
                poll_once(|cx| client.poll_write(cx, b"wake up")),
                Poll::Ready(Ok(7))
            ));
        } else {
            // The server waits for a drain to end (everything handed to the
            // kernel); the client reading what fills the pipe ends it. (A
            // write takes the whole buffer, far more than the pipe holds.)
            let big = vec![5u8; 4 << 20];
            let mut sent = 0;
            while sent < big.len() {
                match server.poll_write(&mut cx, &big[sent..]) {
                    Poll::Ready(n) => sent += n.unwrap(),
                    Poll::Pending => break,
                }
            }
            assert!(server.poll_drain(&mut cx).is_pending());
            *holder.pipe.lock().unwrap() = Some(server);
            drop((waker, holder));
            let mut got = 0;
            let mut buf = vec![0u8; 1 << 16];
            while got < sent {
                got += block_on(|cx| client.poll_read(cx, &mut buf)).unwrap();
            }
        }
        rx.recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("{side}: the waker did not drop the pipe"));
    }
    // The driver thread lives on.
    let (server, client) = pair(PipeMode::Byte);
    block_on(|cx| server.poll_connect(cx)).unwrap();
    assert!(matches!(
        poll_once(|cx| client.poll_write(cx, b"ok")),
        Poll::Ready(Ok(2))
    ));
    let mut buf = [0u8; 2];
    assert_eq!(block_on(|cx| server.poll_read(cx, &mut buf)).unwrap(), 2);
    assert_eq!(&buf, b"ok");
}
