//! Peer identity: what a pipe says about itself and the process at the other end.

use std::io;
use std::marker::PhantomData;

use windows_sys::Win32::System::Pipes::{PIPE_SERVER_END, PIPE_TYPE_MESSAGE};

use crate::engine::policy::{self, AfterRevert};
use crate::options::PipeMode;
use crate::sys::front::Front;
use crate::sys::info::{self, Id};
use crate::sys::kernel::Shared;

/// Which end of a pipe a handle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PipeEnd {
    /// The client end.
    Client,
    /// A server instance.
    Server,
}

/// What `GetNamedPipeInfo` says about a pipe (a front pipe's `info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeInfo {
    /// Byte or message type.
    pub mode: PipeMode,
    /// Which end this handle is.
    pub end: PipeEnd,
    /// The most instances of the name; `None` for no limit.
    pub max_instances: Option<u32>,
    /// The input buffer size, in bytes.
    pub in_buffer_size: u32,
    /// The output buffer size, in bytes.
    pub out_buffer_size: u32,
}

/// The calling thread acts as the pipe's client until this guard is
/// dropped, which reverts (`RevertToSelf`). Made by a front pipe's
/// `impersonate_client` (in mio-named-pipes, `NamedPipe::impersonate_client`,
/// which has an example); a pipe's `with_client_identity` runs a closure
/// with one and is the safer form.
///
/// If `RevertToSelf` fails, the drop **aborts the process**: the thread
/// might otherwise go on as the client, and everything it runs next (other
/// requests, other tasks) would too. Microsoft's documentation of
/// `RevertToSelf` asks for exactly this. A thread that impersonated
/// someone before `impersonate_client` is itself again after the drop, not
/// that someone.
///
/// It is not `Send`: impersonation is a property of the thread that took
/// it, so the guard must be dropped on that thread. In async code, do not
/// hold it across an `.await`: on a multi-threaded runtime the task may
/// resume on another thread (the future is not `Send` then, so `spawn`
/// refuses it, but `block_on` and `spawn_local` accept it); on a
/// single-threaded executor (a current-thread runtime, a `LocalSet`,
/// `block_on`) every other task that runs while this one waits runs **as
/// the client**, on the impersonating thread. Use `with_client_identity`
/// (a synchronous closure, which cannot await) instead.
#[derive(Debug)]
pub struct ImpersonationGuard {
    _not_send: PhantomData<*const ()>,
}

impl Drop for ImpersonationGuard {
    fn drop(&mut self) {
        if let AfterRevert::Abort(why) = policy::after_revert(info::revert()) {
            eprintln!("{why}");
            std::process::abort();
        }
    }
}

/// For fronts: what a pipe says about itself and its peer, behind the
/// front pipe's methods of the same names.
impl<F: Front> Shared<F> {
    /// The pipe's type, end, instance limit and buffer sizes.
    ///
    /// # Errors
    ///
    /// The OS error, for a handle that is not a pipe.
    pub fn info(&self) -> io::Result<PipeInfo> {
        let (flags, out, inb, max) = info::info(self.raw())?;
        Ok(PipeInfo {
            mode: if flags & PIPE_TYPE_MESSAGE != 0 {
                PipeMode::Message
            } else {
                PipeMode::Byte
            },
            end: if flags & PIPE_SERVER_END != 0 {
                PipeEnd::Server
            } else {
                PipeEnd::Client
            },
            // Windows reports PIPE_UNLIMITED_INSTANCES (255); Wine reports u32::MAX.
            max_instances: (max != 255 && max != u32::MAX).then_some(max),
            in_buffer_size: inb,
            out_buffer_size: out,
        })
    }

    /// The process id of the client (`GetNamedPipeClientProcessId`).
    ///
    /// # Errors
    ///
    /// The OS error, for example when no client is connected.
    pub fn client_process_id(&self) -> io::Result<u32> {
        info::id(self.raw(), Id::ClientProcess)
    }

    /// The process id of the server (`GetNamedPipeServerProcessId`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn server_process_id(&self) -> io::Result<u32> {
        info::id(self.raw(), Id::ServerProcess)
    }

    /// The session id of the client (`GetNamedPipeClientSessionId`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn client_session_id(&self) -> io::Result<u32> {
        info::id(self.raw(), Id::ClientSession)
    }

    /// The session id of the server (`GetNamedPipeServerSessionId`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn server_session_id(&self) -> io::Result<u32> {
        info::id(self.raw(), Id::ServerSession)
    }

    /// Makes the calling thread act as the client
    /// (`ImpersonateNamedPipeClient`) until the guard is dropped.
    ///
    /// # Errors
    ///
    /// The OS error, for example on a client end or before any read.
    pub fn impersonate_client(&self) -> io::Result<ImpersonationGuard> {
        info::impersonate(self.raw())?;
        Ok(ImpersonationGuard {
            _not_send: PhantomData,
        })
    }

    /// Runs `f` on the calling thread acting as the client
    /// (`ImpersonateNamedPipeClient`), and reverts when it returns or
    /// panics (see [`ImpersonationGuard`] for a revert that fails).
    ///
    /// # Errors
    ///
    /// The OS error of impersonating; `f` does not run then.
    pub fn with_client_identity<R>(&self, f: impl FnOnce() -> R) -> io::Result<R> {
        let guard = self.impersonate_client()?;
        let r = f();
        drop(guard);
        Ok(r)
    }
}
