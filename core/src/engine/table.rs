//! The one table that says what a Win32 error means for each operation.
//!
//! Error codes are plain numbers here, so that the engine stays free of any
//! OS binding and runs in native tests; the Win32 layer asserts at compile
//! time that they equal `windows-sys`'s constants.

use std::io;

/// `ERROR_BROKEN_PIPE`: the other end closed its handle.
pub(crate) const ERROR_BROKEN_PIPE: i32 = 109;
/// `ERROR_PIPE_NOT_CONNECTED`: the server disconnected this client.
pub(crate) const ERROR_PIPE_NOT_CONNECTED: i32 = 233;
/// `ERROR_NO_DATA`: the pipe is being closed; on connect, a client came and left.
pub(crate) const ERROR_NO_DATA: i32 = 232;
/// `ERROR_MORE_DATA`: a message read filled the buffer; the rest of the message follows.
pub(crate) const ERROR_MORE_DATA: i32 = 234;
/// `ERROR_PIPE_CONNECTED`: a client connected before `ConnectNamedPipe` was called.
pub(crate) const ERROR_PIPE_CONNECTED: i32 = 535;
/// `ERROR_PIPE_LISTENING`: a server instance with no client yet.
pub(crate) const ERROR_PIPE_LISTENING: i32 = 536;
/// `ERROR_OPERATION_ABORTED`: the operation was cancelled.
pub(crate) const ERROR_OPERATION_ABORTED: i32 = 995;

/// `ERROR_PIPE_BUSY`: every instance of the pipe is connected to a client
/// (the open of a client, without a `busy_timeout`).
pub const ERROR_PIPE_BUSY: i32 = 231;

/// Whether `e` says that every instance of the pipe was busy
/// (`ERROR_PIPE_BUSY`, OS error 231): the error of a client's `open`
/// without a `busy_timeout`, which a caller may retry (after a wait, or
/// with a `busy_timeout`). An open whose `busy_timeout` passed fails with
/// `ErrorKind::TimedOut` instead.
pub fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_PIPE_BUSY)
}

/// Which operation an outcome belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// `ConnectNamedPipe`.
    Connect,
    /// `ReadFile`.
    Read,
    /// `WriteFile`.
    Write,
}

/// What the outcome of an operation means to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The operation succeeded.
    Done,
    /// Read only: the buffer holds the first part of a message; the rest follows.
    MoreData,
    /// Read only: the other end has gone; reads report end of file from now on.
    EndOfFile,
    /// Read and write: a server instance with no client yet; wait for a connect.
    Listening,
    /// Connect only: a client is connected (it may already have left again,
    /// in which case the first read reports end of file).
    Connected,
    /// The operation was cancelled.
    Aborted,
    /// Anything else: the error goes to the user as it is.
    Failed,
}

/// The error a user sees for a failed write (or any error handed out as it
/// is): `ERROR_PIPE_NOT_CONNECTED`, which a client's write meets after the
/// server disconnected it, becomes `BrokenPipe` — as std already makes of
/// `ERROR_BROKEN_PIPE` and `ERROR_NO_DATA` — with the OS error kept as the
/// inner error, so its code and text stay visible (`get_ref`, `Display`).
pub(crate) fn user_error(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(ERROR_PIPE_NOT_CONNECTED) => io::Error::new(io::ErrorKind::BrokenPipe, e),
        _ => e,
    }
}

/// The table: how the outcome of `op` reads, given its error (if any).
pub(crate) fn verdict(op: OpKind, error: Option<&io::Error>) -> Verdict {
    let Some(e) = error else {
        return match op {
            OpKind::Connect => Verdict::Connected,
            OpKind::Read | OpKind::Write => Verdict::Done,
        };
    };
    match (op, e.raw_os_error()) {
        (_, Some(ERROR_OPERATION_ABORTED)) => Verdict::Aborted,
        (OpKind::Connect, Some(ERROR_PIPE_CONNECTED | ERROR_NO_DATA)) => Verdict::Connected,
        (OpKind::Read, Some(ERROR_MORE_DATA)) => Verdict::MoreData,
        (OpKind::Read, Some(ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED)) => Verdict::EndOfFile,
        (OpKind::Read | OpKind::Write, Some(ERROR_PIPE_LISTENING)) => Verdict::Listening,
        _ => Verdict::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn is_busy_names_os_error_231_only() {
        assert!(is_busy(&os(231)));
        for code in [ERROR_BROKEN_PIPE, ERROR_NO_DATA, 2, 0] {
            assert!(!is_busy(&os(code)), "{code}");
        }
        assert!(!is_busy(&io::Error::from(io::ErrorKind::TimedOut)));
    }

    #[test]
    fn success_reads_as_done_or_connected() {
        assert_eq!(verdict(OpKind::Read, None), Verdict::Done);
        assert_eq!(verdict(OpKind::Write, None), Verdict::Done);
        assert_eq!(verdict(OpKind::Connect, None), Verdict::Connected);
    }

    #[test]
    fn broken_pipe_is_end_of_file_for_reads_only() {
        assert_eq!(
            verdict(OpKind::Read, Some(&os(ERROR_BROKEN_PIPE))),
            Verdict::EndOfFile
        );
        assert_eq!(
            verdict(OpKind::Read, Some(&os(ERROR_PIPE_NOT_CONNECTED))),
            Verdict::EndOfFile
        );
        assert_eq!(
            verdict(OpKind::Write, Some(&os(ERROR_BROKEN_PIPE))),
            Verdict::Failed
        );
        assert_eq!(
            verdict(OpKind::Write, Some(&os(ERROR_NO_DATA))),
            Verdict::Failed
        );
    }

    #[test]
    fn connect_codes() {
        assert_eq!(
            verdict(OpKind::Connect, Some(&os(ERROR_PIPE_CONNECTED))),
            Verdict::Connected
        );
        assert_eq!(
            verdict(OpKind::Connect, Some(&os(ERROR_NO_DATA))),
            Verdict::Connected
        );
        assert_eq!(
            verdict(OpKind::Connect, Some(&os(ERROR_BROKEN_PIPE))),
            Verdict::Failed
        );
    }

    #[test]
    fn more_data_listening_and_abort() {
        assert_eq!(
            verdict(OpKind::Read, Some(&os(ERROR_MORE_DATA))),
            Verdict::MoreData
        );
        assert_eq!(
            verdict(OpKind::Write, Some(&os(ERROR_MORE_DATA))),
            Verdict::Failed
        );
        assert_eq!(
            verdict(OpKind::Read, Some(&os(ERROR_PIPE_LISTENING))),
            Verdict::Listening
        );
        assert_eq!(
            verdict(OpKind::Write, Some(&os(ERROR_PIPE_LISTENING))),
            Verdict::Listening
        );
        for op in [OpKind::Connect, OpKind::Read, OpKind::Write] {
            assert_eq!(
                verdict(op, Some(&os(ERROR_OPERATION_ABORTED))),
                Verdict::Aborted
            );
        }
    }

    #[test]
    fn not_connected_is_handed_out_as_broken_pipe() {
        let e = user_error(os(ERROR_PIPE_NOT_CONNECTED));
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        let inner = e.get_ref().expect("the OS error is kept inside");
        assert!(inner.to_string().contains("os error 233"), "{inner}");
        assert!(e.to_string().contains("os error 233"), "{e}");
        // Everything else is handed out as it is.
        for code in [ERROR_BROKEN_PIPE, ERROR_NO_DATA, 31] {
            let e = user_error(os(code));
            assert_eq!(e.raw_os_error(), Some(code));
        }
    }

    #[test]
    fn errors_without_os_code_are_failures() {
        let e = io::Error::other("x");
        assert_eq!(verdict(OpKind::Read, Some(&e)), Verdict::Failed);
    }
}
