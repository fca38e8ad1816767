//! Opening a client without blocking the task's thread while every
//! instance is busy.

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;

use crate::{ClientOptions, NamedPipe};

/// `ERROR_PIPE_BUSY`: every instance of the pipe is connected.
const ERROR_PIPE_BUSY: i32 = 231;

/// The future of [`NamedPipe::open`].
#[must_use = "futures do nothing unless polled"]
pub struct Open {
    state: State,
}

enum State {
    /// Not polled yet.
    Start(ClientOptions, OsString),
    /// The helper thread waits and opens; it leaves the result here.
    Waiting(Arc<Mutex<Slot>>),
    /// The result was returned.
    Done,
}

#[derive(Default)]
struct Slot {
    result: Option<io::Result<NamedPipe>>,
    waker: Option<Waker>,
}

impl Open {
    pub(crate) fn new(options: ClientOptions, addr: OsString) -> Open {
        Open {
            state: State::Start(options, addr),
        }
    }
}

impl Future for Open {
    type Output = io::Result<NamedPipe>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<NamedPipe>> {
        let this = self.get_mut();
        match std::mem::replace(&mut this.state, State::Done) {
            State::Start(options, addr) => {
                // First without waiting: a free instance, or no pipe of that
                // name, is known at once, with no thread.
                let at_once = options.clone().busy_timeout(None).open(&addr);
                let busy = matches!(&at_once, Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY));
                if !busy || !options.waits_when_busy() {
                    return Poll::Ready(at_once);
                }
                let slot = Arc::new(Mutex::new(Slot {
                    result: None,
                    waker: Some(cx.waker().clone()),
                }));
                let theirs = Arc::clone(&slot);
                let spawned =
                    thread::Builder::new()
                        .name("named-pipe-open".into())
                        .spawn(move || {
                            let r = options.open(&addr);
                            let waker = {
                                let mut s = theirs.lock().unwrap_or_else(PoisonError::into_inner);
                                s.result = Some(r);
                                s.waker.take()
                            };
                            if let Some(w) = waker {
                                w.wake();
                            }
                        });
                if let Err(e) = spawned {
                    return Poll::Ready(Err(e));
                }
                this.state = State::Waiting(slot);
                Poll::Pending
            }
            State::Waiting(slot) => {
                let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(r) = s.result.take() {
                    return Poll::Ready(r);
                }
                s.waker = Some(cx.waker().clone());
                drop(s);
                this.state = State::Waiting(slot);
                Poll::Pending
            }
            State::Done => Poll::Ready(Err(io::Error::other("the open was already awaited"))),
        }
    }
}

impl fmt::Debug for Open {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Start(..) => "not started",
            State::Waiting(_) => "waiting",
            State::Done => "done",
        };
        f.debug_struct("Open").field("state", &state).finish()
    }
}
