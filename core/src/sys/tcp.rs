//! Who is at the other end of a local TCP connection: the process that
//! owns the peer's end (`GetExtendedTcpTable`) and the user its token
//! names.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, NO_ERROR};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetExtendedTcpTable, MIB_TCP6ROW_OWNER_PID, MIB_TCPROW_OWNER_PID,
    TCP_TABLE_OWNER_PID_CONNECTIONS,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6};
use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};

use super::security;

/// The local process at the other end of a TCP connection, and its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpPeer {
    /// The process that owns the peer's end of the connection.
    pub process_id: u32,
    /// The SID (`S-1-5-...`) of the user that process runs as.
    pub user_sid: String,
    /// Whether that is the user this process runs as.
    pub same_user: bool,
}

/// Finds the local process at the other end of a TCP connection whose
/// ends are `local` (this process's) and `peer`, and the user it runs as.
///
/// # Errors
///
/// `NotFound` when no local process owns `peer` connected to `local` (a
/// peer on another machine, or a connection already closed); an error of
/// kind `Other` when the system names no process (process id 0);
/// `PermissionDenied` when that process's user cannot be read (another
/// user's process, to a process that is not elevated); the OS error of a
/// failed call.
pub fn tcp_peer(local: SocketAddr, peer: SocketAddr) -> io::Result<TcpPeer> {
    let pid = owning_pid(local, peer)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no local process owns the TCP connection from {peer} to {local}"),
        )
    })?;
    if pid == 0 {
        // The System Idle "process": the system does not tell (Wine 8, for
        // some connections).
        return Err(io::Error::other(format!(
            "the system does not tell which process owns the TCP connection from {peer} to {local}"
        )));
    }
    // SAFETY: no pointers; the handle returned is ours, closed by OwnedHandle.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if h.is_null() {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot ask process {pid} for its user: {e}"),
        ));
    }
    // SAFETY: a handle just opened, owned by nothing else.
    let h = unsafe { OwnedHandle::from_raw_handle(h) };
    let user_sid = security::process_user(h.as_raw_handle())?;
    let same_user = user_sid == security::current_user_sid()?;
    Ok(TcpPeer {
        process_id: pid,
        user_sid,
        same_user,
    })
}

/// The process that owns the endpoint `peer` connected to `local`.
fn owning_pid(local: SocketAddr, peer: SocketAddr) -> io::Result<Option<u32>> {
    let v6 = matches!(peer.ip(), IpAddr::V6(_));
    let table = tcp_table(if v6 { AF_INET6 } else { AF_INET })?;
    if table.len() < 4 {
        return Ok(None);
    }
    // The table is a count, then that many rows (`table` is u32-aligned,
    // as both row types are).
    let count = table[0] as usize;
    let rows = &table[1..];
    if v6 {
        let size = std::mem::size_of::<MIB_TCP6ROW_OWNER_PID>() / 4;
        let count = count.min(rows.len() / size);
        for i in 0..count {
            // SAFETY: row `i` lies inside `rows` (counted above), which is
            // u32-aligned, as the row type needs.
            let r = unsafe { &*rows.as_ptr().add(i * size).cast::<MIB_TCP6ROW_OWNER_PID>() };
            let local_end = SocketAddr::new(IpAddr::from(r.ucLocalAddr), port(r.dwLocalPort));
            let remote_end = SocketAddr::new(IpAddr::from(r.ucRemoteAddr), port(r.dwRemotePort));
            if same_end(local_end, peer) && same_end(remote_end, local) {
                return Ok(Some(r.dwOwningPid));
            }
        }
    } else {
        let size = std::mem::size_of::<MIB_TCPROW_OWNER_PID>() / 4;
        let count = count.min(rows.len() / size);
        for i in 0..count {
            // SAFETY: as above.
            let r = unsafe { &*rows.as_ptr().add(i * size).cast::<MIB_TCPROW_OWNER_PID>() };
            let v4 = |a: u32| IpAddr::from(a.to_ne_bytes());
            let local_end = SocketAddr::new(v4(r.dwLocalAddr), port(r.dwLocalPort));
            let remote_end = SocketAddr::new(v4(r.dwRemoteAddr), port(r.dwRemotePort));
            if same_end(local_end, peer) && same_end(remote_end, local) {
                return Ok(Some(r.dwOwningPid));
            }
        }
    }
    Ok(None)
}

/// A port as the table stores it: network order in the low 16 bits.
fn port(p: u32) -> u16 {
    u16::from_be((p & 0xffff) as u16)
}

/// The same endpoint, an IPv4 address mapped into IPv6 or not.
fn same_end(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canon(a.ip()) == canon(b.ip())
}

/// The TCP connection table of one address family, with owner ids, as
/// u32s (the alignment its rows need).
fn tcp_table(family: u16) -> io::Result<Vec<u32>> {
    let table = |buf: Option<&mut Vec<u32>>, len: &mut u32| {
        let ptr = buf.map_or(std::ptr::null_mut(), |b| b.as_mut_ptr().cast());
        // SAFETY: `ptr` is null with `len` 0 (a size query), or has room for
        // `len` bytes and outlives the call; `len` receives the size needed.
        unsafe {
            GetExtendedTcpTable(
                ptr,
                len,
                0,
                u32::from(family),
                TCP_TABLE_OWNER_PID_CONNECTIONS,
                0,
            )
        }
    };
    for _ in 0..8 {
        let mut len = 0u32;
        match table(None, &mut len) {
            NO_ERROR => return Ok(Vec::new()),
            ERROR_INSUFFICIENT_BUFFER => {}
            e => return Err(io::Error::from_raw_os_error(e as i32)),
        }
        // Room to spare, for connections made in between.
        let mut len = len.saturating_add(1024);
        let mut buf = vec![0u32; (len as usize).div_ceil(4)];
        match table(Some(&mut buf), &mut len) {
            NO_ERROR => return Ok(buf),
            // The table grew past the room: ask again.
            ERROR_INSUFFICIENT_BUFFER => {}
            e => return Err(io::Error::from_raw_os_error(e as i32)),
        }
    }
    Err(io::Error::other(
        "the TCP connection table kept growing while being read",
    ))
}
