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

use named_pipes_core::front::OpenCancel;

use crate::{ClientOptions, NamedPipe};

/// The future of [`NamedPipe::open`].
///
/// # Cancel safety
///
/// Cancel safe: dropped while it waits for a busy pipe, it stops the wait
/// (its helper thread ends within 50 ms) and opens no client after the
/// drop; a client it opened just before is closed with it.
#[must_use = "futures do nothing unless polled"]
pub struct Open {
    state: State,
}

enum State {
    /// Not polled yet.
    Start(ClientOptions, OsString),
    /// The helper thread waits and opens; it leaves the result here. The
    /// gate stops it when the future is dropped.
    Waiting(Arc<Mutex<Slot>>, Arc<OpenCancel>),
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
                let busy = matches!(&at_once, Err(e) if crate::is_busy(e));
                if !busy || !options.waits_when_busy() {
                    return Poll::Ready(at_once);
                }
                let slot = Arc::new(Mutex::new(Slot {
                    result: None,
                    waker: Some(cx.waker().clone()),
                }));
                let theirs = Arc::clone(&slot);
                let cancel = Arc::new(OpenCancel::new());
                let gate = Arc::clone(&cancel);
                let spawned =
                    thread::Builder::new()
                        .name("named-pipe-open".into())
                        .spawn(move || {
                            let r = options.open_cancellable(&addr, &gate);
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
                this.state = State::Waiting(slot, cancel);
                Poll::Pending
            }
            State::Waiting(slot, cancel) => {
                let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(r) = s.result.take() {
                    return Poll::Ready(r);
                }
                s.waker = Some(cx.waker().clone());
                drop(s);
                this.state = State::Waiting(slot, cancel);
                Poll::Pending
            }
            State::Done => Poll::Ready(Err(io::Error::other("the open was already awaited"))),
        }
    }
}

impl Drop for Open {
    /// Stops the helper thread's wait, if any: no client is opened after
    /// the drop (one opened just before it is closed). The thread ends
    /// within 50 ms (`CANCEL_SLICE` of the core).
    fn drop(&mut self) {
        if let State::Waiting(slot, cancel) = &self.state {
            cancel.cancel();
            // A client opened before the cancel: closed here, not by a
            // helper thread at some later time.
            let opened = slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .result
                .take();
            drop(opened);
        }
    }
}

impl fmt::Debug for Open {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Start(..) => "not started",
            State::Waiting(..) => "waiting",
            State::Done => "done",
        };
        f.debug_struct("Open").field("state", &state).finish()
    }
}
