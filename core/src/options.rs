//! Builders for server instances and clients, with secure defaults. They
//! live once, here, generic over the front whose pipes they make: a front
//! names them for its users with its own type, as in
//! `pub type ServerOptions = named_pipes_core::ServerOptions<Mio>;`.

use std::ffi::{c_void, OsStr};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_WRITE_THROUGH, FILE_WRITE_ATTRIBUTES,
    PIPE_ACCESS_INBOUND, PIPE_ACCESS_OUTBOUND, READ_CONTROL, SECURITY_IDENTIFICATION,
    SECURITY_SQOS_PRESENT, WRITE_DAC, WRITE_OWNER,
};
use windows_sys::Win32::System::Pipes::{
    PIPE_READMODE_BYTE, PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE,
    PIPE_TYPE_MESSAGE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};
use windows_sys::Win32::System::SystemServices::ACCESS_SYSTEM_SECURITY;

use crate::engine::{policy, Framing, Limits};
use crate::sys::front::{Front, Instances};
use crate::sys::front::{PipeSpec, DEFAULT_LINGER};
use crate::sys::{client, pipe, security};

/// How a pipe frames data.
///
/// ```
/// use named_pipes_core::{Front, PipeMode, ServerOptions};
///
/// fn message_server<F: Front>(name: &str) -> std::io::Result<F::Pipe> {
///     ServerOptions::<F>::new().pipe_mode(PipeMode::Message).create(name)
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PipeMode {
    /// A stream of bytes: writes may be split and joined by the reader.
    Byte,
    /// Messages: each write is one message, read back whole.
    Message,
}

/// A security descriptor for server instances, from an SDDL string.
///
/// # Examples
///
/// Allow only the owner and SYSTEM:
///
/// ```
/// use named_pipes_core::SecurityDescriptor;
///
/// let sd = SecurityDescriptor::from_sddl("D:P(A;;GA;;;OW)(A;;GA;;;SY)").unwrap();
/// # drop(sd);
/// ```
#[derive(Clone)]
pub struct SecurityDescriptor(Arc<security::Descriptor>);

impl SecurityDescriptor {
    /// Parses an SDDL string (`ConvertStringSecurityDescriptorToSecurityDescriptorW`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` with the string in the message when it is not valid SDDL.
    ///
    /// ```
    /// use named_pipes_core::SecurityDescriptor;
    ///
    /// let e = SecurityDescriptor::from_sddl("not sddl").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn from_sddl(sddl: &str) -> io::Result<SecurityDescriptor> {
        security::Descriptor::from_sddl(sddl).map(|d| SecurityDescriptor(Arc::new(d)))
    }
}

impl fmt::Debug for SecurityDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecurityDescriptor { .. }")
    }
}

/// Creates server instances (`CreateNamedPipeW`).
///
/// Defaults: duplex, byte mode, 64 KiB buffers each way, unlimited
/// instances, remote clients rejected, only this process's user (and
/// SYSTEM) may open it ([`current_user_only`](ServerOptions::current_user_only)),
/// not necessarily the first instance
/// (a listener always makes its first one so). Every instance is
/// opened for overlapped I/O. `F` is the front whose pipes it makes
/// ([`Front::Pipe`], [`Front::Listener`]).
///
/// # Examples
///
/// ```
/// use named_pipes_core::{Front, PipeMode, ServerOptions};
/// # fn example<F: Front>() {
/// let server = ServerOptions::<F>::new()
///     .pipe_mode(PipeMode::Message)
///     .first_pipe_instance(true)
///     .max_instances(8)
///     .create(format!(r"\\.\pipe\mio-named-pipes-doc-options-{}", std::process::id()))
///     .unwrap();
/// # drop(server);
/// # }
/// ```
pub struct ServerOptions<F: Front> {
    mode: PipeMode,
    inbound: bool,
    outbound: bool,
    first: bool,
    max_instances: usize,
    in_buffer: u32,
    out_buffer: u32,
    reject_remote: bool,
    write_through: bool,
    security: Option<SecurityDescriptor>,
    current_user_only: bool,
    write_dac: bool,
    write_owner: bool,
    access_system_security: bool,
    linger: Duration,
    limits: Limits,
    front: PhantomData<fn() -> F>,
}

impl<F: Front> Clone for ServerOptions<F> {
    fn clone(&self) -> Self {
        ServerOptions {
            security: self.security.clone(),
            ..*self
        }
    }
}

impl<F: Front> fmt::Debug for ServerOptions<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("mode", &self.mode)
            .field("inbound", &self.inbound)
            .field("outbound", &self.outbound)
            .field("first", &self.first)
            .field("max_instances", &self.max_instances)
            .field("in_buffer", &self.in_buffer)
            .field("out_buffer", &self.out_buffer)
            .field("reject_remote", &self.reject_remote)
            .field("write_through", &self.write_through)
            .field("security", &self.security)
            .field("current_user_only", &self.current_user_only)
            .field("write_dac", &self.write_dac)
            .field("write_owner", &self.write_owner)
            .field("access_system_security", &self.access_system_security)
            .field("linger", &self.linger)
            .field("limits", &self.limits)
            .finish()
    }
}

/// `max_instances` value for no limit (`PIPE_UNLIMITED_INSTANCES`).
///
/// ```
/// use named_pipes_core::{Front, ServerOptions, UNLIMITED_INSTANCES};
/// # fn example<F: Front>() {
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-unlimited-{}", std::process::id());
/// let server = ServerOptions::<F>::new().max_instances(UNLIMITED_INSTANCES).create(&name).unwrap();
/// # }
/// ```
pub const UNLIMITED_INSTANCES: usize = usize::MAX;

impl<F: Front> Default for ServerOptions<F> {
    fn default() -> Self {
        ServerOptions {
            mode: PipeMode::Byte,
            inbound: true,
            outbound: true,
            first: false,
            max_instances: UNLIMITED_INSTANCES,
            in_buffer: pipe::DEFAULT_BUFFER,
            out_buffer: pipe::DEFAULT_BUFFER,
            reject_remote: true,
            write_through: false,
            security: None,
            current_user_only: true,
            write_dac: false,
            write_owner: false,
            access_system_security: false,
            linger: DEFAULT_LINGER,
            limits: Limits::default(),
            front: PhantomData,
        }
    }
}

impl<F: Front> ServerOptions<F> {
    /// The defaults.
    ///
    /// ```
    /// use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-server-new-{}", std::process::id());
    /// let server = ServerOptions::<F>::new().create(&name).unwrap();
    /// # drop(server);
    /// # }
    /// ```
    pub fn new() -> ServerOptions<F> {
        ServerOptions::default()
    }

    /// Byte or message mode: `PIPE_TYPE_BYTE | PIPE_READMODE_BYTE` or
    /// `PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE`.
    ///
    /// ```
    /// # use named_pipes_core::{Front, PipeMode, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().pipe_mode(PipeMode::Message);
    /// # }
    /// ```
    pub fn pipe_mode(&mut self, mode: PipeMode) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Whether data flows from client to server (`PIPE_ACCESS_INBOUND`).
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().access_inbound(false); // the server only writes
    /// # }
    /// ```
    pub fn access_inbound(&mut self, allowed: bool) -> &mut Self {
        self.inbound = allowed;
        self
    }

    /// Whether data flows from server to client (`PIPE_ACCESS_OUTBOUND`).
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().access_outbound(false); // the server only reads
    /// # }
    /// ```
    pub fn access_outbound(&mut self, allowed: bool) -> &mut Self {
        self.outbound = allowed;
        self
    }

    /// Fail if an instance of this name exists already
    /// (`FILE_FLAG_FIRST_PIPE_INSTANCE`), so that no other process can have
    /// squatted the name.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().first_pipe_instance(true);
    /// # }
    /// ```
    pub fn first_pipe_instance(&mut self, first: bool) -> &mut Self {
        self.first = first;
        self
    }

    /// The most instances of this name at once (`nMaxInstances`): 1 to 254,
    /// or [`UNLIMITED_INSTANCES`] (`PIPE_UNLIMITED_INSTANCES`). Another value
    /// makes `create` fail with `InvalidInput`.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().max_instances(4);
    /// # }
    /// ```
    pub fn max_instances(&mut self, n: usize) -> &mut Self {
        self.max_instances = n;
        self
    }

    /// Size the system reserves for the input buffer (`nInBufferSize`).
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().in_buffer_size(128 * 1024);
    /// # }
    /// ```
    pub fn in_buffer_size(&mut self, bytes: u32) -> &mut Self {
        self.in_buffer = bytes;
        self
    }

    /// Size the system reserves for the output buffer (`nOutBufferSize`).
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().out_buffer_size(128 * 1024);
    /// # }
    /// ```
    pub fn out_buffer_size(&mut self, bytes: u32) -> &mut Self {
        self.out_buffer = bytes;
        self
    }

    /// Refuse clients from other machines (`PIPE_REJECT_REMOTE_CLIENTS`).
    /// On by default: turn it off only for a service meant for the network.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().reject_remote_clients(false);
    /// # }
    /// ```
    pub fn reject_remote_clients(&mut self, reject: bool) -> &mut Self {
        self.reject_remote = reject;
        self
    }

    /// Write-through mode (`FILE_FLAG_WRITE_THROUGH`): on pipes to remote
    /// machines, writes complete only once the data is on the network.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().write_through(true);
    /// # }
    /// ```
    pub fn write_through(&mut self, on: bool) -> &mut Self {
        self.write_through = on;
        self
    }

    /// The largest read this crate issues on a byte-mode pipe, in bytes
    /// (default `DEFAULT_MAX_READ`). Sets no Win32 flag: it bounds the crate's
    /// own read buffer. Reads start at 4 KiB and grow towards this size while
    /// data streams; each pipe holds at most about twice this much for
    /// reading (a read in flight, or its data not yet taken, and one spare
    /// buffer). Message reads are sized to the message whatever this says,
    /// up to [`max_message`](Self::max_message).
    ///
    /// Left unset, the default grows while the process has room: a pipe
    /// whose 64 KiB read comes back full reads up to 256 KiB at once while
    /// a budget shared by all pipes of the process (3 MiB beyond their
    /// defaults) has room for the difference, and gives it back once the
    /// data stops streaming (a read brings less than 16 KiB), at the end of
    /// file, on `disconnect` and on drop. One or a few streaming pipes so make fewer,
    /// larger reads, while hundreds stay at 64 KiB. Set (to any value, the
    /// default too), this is the largest read, and the pipe takes no budget.
    /// From 4096 to 1 GiB; another value makes `create` and `listen` fail with `InvalidInput`.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().max_read(64 * 1024);
    /// # }
    /// ```
    pub fn max_read(&mut self, bytes: usize) -> &mut Self {
        self.limits.set_max_read(bytes);
        self
    }

    /// How many bytes `write` accepts while a write is in flight before it
    /// returns `WouldBlock`, and the most one `write` call takes (byte mode),
    /// in bytes (default `DEFAULT_WRITE_QUEUE`). Sets no Win32 flag: it bounds the
    /// crate's own write queue, so a pipe holds at most about twice this much
    /// for writing (the write in flight and the queue behind it). In message
    /// mode, a message is accepted whole while the queue holds less than this.
    ///
    /// Left unset, the default grows while the process has room: a pipe
    /// whose queue is too full for a `write` queues up to 1 MiB while
    /// the budget shared by all pipes of the process (3 MiB beyond their
    /// defaults) has room for twice the difference (the queue and the write
    /// in flight), and gives it back once every accepted byte is written,
    /// when a write fails, on `disconnect` and when the pipe closes. Set (to
    /// any value, the default too), this is the queue's size, and the pipe
    /// takes no budget.
    /// From 4096 to 1 GiB; another value makes `create` and `listen` fail with `InvalidInput`.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().write_queue(64 * 1024);
    /// # }
    /// ```
    pub fn write_queue(&mut self, bytes: usize) -> &mut Self {
        self.limits.set_write_queue(bytes);
        self
    }

    /// The largest message a message-mode read takes, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE`], 4 MiB; `usize::MAX`: no cap). Sets no Win32
    /// flag: it bounds the crate's own read buffer, so that no size a peer
    /// chooses can exhaust the process. A message read is sized from what
    /// `PeekNamedPipe` says is left of the message, never beyond this cap,
    /// and allocated with `try_reserve`.
    ///
    /// A message over the cap is not handed out, and the connection goes
    /// on: the rest of it is read and thrown away (in reads of 64 KiB), then
    /// the read (or `recv_msg`) that would have returned it fails once
    /// with `InvalidData`, naming the cap, and the next read returns the
    /// next message. Nothing of the message is lost silently and nothing
    /// of the next one is taken. A message whose buffer cannot be allocated
    /// (with no cap, or a cap larger than memory) is skipped the same way,
    /// with `OutOfMemory`. Byte-mode reads are bounded by `max_read` instead.
    ///
    /// ```
    /// # use named_pipes_core::{Front, PipeMode, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().pipe_mode(PipeMode::Message).max_message(64 * 1024);
    /// # }
    /// ```
    pub fn max_message(&mut self, bytes: usize) -> &mut Self {
        self.limits.set_max_message(bytes);
        self
    }

    /// Who may open the pipe (`lpSecurityAttributes`): this descriptor
    /// instead of the current-user-only one
    /// ([`current_user_only`](ServerOptions::current_user_only), the
    /// default), whatever that option says.
    ///
    /// Mind that for a pipe, write access lets a client create server
    /// instances of the name: `GENERIC_WRITE` (`GW`, `FILE_GENERIC_WRITE`)
    /// includes `FILE_CREATE_PIPE_INSTANCE` (`FILE_APPEND_DATA`, 0x4). To
    /// let other users read and write as clients without being able to
    /// serve the name, grant `FILE_GENERIC_READ | FILE_GENERIC_WRITE` without
    /// `FILE_CREATE_PIPE_INSTANCE` (`0x0012019b`) instead of `GW`/`GA`, as in
    /// `D:P(A;;GA;;;SY)(A;;GA;;;OW)(A;;0x0012019b;;;AU)` (full control for
    /// SYSTEM and the owner, read and write for authenticated users).
    ///
    /// ```
    /// # use named_pipes_core::{Front, SecurityDescriptor, ServerOptions};
    /// # fn example<F: Front>() {
    /// let sd = SecurityDescriptor::from_sddl("D:P(A;;GA;;;SY)(A;;GA;;;OW)(A;;0x0012019b;;;AU)").unwrap();
    /// ServerOptions::<F>::new().security_descriptor(&sd);
    /// # }
    /// ```
    pub fn security_descriptor(&mut self, sd: &SecurityDescriptor) -> &mut Self {
        self.security = Some(sd.clone());
        self
    }

    /// Whether only the user this process runs as (and SYSTEM) may open the
    /// pipe: on by default. The pipe is then created with a security
    /// descriptor owned by the process token's user SID
    /// (`GetTokenInformation(TokenUser)`; not `OW`, which in an elevated
    /// token is the Administrators group) with a protected DACL granting
    /// `GENERIC_ALL` to that user and to SYSTEM (`LocalSystem`), and to
    /// nobody else: `O:<user>D:P(A;;GA;;;<user>)(A;;GA;;;SY)`. No other
    /// user, and no process of the same user running in an AppContainer,
    /// can open it.
    ///
    /// A [`security_descriptor`](ServerOptions::security_descriptor), if
    /// set, is used instead. `current_user_only(false)` without one gives
    /// the pipe Windows' default security descriptor for named pipes: full
    /// control for SYSTEM, the Administrators group and the creator's
    /// owner (the token's default owner), and **read access for Everyone
    /// and the Anonymous account** (as `tokio`'s and `std`'s pipes get):
    /// any local user, or an anonymous network logon where remote clients
    /// are allowed, can then open the pipe for reading and read what the
    /// server writes.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// // Windows' default DACL, as other pipe libraries have it:
    /// ServerOptions::<F>::new().current_user_only(false);
    /// # }
    /// ```
    pub fn current_user_only(&mut self, on: bool) -> &mut Self {
        self.current_user_only = on;
        self
    }

    /// Whether the server's handle may change the pipe's DACL (with
    /// `SetSecurityInfo`): sets `WRITE_DAC` in `dwOpenMode`. Off by default.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().write_dac(true);
    /// # }
    /// ```
    pub fn write_dac(&mut self, requested: bool) -> &mut Self {
        self.write_dac = requested;
        self
    }

    /// Whether the server's handle may change the pipe's owner: sets
    /// `WRITE_OWNER` in `dwOpenMode`. Off by default.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().write_owner(true);
    /// # }
    /// ```
    pub fn write_owner(&mut self, requested: bool) -> &mut Self {
        self.write_owner = requested;
        self
    }

    /// Whether the server's handle may read and change the pipe's SACL
    /// (its audit entries): sets `ACCESS_SYSTEM_SECURITY` in `dwOpenMode`.
    /// Off by default; creating fails with `ERROR_PRIVILEGE_NOT_HELD` (1314)
    /// unless the process holds and has enabled `SeSecurityPrivilege`.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// ServerOptions::<F>::new().access_system_security(true);
    /// # }
    /// ```
    pub fn access_system_security(&mut self, requested: bool) -> &mut Self {
        self.access_system_security = requested;
        self
    }

    /// Creates a server instance of `addr`, waiting for a client: call the
    /// pipe's `connect` once it is registered.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad option (no access direction, `max_instances`
    /// out of range, `max_read` or `write_queue` below 4096 or over 1 GiB, a NUL in the name); otherwise the OS error, such as
    /// `PermissionDenied` for a first instance whose name exists, or
    /// `ERROR_PIPE_BUSY` when `max_instances` are open.
    ///
    /// ```
    /// use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// let e = ServerOptions::<F>::new().max_instances(0).create(r"\\.\pipe\x").err().unwrap();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// # }
    /// ```
    pub fn create<A: AsRef<OsStr>>(&self, addr: A) -> io::Result<F::Pipe> {
        Ok(F::pipe(self.spec(addr.as_ref(), self.first)?))
    }

    /// Creates a server instance of `addr` as [`create`](Self::create) does,
    /// with `attrs` as `CreateNamedPipeW`'s `lpSecurityAttributes` instead
    /// of [`security_descriptor`](Self::security_descriptor) or
    /// [`current_user_only`](Self::current_user_only) (which only apply
    /// when `attrs` is null: then this is `create`). Its `bInheritHandle`
    /// makes the handle inheritable.
    ///
    /// # Safety
    ///
    /// `attrs` must be null, or point to a valid `SECURITY_ATTRIBUTES`
    /// whose `nLength` is its size and whose `lpSecurityDescriptor` is null
    /// or a valid security descriptor, all readable for the whole call.
    ///
    /// # Errors
    ///
    /// The errors of [`create`](Self::create).
    ///
    /// ```
    /// # use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-raw-attrs-{}", std::process::id());
    /// // SAFETY: null is allowed: the same as `create`.
    /// let server = unsafe {
    ///     ServerOptions::<F>::new().create_with_security_attributes_raw(&name, std::ptr::null_mut())
    /// };
    /// # drop(server);
    /// # }
    /// ```
    pub unsafe fn create_with_security_attributes_raw<A: AsRef<OsStr>>(
        &self,
        addr: A,
        attrs: *mut c_void,
    ) -> io::Result<F::Pipe> {
        if attrs.is_null() {
            return self.create(addr);
        }
        let limits = self.limits()?;
        let handle =
            self.create_handle(addr.as_ref(), self.first, Some(attrs.cast_const().cast()))?;
        Ok(F::pipe(PipeSpec {
            handle,
            listening: true,
            framing: self.framing(),
            limits,
            linger: self.linger,
            created: true,
            census: None,
        }))
    }

    /// How long each pipe made with these options, once dropped, keeps
    /// delivering what `write` accepted before the drop (default
    /// [`DEFAULT_LINGER`], 5 s); then its pending writes are cancelled and
    /// its handle closed. Not a Win32 flag; the pipe's `set_linger` says
    /// what the peer sees.
    ///
    /// ```
    /// use std::time::Duration;
    /// use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-linger-{}", std::process::id());
    /// let server = ServerOptions::<F>::new().linger(Duration::from_millis(500)).create(&name).unwrap();
    /// # }
    /// ```
    pub fn linger(&mut self, limit: Duration) -> &mut Self {
        self.linger = limit;
        self
    }

    /// Creates the front's listener on `addr` (`PipeListener` in
    /// mio-named-pipes) that keeps `pending` instances listening at all
    /// times. Its first instance is always created with
    /// `FILE_FLAG_FIRST_PIPE_INSTANCE`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `pending` is 0 or more than `max_instances`; the
    /// errors of [`create`](ServerOptions::create) otherwise.
    ///
    /// ```
    /// use named_pipes_core::{Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-listen-{}", std::process::id());
    /// let listener = ServerOptions::<F>::new().listen(&name, 8).unwrap();
    /// # drop(listener);
    /// # }
    /// ```
    pub fn listen<A: AsRef<OsStr>>(&self, addr: A, pending: usize) -> io::Result<F::Listener> {
        if pending == 0
            || (self.max_instances != UNLIMITED_INSTANCES && pending > self.max_instances)
        {
            return Err(invalid(format!(
                "a listener needs 1 to max_instances ({}) pending instances, not {pending}",
                self.max_instances
            )));
        }
        self.limits()?;
        let options = self.clone();
        let instances = Instances::new(addr.as_ref(), move |addr, first| options.spec(addr, first));
        F::listen(instances, pending)
    }

    /// A new instance of `addr` with these options, waiting for its client
    /// (`first` overrides `first_pipe_instance`).
    pub(crate) fn spec(&self, addr: &OsStr, first: bool) -> io::Result<PipeSpec> {
        let limits = self.limits()?;
        let handle = self.create_handle(addr, first, None)?;
        Ok(PipeSpec {
            handle,
            listening: true,
            framing: self.framing(),
            limits,
            linger: self.linger,
            created: true,
            census: None,
        })
    }

    /// How instances made with these options frame data: both ways as
    /// their pipe mode says.
    fn framing(&self) -> Framing {
        let message = self.mode == PipeMode::Message;
        Framing {
            message_reads: message,
            message_writes: message,
        }
    }

    /// The buffer limits of instances made with these options, checked.
    pub(crate) fn limits(&self) -> io::Result<Limits> {
        check_limits(self.limits)
    }

    /// `CreateNamedPipeW` with these options (`first` overrides
    /// `first_pipe_instance`; `raw`, security attributes the caller keeps
    /// valid for the call, override the descriptor).
    fn create_handle(
        &self,
        addr: &OsStr,
        first: bool,
        raw: Option<*const SECURITY_ATTRIBUTES>,
    ) -> io::Result<std::os::windows::io::OwnedHandle> {
        let max_instances = match self.max_instances {
            UNLIMITED_INSTANCES => PIPE_UNLIMITED_INSTANCES,
            n @ 1..=254 => n as u32,
            n => {
                return Err(invalid(format!(
                    "max_instances must be 1 to 254 or UNLIMITED_INSTANCES, not {n}"
                )))
            }
        };
        let mut open_mode = match (self.inbound, self.outbound) {
            (true, true) => PIPE_ACCESS_INBOUND | PIPE_ACCESS_OUTBOUND,
            (true, false) => PIPE_ACCESS_INBOUND,
            (false, true) => PIPE_ACCESS_OUTBOUND,
            (false, false) => {
                return Err(invalid(
                    "a pipe needs inbound or outbound access, or both".into(),
                ))
            }
        };
        if first {
            open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
        }
        if self.write_through {
            open_mode |= FILE_FLAG_WRITE_THROUGH;
        }
        if self.write_dac {
            open_mode |= WRITE_DAC;
        }
        if self.write_owner {
            open_mode |= WRITE_OWNER;
        }
        if self.access_system_security {
            open_mode |= ACCESS_SYSTEM_SECURITY;
        }
        let mut pipe_mode = PIPE_WAIT
            | match self.mode {
                PipeMode::Byte => PIPE_TYPE_BYTE | PIPE_READMODE_BYTE,
                PipeMode::Message => PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE,
            };
        if self.reject_remote {
            pipe_mode |= PIPE_REJECT_REMOTE_CLIENTS;
        }
        let current;
        let descriptor = match (&self.security, self.current_user_only) {
            _ if raw.is_some() => None,
            (Some(sd), _) => Some(&*sd.0),
            (None, true) => {
                current = security::current_user_only()?;
                Some(&*current)
            }
            (None, false) => None,
        };
        let attributes = descriptor.map(|sd| sd.attributes());
        let params = pipe::ServerParams {
            open_mode,
            pipe_mode,
            max_instances,
            out_buffer: self.out_buffer,
            in_buffer: self.in_buffer,
            security: raw
                .unwrap_or_else(|| attributes.as_ref().map_or(ptr::null(), |a| a as *const _)),
        };
        pipe::create_server(addr, &params)
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The default of `max_read` in [`ServerOptions`] and [`ClientOptions`],
/// also the limit of pipes a front makes without options (`NamedPipe::new`
/// and `from_raw_handle` in mio-named-pipes); left unset, it grows up to
/// 256 KiB while a budget of the process has room (see
/// [`ServerOptions::max_read`]).
pub const DEFAULT_MAX_READ: usize = crate::engine::MAX_READ;

/// The default of `write_queue` in [`ServerOptions`] and [`ClientOptions`],
/// also the limit of pipes a front makes without options (`NamedPipe::new`
/// and `from_raw_handle` in mio-named-pipes); left unset, it grows up to
/// 1 MiB while a budget of the process has room (see
/// [`ServerOptions::write_queue`]).
pub const DEFAULT_WRITE_QUEUE: usize = crate::engine::WRITE_QUEUE;

/// The default of `max_message` in [`ServerOptions`] and [`ClientOptions`],
/// also the cap of pipes a front makes without options: 4 MiB (see
/// [`ServerOptions::max_message`]).
pub const DEFAULT_MAX_MESSAGE: usize = crate::engine::MAX_MESSAGE;

/// The smallest `max_read` and `write_queue`.
const MIN_LIMIT: usize = 4096;

fn check_limits(l: Limits) -> io::Result<Limits> {
    l.check(MIN_LIMIT).map_err(invalid)?;
    Ok(l)
}

/// Opens clients of a named pipe (`CreateFileW`), for overlapped I/O.
///
/// Defaults: read and write access, byte read mode, the server may
/// identify the client but not act as it (`SECURITY_SQOS_PRESENT |
/// SECURITY_IDENTIFICATION`), no waiting when every instance is busy, any
/// owner of the pipe accepted (see
/// [`current_user_only`](ClientOptions::current_user_only) and
/// [`expect_owner`](ClientOptions::expect_owner) to check who serves).
/// `F` is the front whose pipes it opens ([`Front::Pipe`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use named_pipes_core::{ClientOptions, Front, ServerOptions};
/// # fn example<F: Front>() {
/// let name = format!(r"\\.\pipe\mio-named-pipes-doc-client-{}", std::process::id());
/// let server = ServerOptions::<F>::new().create(&name).unwrap();
/// let client = ClientOptions::<F>::new()
///     .busy_timeout(Some(Duration::from_secs(1)))
///     .open(&name)
///     .unwrap();
/// # drop((server, client));
/// # }
/// ```
pub struct ClientOptions<F: Front> {
    read: bool,
    write: bool,
    mode: PipeMode,
    security_qos: u32,
    busy_timeout: Option<Duration>,
    current_user_only: bool,
    owners: Vec<PipeOwner>,
    server_pid: Option<u32>,
    linger: Duration,
    limits: Limits,
    front: PhantomData<fn() -> F>,
}

impl<F: Front> Clone for ClientOptions<F> {
    fn clone(&self) -> Self {
        ClientOptions {
            owners: self.owners.clone(),
            ..*self
        }
    }
}

/// Who may own the pipe a client opens
/// ([`ClientOptions::expect_owner`]): the owner of a pipe is the user that
/// created its first instance (or the owner its security descriptor names),
/// so checking it tells whether the expected party serves the name or
/// another user squatted it.
///
/// ```
/// use named_pipes_core::{ClientOptions, Front, PipeOwner};
/// # fn example<F: Front>() {
/// // A service running as SYSTEM, or a pipe of this user.
/// ClientOptions::<F>::new().expect_owner(&[PipeOwner::LocalSystem, PipeOwner::CurrentUser]);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PipeOwner {
    /// The user this process runs as (its token's user SID).
    CurrentUser,
    /// The LocalSystem account, `S-1-5-18`, as services run.
    LocalSystem,
    /// The builtin Administrators group, `S-1-5-32-544`: the owner of what
    /// an elevated administrator creates.
    Administrators,
    /// Any SID, as a string: `S-1-5-...`, or an SDDL alias such as `BA`
    /// (an invalid string makes `open` fail with `InvalidInput`).
    Sid(String),
}

impl PipeOwner {
    /// The canonical SID string of this owner.
    fn sid(&self) -> io::Result<String> {
        match self {
            PipeOwner::CurrentUser => security::current_user_sid(),
            PipeOwner::LocalSystem => Ok(security::LOCAL_SYSTEM.to_string()),
            PipeOwner::Administrators => Ok(security::ADMINISTRATORS.to_string()),
            PipeOwner::Sid(s) => security::canonical_sid(s),
        }
    }
}

impl<F: Front> fmt::Debug for ClientOptions<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("read", &self.read)
            .field("write", &self.write)
            .field("mode", &self.mode)
            .field("security_qos", &self.security_qos)
            .field("busy_timeout", &self.busy_timeout)
            .field("current_user_only", &self.current_user_only)
            .field("owners", &self.owners)
            .field("server_pid", &self.server_pid)
            .field("linger", &self.linger)
            .field("limits", &self.limits)
            .finish()
    }
}

impl<F: Front> Default for ClientOptions<F> {
    fn default() -> Self {
        ClientOptions {
            read: true,
            write: true,
            mode: PipeMode::Byte,
            security_qos: SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
            busy_timeout: None,
            current_user_only: false,
            owners: Vec::new(),
            server_pid: None,
            linger: DEFAULT_LINGER,
            limits: Limits::default(),
            front: PhantomData,
        }
    }
}

impl<F: Front> ClientOptions<F> {
    /// The defaults.
    ///
    /// ```
    /// use named_pipes_core::{ClientOptions, Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-client-new-{}", std::process::id());
    /// let server = ServerOptions::<F>::new().create(&name).unwrap();
    /// let client = ClientOptions::<F>::new().open(&name).unwrap();
    /// # drop((server, client));
    /// # }
    /// ```
    pub fn new() -> ClientOptions<F> {
        ClientOptions::default()
    }

    /// Open for reading (`GENERIC_READ`).
    ///
    /// ```
    /// # use named_pipes_core::{ClientOptions, Front};
    /// # fn example<F: Front>() {
    /// ClientOptions::<F>::new().read(false); // write only
    /// # }
    /// ```
    pub fn read(&mut self, allowed: bool) -> &mut Self {
        self.read = allowed;
        self
    }

    /// Open for writing (`GENERIC_WRITE`).
    ///
    /// ```
    /// # use named_pipes_core::{ClientOptions, Front};
    /// # fn example<F: Front>() {
    /// ClientOptions::<F>::new().write(false); // read only
    /// # }
    /// ```
    pub fn write(&mut self, allowed: bool) -> &mut Self {
        self.write = allowed;
        self
    }

    /// The read mode set after opening (`SetNamedPipeHandleState` with
    /// `PIPE_READMODE_BYTE` or `PIPE_READMODE_MESSAGE`). Message mode needs a
    /// message-type server.
    ///
    /// ```
    /// # use named_pipes_core::{ClientOptions, Front, PipeMode};
    /// # fn example<F: Front>() {
    /// ClientOptions::<F>::new().pipe_mode(PipeMode::Message);
    /// # }
    /// ```
    pub fn pipe_mode(&mut self, mode: PipeMode) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Security quality-of-service flags given to `CreateFileW`: how far
    /// the server may act as this client. One level (`SECURITY_ANONYMOUS`,
    /// `SECURITY_IDENTIFICATION`, `SECURITY_IMPERSONATION` or
    /// `SECURITY_DELEGATION`), and optionally `SECURITY_CONTEXT_TRACKING`
    /// and `SECURITY_EFFECTIVE_ONLY`. `SECURITY_SQOS_PRESENT` is always
    /// or'ed in, as tokio does: without it Windows ignores the level and
    /// the server may impersonate the client fully. The default,
    /// `SECURITY_IDENTIFICATION`, lets the server identify the client but
    /// not act as it.
    ///
    /// Only these bits (`SECURITY_VALID_SQOS_FLAGS`, `0x1f0000`): any other
    /// bit (a file flag or attribute) makes `open` fail with `InvalidInput`.
    ///
    /// ```
    /// # use named_pipes_core::{ClientOptions, Front};
    /// # fn example<F: Front>() {
    /// const SECURITY_IMPERSONATION: u32 = 2 << 16;
    /// ClientOptions::<F>::new().security_qos_flags(SECURITY_IMPERSONATION);
    /// # }
    /// ```
    pub fn security_qos_flags(&mut self, flags: u32) -> &mut Self {
        self.security_qos = flags;
        self
    }

    /// How long `open` waits (`WaitNamedPipeW`) while every instance is
    /// busy; `None` (the default) fails at once with `ERROR_PIPE_BUSY`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use named_pipes_core::{ClientOptions, Front};
    /// # fn example<F: Front>() {
    /// ClientOptions::<F>::new().busy_timeout(Some(Duration::from_millis(500)));
    /// # }
    /// ```
    pub fn busy_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether the pipe's owner must be the user this process runs as (its
    /// token's user SID): off by default. `open` reads the owner of the
    /// pipe it opened (`GetSecurityInfo`, `SE_KERNEL_OBJECT`,
    /// `OWNER_SECURITY_INFORMATION`) and, if it is not allowed, closes the
    /// handle and fails with `PermissionDenied` naming the owner found and
    /// the owners expected; the server sees a client that connected and
    /// left, having sent nothing. A pipe made by this crate's servers with
    /// their defaults ([`ServerOptions::current_user_only`]) is owned by
    /// its creator's user.
    ///
    /// Together with [`expect_owner`](ClientOptions::expect_owner), the
    /// owner must be the current user or one of those.
    ///
    /// ```
    /// use named_pipes_core::{ClientOptions, Front, ServerOptions};
    /// # fn example<F: Front>() {
    /// let name = format!(r"\\.\pipe\mio-named-pipes-doc-cuo-{}", std::process::id());
    /// let server = ServerOptions::<F>::new().create(&name).unwrap();
    /// let client = ClientOptions::<F>::new().current_user_only(true).open(&name).unwrap();
    /// # drop((server, client));
    /// # }
    /// ```
    pub fn current_user_only(&mut self, on: bool) -> &mut Self {
        self.current_user_only = on;
        self
    }

    /// The owners the pipe may have: `open` fails with `PermissionDenied`
    /// when the owner of the pipe it opened is none of these (nor the
    /// current user, with [`current_user_only`](ClientOptions::current_user_only)).
    /// Empty (the default): no owner check. The check is as
    /// `current_user_only` describes.
    ///
    /// ```
    /// use named_pipes_core::{ClientOptions, Front, PipeOwner};
    /// # fn example<F: Front>() {
    /// ClientOptions::<F>::new().expect_owner(&[
    ///     PipeOwner::CurrentUser,
    ///     PipeOwner::LocalSystem,
    ///     PipeOwner::Sid("S-1-5-32-544".into()),
    /// ]);
    /// # }
    /// ```
    pub fn expect_owner(&mut self, owners: &[PipeOwner]) -> &mut Self {
        self.owners = owners.to_vec();
        self
    }

    /// The process id the pipe's server must have
    /// (`GetNamedPipeServerProcessId` on the opened handle); `None` (the
    /// default) accepts any. Another server process makes `open` fail with
    /// `PermissionDenied` naming both ids, the handle closed.
    ///
    /// ```
    /// # use named_pipes_core::{ClientOptions, Front};
    /// # fn example<F: Front>(server_pid: u32) {
    /// ClientOptions::<F>::new().expect_server_process_id(Some(server_pid));
    /// # }
    /// ```
    pub fn expect_server_process_id(&mut self, pid: Option<u32>) -> &mut Self {
        self.server_pid = pid;
        self
    }

    /// The owner SIDs `open` accepts; empty for no check.
    fn owner_sids(&self) -> io::Result<Vec<String>> {
        let mut sids = Vec::new();
        if self.current_user_only {
            sids.push(security::current_user_sid()?);
        }
        for owner in &self.owners {
            sids.push(owner.sid()?);
        }
        Ok(sids)
    }

    /// Whether `open` may wait while every instance is busy: a
    /// [`busy_timeout`](ClientOptions::busy_timeout) above zero is set (an
    /// async front waits on a thread of its own then).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use named_pipes_core::{ClientOptions, Front};
    /// # fn example<F: Front>() {
    /// let mut options = ClientOptions::<F>::new();
    /// assert!(!options.waits_when_busy());
    /// assert!(!options.busy_timeout(Some(Duration::ZERO)).waits_when_busy());
    /// assert!(options.busy_timeout(Some(Duration::from_secs(1))).waits_when_busy());
    /// # }
    /// ```
    pub fn waits_when_busy(&self) -> bool {
        self.busy_timeout.is_some_and(|t| !t.is_zero())
    }

    /// The largest read this crate issues on a byte-mode pipe, in bytes
    /// (default `DEFAULT_MAX_READ`). Sets no Win32 flag: it bounds the crate's
    /// own read buffer. Reads start at 4 KiB and grow towards this size while
    /// data streams; each pipe holds at most about twice this much for
    /// reading (a read in flight, or its data not yet taken, and one spare
    /// buffer). Message reads are sized to the message whatever this says,
    /// up to [`max_message`](Self::max_message).
    ///
    /// Left unset, the default grows while the process has room: a pipe
    /// whose 64 KiB read comes back full reads up to 256 KiB at once while
    /// a budget shared by all pipes of the process (3 MiB beyond their
    /// defaults) has room for the difference, and gives it back once the
    /// data stops streaming (a read brings less than 16 KiB), at the end of
    /// file, on `disconnect` and on drop. One or a few streaming pipes so make fewer,
    /// larger reads, while hundreds stay at 64 KiB. Set (to any value, the
    /// default too), this is the largest read, and the pipe takes no budget.
    /// From 4096 to 1 GiB; another value makes `open` fail with `InvalidInput`.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ClientOptions};
    /// # fn example<F: Front>() {
    /// ClientOptions::<F>::new().max_read(64 * 1024);
    /// # }
    /// ```
    pub fn max_read(&mut self, bytes: usize) -> &mut Self {
        self.limits.set_max_read(bytes);
        self
    }

    /// How many bytes `write` accepts while a write is in flight before it
    /// returns `WouldBlock`, and the most one `write` call takes (byte mode),
    /// in bytes (default `DEFAULT_WRITE_QUEUE`). Sets no Win32 flag: it bounds the
    /// crate's own write queue, so a pipe holds at most about twice this much
    /// for writing (the write in flight and the queue behind it). In message
    /// mode, a message is accepted whole while the queue holds less than this.
    ///
    /// Left unset, the default grows while the process has room: a pipe
    /// whose queue is too full for a `write` queues up to 1 MiB while
    /// the budget shared by all pipes of the process (3 MiB beyond their
    /// defaults) has room for twice the difference (the queue and the write
    /// in flight), and gives it back once every accepted byte is written,
    /// when a write fails, on `disconnect` and when the pipe closes. Set (to
    /// any value, the default too), this is the queue's size, and the pipe
    /// takes no budget.
    /// From 4096 to 1 GiB; another value makes `open` fail with `InvalidInput`.
    ///
    /// ```
    /// # use named_pipes_core::{Front, ClientOptions};
    /// # fn example<F: Front>() {
    /// ClientOptions::<F>::new().write_queue(64 * 1024);
    /// # }
    /// ```
    pub fn write_queue(&mut self, bytes: usize) -> &mut Self {
        self.limits.set_write_queue(bytes);
        self
    }

    /// The largest message a message-mode read takes, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE`], 4 MiB; `usize::MAX`: no cap). Sets no Win32
    /// flag: it bounds the crate's own read buffer, so that no size a peer
    /// chooses can exhaust the process. A message read is sized from what
    /// `PeekNamedPipe` says is left of the message, never beyond this cap,
    /// and allocated with `try_reserve`.
    ///
    /// A message over the cap is not handed out, and the connection goes
    /// on: the rest of it is read and thrown away (in reads of 64 KiB), then
    /// the read (or `recv_msg`) that would have returned it fails once
    /// with `InvalidData`, naming the cap, and the next read returns the
    /// next message. Nothing of the message is lost silently and nothing
    /// of the next one is taken. A message whose buffer cannot be allocated
    /// (with no cap, or a cap larger than memory) is skipped the same way,
    /// with `OutOfMemory`. Byte-mode reads are bounded by `max_read` instead.
    ///
    /// ```
    /// # use named_pipes_core::{ClientOptions, Front, PipeMode};
    /// # fn example<F: Front>() {
    /// ClientOptions::<F>::new().pipe_mode(PipeMode::Message).max_message(64 * 1024);
    /// # }
    /// ```
    pub fn max_message(&mut self, bytes: usize) -> &mut Self {
        self.limits.set_max_message(bytes);
        self
    }

    /// Opens a client of the pipe `addr`, connected and ready to register.
    ///
    /// # Errors
    ///
    /// `NotFound` when no server of that name exists; when every instance is
    /// busy, the OS error `ERROR_PIPE_BUSY` as is (`raw_os_error() == Some(231)`) without a
    /// `busy_timeout`, or `TimedOut` once it has passed; `InvalidInput` for
    /// `max_read` or `write_queue` below 4096 or over 1 GiB, for a
    /// NUL in the name, for a [`PipeOwner::Sid`] that is no SID, or for
    /// [`security_qos_flags`](ClientOptions::security_qos_flags) that are not
    /// all quality-of-service flags;
    /// `PermissionDenied` when the pipe's owner or server process is not
    /// the one expected ([`current_user_only`](ClientOptions::current_user_only),
    /// [`expect_owner`](ClientOptions::expect_owner),
    /// [`expect_server_process_id`](ClientOptions::expect_server_process_id)),
    /// or when the pipe's security descriptor does not let this user open it.
    ///
    /// ```
    /// use named_pipes_core::{ClientOptions, Front};
    /// # fn example<F: Front>() {
    /// let e = ClientOptions::<F>::new().open(r"\\.\pipe\mio-named-pipes-nobody-here").err().unwrap();
    /// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// # }
    /// ```
    pub fn open<A: AsRef<OsStr>>(&self, addr: A) -> io::Result<F::Pipe> {
        self.open_with(addr.as_ref(), ptr::null())
    }

    /// Opens a client of `addr` as [`open`](Self::open) does, with `attrs`
    /// as `CreateFileW`'s `lpSecurityAttributes` (its `bInheritHandle` makes
    /// the handle inheritable; a descriptor in it means nothing for opening
    /// an existing pipe). Null is the same as `open`.
    ///
    /// # Safety
    ///
    /// `attrs` must be null, or point to a valid `SECURITY_ATTRIBUTES`
    /// whose `nLength` is its size and whose `lpSecurityDescriptor` is null
    /// or a valid security descriptor, all readable for the whole call
    /// (with a `busy_timeout`, the whole wait).
    ///
    /// # Errors
    ///
    /// The errors of [`open`](Self::open).
    ///
    /// ```
    /// # use named_pipes_core::{ClientOptions, Front};
    /// # fn example<F: Front>() {
    /// // SAFETY: null is allowed: the same as `open`.
    /// let r = unsafe {
    ///     ClientOptions::<F>::new().open_with_security_attributes_raw(
    ///         r"\\.\pipe\mio-named-pipes-nobody-here",
    ///         std::ptr::null_mut(),
    ///     )
    /// };
    /// assert_eq!(r.err().unwrap().kind(), std::io::ErrorKind::NotFound);
    /// # }
    /// ```
    pub unsafe fn open_with_security_attributes_raw<A: AsRef<OsStr>>(
        &self,
        addr: A,
        attrs: *mut c_void,
    ) -> io::Result<F::Pipe> {
        self.open_with(addr.as_ref(), attrs.cast_const().cast())
    }

    /// `open`, with `CreateFileW`'s security attributes (null, or valid for the call).
    fn open_with(&self, addr: &OsStr, attrs: *const SECURITY_ATTRIBUTES) -> io::Result<F::Pipe> {
        let limits = check_limits(self.limits)?;
        let owners = self.owner_sids()?;
        let checks = !owners.is_empty() || self.server_pid.is_some();
        let params = client::ClientParams {
            // Setting the read mode needs FILE_WRITE_ATTRIBUTES, part of GENERIC_WRITE.
            access: if self.read { GENERIC_READ } else { 0 }
                | if self.write { GENERIC_WRITE } else { 0 }
                | if self.mode == PipeMode::Message {
                    FILE_WRITE_ATTRIBUTES
                } else {
                    0
                }
                // Reading the owner needs READ_CONTROL (part of GENERIC_READ and GENERIC_WRITE).
                | if checks { READ_CONTROL } else { 0 },
            security_qos: policy::sqos_flags(self.security_qos).map_err(invalid)?,
            read_mode: match self.mode {
                PipeMode::Byte => None,
                PipeMode::Message => Some(PIPE_READMODE_MESSAGE),
            },
            busy_timeout: self.busy_timeout,
            owners,
            server_pid: self.server_pid,
            security: attrs,
        };
        let handle = client::open(addr, &params)?;
        let mut spec = PipeSpec::queried(handle, false);
        spec.limits = limits;
        spec.linger = self.linger;
        Ok(F::pipe(spec))
    }

    /// How long the client, once dropped, keeps delivering what `write`
    /// accepted before the drop (default
    /// [`DEFAULT_LINGER`], 5 s); then its pending writes are cancelled and
    /// its handle closed. Not a Win32 flag; the pipe's `set_linger` says
    /// what the server sees.
    ///
    /// ```
    /// # use named_pipes_core::{ClientOptions, Front};
    /// # fn example<F: Front>() {
    /// ClientOptions::<F>::new().linger(std::time::Duration::ZERO); // no linger at all
    /// # }
    /// ```
    pub fn linger(&mut self, limit: Duration) -> &mut Self {
        self.linger = limit;
        self
    }
}
