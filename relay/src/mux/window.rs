//! Per-connection flow control: what a side may still send, and what it
//! grants its peer as its consumer takes the data.

use std::sync::{Condvar, Mutex};

use super::{ProtoError, INITIAL_WINDOW, MAX_DATA, MAX_WINDOW};

/// The sending side's credit on one connection.
#[derive(Debug)]
pub struct SendWindow {
    avail: u64,
}

impl Default for SendWindow {
    fn default() -> Self {
        SendWindow {
            avail: u64::from(INITIAL_WINDOW),
        }
    }
}

impl SendWindow {
    /// Bytes that may be sent now.
    #[cfg(test)]
    pub fn available(&self) -> u64 {
        self.avail
    }

    /// Takes credit for at most `want` bytes (and at most one frame's):
    /// the bytes that may go in the next frame, 0 if none.
    pub fn take(&mut self, want: usize) -> usize {
        let n = (want.min(MAX_DATA) as u64).min(self.avail) as usize;
        self.avail -= n as u64;
        n
    }

    /// The peer granted `n` more bytes. A peer that grants past
    /// [`MAX_WINDOW`] is broken.
    pub fn grant(&mut self, n: u32) -> Result<(), ProtoError> {
        let after = self.avail + u64::from(n);
        if after > u64::from(MAX_WINDOW) {
            return Err(ProtoError(format!(
                "the peer granted {after} bytes of credit (at most {MAX_WINDOW})"
            )));
        }
        self.avail = after;
        Ok(())
    }
}

/// The receiving side's account of one connection.
#[derive(Debug)]
pub struct RecvWindow {
    /// Bytes the peer may still send.
    outstanding: u64,
    /// Bytes consumed since the last grant.
    consumed: u64,
}

impl Default for RecvWindow {
    fn default() -> Self {
        RecvWindow {
            outstanding: u64::from(INITIAL_WINDOW),
            consumed: 0,
        }
    }
}

impl RecvWindow {
    /// `n` bytes arrived: an error if the peer sent beyond its credit.
    pub fn on_data(&mut self, n: usize) -> Result<(), ProtoError> {
        let n = n as u64;
        if n > self.outstanding {
            return Err(ProtoError(format!(
                "the peer sent {n} bytes with a credit of {}",
                self.outstanding
            )));
        }
        self.outstanding -= n;
        Ok(())
    }

    /// The consumer took `n` bytes: the credit to grant now, if any
    /// (grants are batched to a quarter of the window).
    pub fn on_consumed(&mut self, n: usize) -> Option<u32> {
        self.consumed += n as u64;
        if self.consumed < u64::from(INITIAL_WINDOW / 4) {
            return None;
        }
        let g = self.consumed.min(u64::from(INITIAL_WINDOW));
        self.consumed -= g;
        self.outstanding += g;
        Some(g as u32)
    }

    /// Bytes that may arrive before the next grant: what the receiver may
    /// have to hold.
    #[cfg(test)]
    pub fn outstanding(&self) -> u64 {
        self.outstanding
    }
}

/// A [`SendWindow`] shared between the thread that sends and the thread
/// that reads the peer's grants.
#[derive(Debug, Default)]
pub struct Credit {
    state: Mutex<(SendWindow, bool)>,
    cv: Condvar,
}

impl Credit {
    /// Waits until some credit is there, and takes it for at most `want`
    /// bytes; `None` once the connection is closed.
    pub fn wait_take(&self, want: usize) -> Option<usize> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if s.1 {
                return None;
            }
            let n = s.0.take(want);
            if n > 0 || want == 0 {
                return Some(n);
            }
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The peer granted `n` more bytes.
    pub fn grant(&self, n: u32) -> Result<(), ProtoError> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let r = s.0.grant(n);
        self.cv.notify_all();
        r
    }

    /// The connection is closed: waiting ends.
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn a_sender_sends_at_most_its_credit() {
        let mut s = SendWindow::default();
        let mut sent = 0;
        loop {
            let n = s.take(100_000);
            if n == 0 {
                break;
            }
            assert!(n <= MAX_DATA);
            sent += n;
        }
        assert_eq!(sent as u32, INITIAL_WINDOW);
        s.grant(10).unwrap();
        assert_eq!(s.take(100), 10);
        assert_eq!(s.take(100), 0);
        // Granting beyond the limit is the peer's error, not a panic.
        assert!(s.grant(MAX_WINDOW).is_ok());
        assert!(s.grant(1).unwrap_err().0.contains("credit"));
        assert!(s.grant(u32::MAX).is_err());
    }

    #[test]
    fn a_receiver_grants_as_its_consumer_drains_and_catches_a_cheat() {
        let mut r = RecvWindow::default();
        r.on_data(INITIAL_WINDOW as usize).unwrap();
        assert!(r.on_data(1).unwrap_err().0.contains("credit of 0"));
        // Nothing consumed: nothing granted, the peer stays held.
        assert_eq!(r.on_consumed(0), None);
        assert_eq!(r.on_consumed(1000), None);
        let g = r.on_consumed(INITIAL_WINDOW as usize / 4).unwrap();
        assert_eq!(u64::from(g), 1000 + u64::from(INITIAL_WINDOW / 4));
        assert_eq!(r.outstanding(), u64::from(g));
        r.on_data(g as usize).unwrap();
        assert!(r.on_data(1).is_err());
    }

    #[test]
    fn sender_and_receiver_agree_over_a_long_stream() {
        // A receiver whose consumer lags: the sender never exceeds what
        // the receiver accepts, and everything gets through.
        let (mut s, mut r) = (SendWindow::default(), RecvWindow::default());
        let (mut sent, mut consumed, mut held) = (0usize, 0usize, 0usize);
        let total = 50 * 1024 * 1024;
        while consumed < total {
            let n = s.take(total - sent);
            r.on_data(n).unwrap();
            sent += n;
            held += n;
            assert!(held as u64 <= u64::from(INITIAL_WINDOW));
            let eat = held.min(40_000);
            held -= eat;
            consumed += eat;
            if let Some(g) = r.on_consumed(eat) {
                s.grant(g).unwrap();
            }
        }
        assert_eq!(sent, total);
    }

    #[test]
    fn a_waiting_sender_wakes_on_credit_or_close() {
        let c = Arc::new(Credit::default());
        assert_eq!(c.wait_take(INITIAL_WINDOW as usize * 2), Some(MAX_DATA));
        while c.state.lock().unwrap().0.available() > 0 {
            assert!(c.wait_take(MAX_DATA).unwrap() > 0);
        }
        let c2 = c.clone();
        let t = thread::spawn(move || c2.wait_take(10));
        thread::sleep(Duration::from_millis(20));
        c.grant(5).unwrap();
        assert_eq!(t.join().unwrap(), Some(5));
        let c2 = c.clone();
        let t = thread::spawn(move || c2.wait_take(10));
        thread::sleep(Duration::from_millis(20));
        c.close();
        assert_eq!(t.join().unwrap(), None);
    }
}
