//! The seam between the core and its fronts (published in
//! [`crate::front`]): the traits a front implements, the handles its pipes
//! and its listener's instances are made of, and the default linger. No
//! `unsafe` block here; `Front` states the contract of the `OVERLAPPED`
//! header that the rest of `sys` relies on.

use std::ffi::{c_void, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle, RawHandle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{pipe, security};
use crate::accept_plan::first_instance;
use crate::engine::{Framing, Limits, Readiness};

/// How long a dropped pipe keeps delivering what `write` accepted before
/// the drop, unless set otherwise (the pipe's `set_linger`,
/// [`ServerOptions::linger`](crate::ServerOptions::linger),
/// [`ClientOptions::linger`](crate::ClientOptions::linger)): 5 seconds.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(5);

/// A handle on its way to become a front's pipe: the handle, whether it is
/// a server instance still waiting for its client, how it frames data, its
/// buffer limits and its linger limit. Made by the options, and for fronts by
/// [`PipeSpec::default_server`] and [`PipeSpec::adopt`]; a front turns it
/// into its pipe with [`Shared::new`](crate::front::Shared::new).
#[derive(Debug)]
pub struct PipeSpec {
    pub(crate) handle: OwnedHandle,
    pub(crate) listening: bool,
    pub(crate) framing: Framing,
    pub(crate) limits: Limits,
    pub(crate) linger: Duration,
    /// Made by `CreateNamedPipeW`, so a pipe for sure: binding need not ask
    /// (`GetFileType`, two wineserver requests under Wine).
    pub(crate) created: bool,
    /// For a listener's instance: counts it alive in its [`Instances`]
    /// while the pipe lives.
    pub(crate) census: Option<Alive>,
}

/// One live instance of an [`Instances`]' name; counted while it exists.
#[derive(Debug)]
pub(crate) struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(count: &Arc<AtomicUsize>) -> Alive {
        count.fetch_add(1, Ordering::SeqCst);
        Alive(Arc::clone(count))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PipeSpec {
    /// A handle whose framing is read from the handle itself, with the
    /// default buffer limits and linger: a server instance still `listening` for its client,
    /// or a connected end.
    pub(crate) fn queried(handle: OwnedHandle, listening: bool) -> PipeSpec {
        let framing = pipe::framing(handle.as_raw_handle());
        PipeSpec {
            handle,
            listening,
            framing,
            limits: Limits::default(),
            linger: DEFAULT_LINGER,
            created: false,
            census: None,
        }
    }

    /// For fronts: a new server instance of `addr` as a front's plain
    /// constructor makes it — duplex, byte mode, overlapped, 64 KiB buffers
    /// each way, unlimited instances, the first instance of its name
    /// (`FILE_FLAG_FIRST_PIPE_INSTANCE`), remote clients rejected
    /// (`PIPE_REJECT_REMOTE_CLIENTS`), current-user-only (see
    /// [`ServerOptions::current_user_only`](crate::ServerOptions::current_user_only)).
    ///
    /// # Errors
    ///
    /// The OS error: `PermissionDenied` if an instance of that name exists
    /// already, `InvalidInput` if the name holds a NUL.
    pub fn default_server(addr: &OsStr) -> io::Result<PipeSpec> {
        let sd = security::current_user_only()?;
        let attributes = sd.attributes();
        let params = pipe::ServerParams {
            security: &attributes,
            ..pipe::ServerParams::default_server()
        };
        let handle = pipe::create_server(addr, &params)?;
        Ok(PipeSpec {
            handle,
            listening: true,
            framing: Framing::default(),
            limits: Limits::default(),
            linger: DEFAULT_LINGER,
            created: true,
            census: None,
        })
    }

    /// For fronts: a pipe handle opened for overlapped I/O, adopted as a
    /// connected end (a server instance made elsewhere connects either
    /// way); byte or message mode is read from the handle.
    pub fn adopt(handle: OwnedHandle) -> PipeSpec {
        PipeSpec::queried(handle, false)
    }
}

/// One front: the types a front makes of the core's pipes, and how the
/// core's operations meet the front's completion port.
///
/// # Safety
///
/// [`Front::Header`] must begin with the `OVERLAPPED` the kernel writes:
/// [`Front::overlapped`] returns the header's own address (the core checks
/// this for every operation and panics otherwise). The header may be sent
/// to and shared with other threads: nothing in it but its `OVERLAPPED`
/// changes while the operation is in flight, and only the kernel writes
/// that.
pub unsafe trait Front: Sized + 'static {
    /// What each operation's allocation starts with.
    type Header: 'static;
    /// Where a pipe's readiness goes.
    type Sink: Sink;
    /// The front's pipe, made by
    /// [`ServerOptions::create`](crate::ServerOptions::create) and
    /// [`ClientOptions::open`](crate::ClientOptions::open).
    type Pipe;
    /// The front's listener, made by
    /// [`ServerOptions::listen`](crate::ServerOptions::listen).
    type Listener;

    /// A new header, for one operation.
    fn header() -> Self::Header;
    /// The `OVERLAPPED` inside `header`, as the pointer the kernel gets.
    fn overlapped(header: &Self::Header) -> *mut c_void;
    /// Makes the front's pipe of a handle (see [`PipeSpec`]), with
    /// [`Shared::new`](crate::front::Shared::new).
    fn pipe(spec: PipeSpec) -> Self::Pipe;
    /// Makes the front's listener, which keeps `pending` of `instances`
    /// listening (`pending` is 1 or more, within the instance limit; the
    /// options were checked).
    ///
    /// # Errors
    ///
    /// The errors of creating the first instance.
    fn listen(instances: Instances, pending: usize) -> io::Result<Self::Listener>;
}

/// Where a pipe's readiness goes. Called under the pipe's lock: it must
/// not call back into the pipe.
pub trait Sink: Send + 'static {
    /// The readiness last set.
    fn readiness(&self) -> Readiness;
    /// Sets the readiness (also unchanged, for a new registration).
    fn set_readiness(&self, ready: Readiness);
}

/// How a front ties a pipe handle to its completion port.
pub trait Port {
    /// Associates `handle` with the port, once for the handle's life; every
    /// operation the core starts on it carries the front's header.
    ///
    /// # Errors
    ///
    /// The OS error of the association.
    fn associate(&self, handle: RawHandle) -> io::Result<()>;
    /// Checks that `handle`, associated before, is associated with this port.
    ///
    /// # Errors
    ///
    /// An error saying the handle belongs to another port.
    fn check(&self, handle: RawHandle) -> io::Result<()>;
}

/// For fronts' listeners: the server instances of one name, made with
/// one set of options (from [`ServerOptions::listen`](crate::ServerOptions::listen)).
#[derive(Clone)]
pub struct Instances {
    addr: OsString,
    make: Arc<MakeInstance>,
    /// How many of the instances made are alive (not yet closed).
    alive: Arc<AtomicUsize>,
}

/// Creates an instance of a name; `true` for the first one.
type MakeInstance = dyn Fn(&OsStr, bool) -> io::Result<PipeSpec> + Send + Sync;

impl Instances {
    /// The instances of `addr` that `make` creates.
    pub(crate) fn new(
        addr: &OsStr,
        make: impl Fn(&OsStr, bool) -> io::Result<PipeSpec> + Send + Sync + 'static,
    ) -> Instances {
        Instances {
            addr: addr.to_owned(),
            make: Arc::new(make),
            alive: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The pipe's name.
    pub fn addr(&self) -> &OsStr {
        &self.addr
    }

    /// A new server instance, waiting for its client; `first` adds
    /// `FILE_FLAG_FIRST_PIPE_INSTANCE`, and so does the loss of every
    /// instance made before ([`first_instance`]): none listening, waiting or
    /// handed out and still open. Make the front's pipe of it with
    /// [`Front::pipe`], which keeps it counted while it lives.
    ///
    /// # Errors
    ///
    /// The errors of [`ServerOptions::create`](crate::ServerOptions::create):
    /// `PermissionDenied` for a first instance whose name exists (another
    /// process created it, or a pipe of this listener was turned into a
    /// raw handle and is still open).
    pub fn create(&self, first: bool) -> io::Result<PipeSpec> {
        let first = first_instance(first, self.alive.load(Ordering::SeqCst));
        let mut spec = (self.make)(&self.addr, first)?;
        spec.census = Some(Alive::new(&self.alive));
        Ok(spec)
    }

    /// How many instances made by this listener are alive.
    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for Instances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instances")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_FIRST_PIPE_INSTANCE;

    use super::*;

    #[test]
    fn instances_are_first_again_once_none_is_alive() {
        let name = format!(r"\\.\pipe\named-pipes-core-census-{}", std::process::id());
        let firsts = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&firsts);
        let instances = Instances::new(OsStr::new(&name), move |addr, first| {
            seen.lock().unwrap().push(first);
            let mut params = pipe::ServerParams::default_server();
            if !first {
                params.open_mode &= !FILE_FLAG_FIRST_PIPE_INSTANCE;
            }
            let handle = pipe::create_server(addr, &params)?;
            Ok(PipeSpec {
                census: None,
                ..PipeSpec::queried(handle, true)
            })
        });
        let a = instances.create(true).unwrap();
        let b = instances.create(false).unwrap();
        assert_eq!(instances.alive(), 2);
        drop(a);
        let c = instances.create(false).unwrap();
        drop((b, c));
        assert_eq!(instances.alive(), 0);
        let d = instances.create(false).unwrap();
        assert_eq!(instances.alive(), 1);
        assert_eq!(
            *firsts.lock().unwrap(),
            [true, false, false, true],
            "first when asked, and again once every instance was gone"
        );
        drop(d);
    }
}
