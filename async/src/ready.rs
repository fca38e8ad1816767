//! [`Interest`] and [`Ready`]: what [`NamedPipe::ready`](crate::NamedPipe::ready)
//! waits for and what it found, as tokio's `Interest` and `Ready` (this
//! crate's own, so that the default features need no tokio; with feature
//! `tokio`, tokio's `Interest` converts into this one, so code written for
//! tokio's pipes passes it unchanged).

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// The readiness a task waits for in
/// [`NamedPipe::ready`](crate::NamedPipe::ready): readable, writable or
/// both. Combine with `|`.
///
/// # Examples
///
/// ```
/// use async_named_pipes::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert!(!Interest::READABLE.is_writable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest {
    readable: bool,
    writable: bool,
}

impl Interest {
    /// Readable: a read (`try_read`, `recv_msg`) would not block.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writable: a write (`try_write`) would be accepted.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };

    /// Whether the interest includes readable.
    pub const fn is_readable(self) -> bool {
        self.readable
    }

    /// Whether the interest includes writable.
    pub const fn is_writable(self) -> bool {
        self.writable
    }

    /// Both interests together (`|` as a `const fn`).
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        Interest {
            readable: self.readable || other.readable,
            writable: self.writable || other.writable,
        }
    }
}

impl BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl BitOrAssign for Interest {
    fn bitor_assign(&mut self, other: Interest) {
        *self = self.add(other);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.readable, self.writable) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (false, false) => f.write_str("(none)"),
        }
    }
}

#[cfg(feature = "tokio")]
impl From<tokio::io::Interest> for Interest {
    /// Readable and writable as tokio's interest says; tokio's other
    /// interests (priority, error) have no meaning for a pipe and are
    /// left out.
    fn from(i: tokio::io::Interest) -> Interest {
        Interest {
            readable: i.is_readable(),
            writable: i.is_writable(),
        }
    }
}

/// The readiness [`NamedPipe::ready`](crate::NamedPipe::ready) found, as
/// tokio's `Ready`. Readiness may be spurious: a `try_*` call after it can
/// still return `WouldBlock` (another task took the data, say); wait again
/// then.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Ready {
    readable: bool,
    writable: bool,
    read_closed: bool,
    write_closed: bool,
}

impl Ready {
    /// No readiness.
    pub const EMPTY: Ready = Ready {
        readable: false,
        writable: false,
        read_closed: false,
        write_closed: false,
    };

    pub(crate) fn new(
        readable: bool,
        writable: bool,
        read_closed: bool,
        write_closed: bool,
    ) -> Ready {
        Ready {
            readable,
            writable,
            read_closed,
            write_closed,
        }
    }

    /// Whether nothing is ready.
    pub fn is_empty(self) -> bool {
        self == Ready::EMPTY
    }

    /// Readable: data waits, or the end of file, or an error (a read
    /// returns at once).
    pub fn is_readable(self) -> bool {
        self.readable
    }

    /// Writable: a write would be accepted, or an error waits.
    pub fn is_writable(self) -> bool {
        self.writable
    }

    /// The other end has gone and everything it sent was read: reads
    /// return end of file (`Ok(0)`). Set with readable.
    pub fn is_read_closed(self) -> bool {
        self.read_closed
    }

    /// This end was shut down (`poll_shutdown`): writes fail until the
    /// next connect. Set with writable.
    pub fn is_write_closed(self) -> bool {
        self.write_closed
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("is_readable", &self.readable)
            .field("is_writable", &self.writable)
            .field("is_read_closed", &self.read_closed)
            .field("is_write_closed", &self.write_closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interests_combine() {
        let mut i = Interest::READABLE;
        assert!(i.is_readable() && !i.is_writable());
        i |= Interest::WRITABLE;
        assert_eq!(i, Interest::WRITABLE | Interest::READABLE);
        assert!(i.is_readable() && i.is_writable());
        assert_eq!(format!("{i:?}"), "READABLE | WRITABLE");
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_interests_convert() {
        let both = Interest::from(tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE);
        assert_eq!(both, Interest::READABLE | Interest::WRITABLE);
        assert_eq!(
            Interest::from(tokio::io::Interest::WRITABLE),
            Interest::WRITABLE
        );
    }

    #[test]
    fn ready_says_what_was_found() {
        assert!(Ready::EMPTY.is_empty() && Ready::default().is_empty());
        let r = Ready::new(true, false, true, false);
        assert!(!r.is_empty() && r.is_readable() && r.is_read_closed());
        assert!(!r.is_writable() && !r.is_write_closed());
    }
}
