//! Who may open a pipe and who serves it: current-user-only servers (the
//! default of `NamedPipe::new`, `ServerOptions` and `PipeListener::bind`),
//! and the client's checks of the pipe's owner and server process.
#![cfg(all(windows, feature = "mio-06"))]

mod util;

use std::io::ErrorKind;
use std::os::windows::io::{AsRawHandle, RawHandle};
use std::ptr;

use mio_named_pipes::{
    ClientOptions, NamedPipe, PipeListener, PipeOwner, SecurityDescriptor, ServerOptions,
};
use util::*;

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW, GetSecurityInfo,
    SDDL_REVISION_1, SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Security::{ImpersonateAnonymousToken, RevertToSelf};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentThread, OpenProcessToken,
};

/// A NUL-terminated wide string the system allocated, as a `String`, freed.
fn take_wide(s: *mut u16) -> String {
    let mut len = 0;
    // SAFETY: the system returned a NUL-terminated string; we stop at its NUL.
    while unsafe { *s.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` u16s before the NUL belong to the string.
    let text = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(s, len) });
    // SAFETY: LocalAlloc'ed by the system for us, freed once.
    unsafe { LocalFree(s.cast()) };
    text
}

/// The SID of the user this test process runs as, asked here without the crate.
fn my_sid() -> String {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: the process pseudo handle; `token` receives a handle closed below.
    assert_ne!(
        unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) },
        0
    );
    let mut buf = vec![0u64; 128];
    let mut len = 0;
    // SAFETY: `buf` has room for 1024 bytes, aligned for TOKEN_USER.
    let ok =
        unsafe { GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), 1024, &mut len) };
    assert_ne!(
        ok,
        0,
        "GetTokenInformation: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a handle opened above, closed once.
    unsafe { CloseHandle(token) };
    // SAFETY: the call filled `buf` with a TOKEN_USER pointing inside it.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut s = ptr::null_mut();
    // SAFETY: `sid` is valid while `buf` lives; `s` receives a string we free.
    assert_ne!(unsafe { ConvertSidToStringSidW(sid, &mut s) }, 0);
    take_wide(s)
}

/// A SID as `S-1-...`, also when SDDL printed it as an alias (`SY`, `BA`,
/// or `LA` for the local Administrator account a test may run as).
fn canon(sid: &str) -> String {
    use windows_sys::Win32::Security::Authorization::ConvertStringSidToSidW;
    if sid.starts_with("S-") {
        return sid.to_string();
    }
    let w: Vec<u16> = sid.encode_utf16().chain(Some(0)).collect();
    let mut psid = ptr::null_mut();
    // SAFETY: a NUL-terminated string; `psid` receives a SID we free.
    assert_ne!(
        unsafe { ConvertStringSidToSidW(w.as_ptr(), &mut psid) },
        0,
        "{sid}"
    );
    let mut s = ptr::null_mut();
    // SAFETY: a valid SID; `s` receives a string freed by take_wide.
    assert_ne!(unsafe { ConvertSidToStringSidW(psid, &mut s) }, 0);
    // SAFETY: LocalAlloc'ed by the conversion, freed once.
    unsafe { LocalFree(psid) };
    take_wide(s)
}

/// An ACE's type, flags and rights, and its SID made canonical.
fn ace_parts(ace: &str) -> (String, String) {
    let (head, sid) = ace.rsplit_once(";;;").unwrap_or((ace, ""));
    (head.to_string(), canon(sid))
}

/// The owner and DACL of the pipe behind `h` as SDDL (`GetSecurityInfo`).
fn sddl_of(h: RawHandle) -> String {
    let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: a live handle; the descriptor is allocated for us and freed below.
    let e = unsafe {
        GetSecurityInfo(
            h,
            SE_KERNEL_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut sd,
        )
    };
    assert_eq!(
        e,
        0,
        "GetSecurityInfo: {}",
        std::io::Error::from_raw_os_error(e as i32)
    );
    let mut s = ptr::null_mut();
    // SAFETY: a valid descriptor; `s` receives a string freed by take_wide.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd,
            SDDL_REVISION_1,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut s,
            ptr::null_mut(),
        )
    };
    assert_ne!(ok, 0);
    // SAFETY: allocated by GetSecurityInfo, freed once.
    unsafe { LocalFree(sd) };
    take_wide(s)
}

/// The owner (`O:`), DACL flags and ACEs of an SDDL string:
/// `("S-1-...", "P", ["A;;FA;;;SY", ...])`.
fn parse(sddl: &str) -> (String, String, Vec<String>) {
    let d = sddl.find("D:").unwrap_or(sddl.len());
    let owner = sddl[..d].strip_prefix("O:").unwrap_or("").to_string();
    let dacl = sddl.get(d + 2..).unwrap_or("");
    let first = dacl.find('(').unwrap_or(dacl.len());
    let flags = dacl[..first].to_string();
    let aces = dacl[first..]
        .split(')')
        .filter(|a| !a.is_empty())
        .map(|a| a.trim_start_matches('(').to_string())
        .collect();
    (owner, flags, aces)
}

/// Checks that `h`'s pipe is current-user-only: owned by this user, a
/// protected DACL with exactly two ACEs, full control for this user and SYSTEM.
fn assert_current_user_only(h: RawHandle, what: &str) {
    let me = my_sid();
    let sddl = sddl_of(h);
    println!("{what}: {sddl}");
    let (owner, flags, aces) = parse(&sddl);
    assert_eq!(canon(&owner), me, "{what}: owner of {sddl}");
    assert_eq!(flags, "P", "{what}: a protected DACL: {sddl}");
    // Windows maps GENERIC_ALL to the pipe's FILE_ALL_ACCESS (FA) when it
    // stores the DACL; Wine may keep GENERIC_ALL (GA). Either way: full
    // control, allow, no inheritance flags, and nothing else.
    assert_eq!(aces.len(), 2, "{what}: exactly two ACEs: {sddl}");
    let full = |ace: &String, sid: &str| {
        let (rights, ace_sid) = ace_parts(ace);
        (rights == "A;;FA" || rights == "A;;GA") && ace_sid == sid
    };
    assert!(
        full(&aces[0], &me),
        "{what}: first ACE is the user's: {sddl}"
    );
    assert!(
        full(&aces[1], "S-1-5-18"),
        "{what}: second ACE is SYSTEM's: {sddl}"
    );
}

#[test]
fn new_pipes_are_current_user_only() {
    let name = name();
    let server = NamedPipe::new(&name).unwrap();
    assert_current_user_only(server.as_raw_handle(), "NamedPipe::new");
    // A client sees the same descriptor through its own handle.
    let client = ClientOptions::new().open(&name).unwrap();
    assert_current_user_only(client.as_raw_handle(), "NamedPipe::new, client end");
}

#[test]
fn server_options_are_current_user_only_by_default() {
    let server = ServerOptions::new().create(name()).unwrap();
    assert_current_user_only(server.as_raw_handle(), "ServerOptions::new");
}

#[test]
fn listener_instances_are_current_user_only() {
    let name = name();
    let _listener = PipeListener::bind(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    assert_current_user_only(client.as_raw_handle(), "PipeListener::bind");
}

#[test]
fn current_user_only_false_gives_the_default_descriptor() {
    let server = ServerOptions::new()
        .current_user_only(false)
        .create(name())
        .unwrap();
    let sddl = sddl_of(server.as_raw_handle());
    println!("current_user_only(false): {sddl}");
    let (_, flags, aces) = parse(&sddl);
    if wine_version().is_some() && aces.is_empty() {
        wine_limitation(&format!(
            "a pipe created without security attributes gets no default DACL ({sddl}), \
             not Windows' (full control for SYSTEM, Administrators and the owner, read for \
             Everyone and Anonymous)"
        ));
        return;
    }
    // Windows' default: read access for Everyone (WD) and Anonymous (AN)
    // among the ACEs, and not the protected current-user-only DACL.
    assert_ne!(flags, "P", "{sddl}");
    assert!(aces.iter().any(|a| a.ends_with(";;;WD")), "{sddl}");
    assert!(aces.iter().any(|a| a.ends_with(";;;AN")), "{sddl}");
}

#[test]
fn a_security_descriptor_replaces_current_user_only() {
    let sd =
        SecurityDescriptor::from_sddl("D:P(A;;GA;;;SY)(A;;GA;;;OW)(A;;0x0012019b;;;AU)").unwrap();
    let server = ServerOptions::new()
        .security_descriptor(&sd)
        .create(name())
        .unwrap();
    let sddl = sddl_of(server.as_raw_handle());
    let (_, flags, aces) = parse(&sddl);
    assert_eq!(flags, "P", "{sddl}");
    assert_eq!(aces.len(), 3, "{sddl}");
    assert!(aces[2].ends_with(";;;AU"), "{sddl}");
}

/// A server whose SDDL names `owner` (an SDDL alias) as the pipe's owner,
/// with a DACL that lets everyone open it, and its 7 other instances (each
/// client takes one); `None` when the system refuses the owner (Windows
/// does unless the token may own objects as it).
fn server_owned_by(name: &str, owner: &str) -> Option<Vec<NamedPipe>> {
    let sd = SecurityDescriptor::from_sddl(&format!("O:{owner}D:(A;;GA;;;WD)")).unwrap();
    let mut options = ServerOptions::new();
    options.security_descriptor(&sd).max_instances(8);
    match (0..8).map(|_| options.create(name)).collect() {
        Ok(p) => Some(p),
        Err(e) => {
            println!("creating a pipe owned by {owner}: {e} (this token may not assign it)");
            None
        }
    }
}

#[test]
fn clients_check_the_owner() {
    let me = my_sid();
    for (alias, sid, owner) in [
        ("SY", "S-1-5-18", PipeOwner::LocalSystem),
        ("BA", "S-1-5-32-544", PipeOwner::Administrators),
    ] {
        let name = name();
        let Some(server) = server_owned_by(&name, alias) else {
            continue;
        };
        let recorded = parse(&sddl_of(server[0].as_raw_handle())).0;
        let recorded = canon(&recorded);
        if recorded == me {
            // Windows records the owner it accepted (or refuses it above).
            assert!(
                wine_version().is_some(),
                "O:{alias} was accepted but the pipe's owner is this user"
            );
            wine_limitation(&format!(
                "the O:{alias} of a pipe's security descriptor is not recorded: its owner \
                 stays the creating user"
            ));
            // What Wine does: the check sees the current user, and passes.
            let c = ClientOptions::new().current_user_only(true).open(&name);
            assert!(c.is_ok(), "{:?}", c.err());
            continue;
        }
        assert_eq!(recorded, sid, "the pipe's owner as recorded ({alias})");
        // Not the current user: refused, naming the owner found and the one expected.
        let e = ClientOptions::new()
            .current_user_only(true)
            .open(&name)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        let msg = e.to_string();
        assert!(msg.contains(sid) && msg.contains(&me), "{msg}");
        // The owner accepted by name, alone or among others.
        ClientOptions::new()
            .expect_owner(std::slice::from_ref(&owner))
            .open(&name)
            .unwrap();
        ClientOptions::new()
            .current_user_only(true)
            .expect_owner(&[PipeOwner::Sid(sid.into())])
            .open(&name)
            .unwrap();
        // The SDDL alias names the same SID.
        ClientOptions::new()
            .expect_owner(&[PipeOwner::Sid(alias.into())])
            .open(&name)
            .unwrap();
        // Another owner only: refused.
        let e = ClientOptions::new()
            .expect_owner(&[PipeOwner::Sid("S-1-5-19".into())])
            .open(&name)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        // No check: any owner.
        ClientOptions::new().open(&name).unwrap();
    }
}

#[test]
fn clients_accept_a_pipe_of_their_user() {
    let name = name();
    let _server = ServerOptions::new().max_instances(8).create(&name).unwrap();
    let others: Vec<_> = (0..3)
        .map(|_| ServerOptions::new().create(&name).unwrap())
        .collect();
    ClientOptions::new()
        .current_user_only(true)
        .open(&name)
        .unwrap();
    ClientOptions::new()
        .expect_owner(&[PipeOwner::CurrentUser])
        .open(&name)
        .unwrap();
    ClientOptions::new()
        .expect_owner(&[PipeOwner::Sid(my_sid())])
        .open(&name)
        .unwrap();
    // Refused: another owner than this user's pipe has.
    let e = ClientOptions::new()
        .expect_owner(&[PipeOwner::LocalSystem])
        .open(&name)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains(&my_sid()), "{e}");
    drop(others);
}

#[test]
fn a_bad_sid_is_invalid_input() {
    let name = name();
    let _server = ServerOptions::new().create(&name).unwrap();
    let e = ClientOptions::new()
        .expect_owner(&[PipeOwner::Sid("not a sid".into())])
        .open(&name)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

#[test]
fn clients_check_the_server_process() {
    let name = name();
    let _server = ServerOptions::new().max_instances(2).create(&name).unwrap();
    let _other = ServerOptions::new().create(&name).unwrap();
    let me = std::process::id();
    let e = ClientOptions::new()
        .expect_server_process_id(Some(me + 1))
        .open(&name)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains(&me.to_string()), "{e}");
    // The expected process: accepted (on the second instance).
    ClientOptions::new()
        .expect_server_process_id(Some(me))
        .open(&name)
        .unwrap();
}

/// Opens `name` for reading as the Anonymous account (the thread
/// impersonates the anonymous token meanwhile); `None` if the system cannot
/// impersonate it.
fn open_as_anonymous(name: &str) -> Option<std::io::Result<NamedPipe>> {
    // SAFETY: the pseudo handle of the calling thread; reverted below.
    if unsafe { ImpersonateAnonymousToken(GetCurrentThread()) } == 0 {
        println!(
            "ImpersonateAnonymousToken: {}",
            std::io::Error::last_os_error()
        );
        return None;
    }
    let r = ClientOptions::new().write(false).open(name);
    // SAFETY: no arguments; ends this thread's impersonation.
    assert_ne!(unsafe { RevertToSelf() }, 0, "RevertToSelf");
    Some(r)
}

#[test]
fn other_users_are_refused_at_open() {
    // Another principal than this user: the Anonymous account, which
    // Windows' default pipe DACL lets read and the current-user-only one
    // does not.
    let name = name();
    let _open = ServerOptions::new()
        .current_user_only(false)
        .max_instances(4)
        .create(&name)
        .unwrap();
    let mine = name_2();
    let _closed = ServerOptions::new().max_instances(4).create(&mine).unwrap();
    let (Some(default), Some(current)) = (open_as_anonymous(&name), open_as_anonymous(&mine))
    else {
        // Windows lets any thread impersonate the Anonymous account.
        assert!(
            wine_version().is_some(),
            "ImpersonateAnonymousToken failed on Windows"
        );
        wine_limitation("ImpersonateAnonymousToken fails: no other principal to open the pipe as");
        return;
    };
    match (&default, &current) {
        (_, Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
            // Windows' default DACL lets Anonymous read.
            assert!(default.is_ok(), "{:?}", default.as_ref().err());
        }
        (_, Ok(_)) if wine_version().is_some() => {
            wine_limitation("pipe DACLs are not checked at open: the Anonymous account opened a current-user-only pipe");
        }
        (_, Ok(_)) => panic!("the Anonymous account opened a current-user-only pipe"),
    }
}

/// A second unique name.
fn name_2() -> String {
    format!("{}-b", name())
}

#[test]
fn security_qos_flags_take_sqos_bits_only() {
    const SECURITY_IDENTIFICATION: u32 = 0x1_0000;
    const SECURITY_IMPERSONATION: u32 = 0x2_0000;
    const FILE_FLAG_WRITE_THROUGH: u32 = 0x8000_0000;
    let name = name();
    let _server = ServerOptions::new().max_instances(4).create(&name).unwrap();
    let _other = ServerOptions::new().create(&name).unwrap();
    // A file flag is no quality-of-service flag: refused before any open.
    let e = ClientOptions::new()
        .security_qos_flags(SECURITY_IDENTIFICATION | FILE_FLAG_WRITE_THROUGH)
        .open(&name)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("0x80010000"), "{e}");
    // A level alone (SECURITY_SQOS_PRESENT is added) opens.
    ClientOptions::new()
        .security_qos_flags(SECURITY_IMPERSONATION)
        .open(&name)
        .unwrap();
    ClientOptions::new()
        .security_qos_flags(SECURITY_IDENTIFICATION)
        .open(&name)
        .unwrap();
}

/// Disconnects the pipe behind `p` through another handle of it (a
/// duplicate), as another owner of the handle could.
fn disconnect_elsewhere(p: &NamedPipe) {
    use windows_sys::Win32::Foundation::{DuplicateHandle, DUPLICATE_SAME_ACCESS};
    use windows_sys::Win32::System::Pipes::DisconnectNamedPipe;
    let mut dup: HANDLE = ptr::null_mut();
    // SAFETY: a live handle of this process duplicated into it; `dup` is closed below.
    let ok = unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            p.as_raw_handle(),
            GetCurrentProcess(),
            &mut dup,
            0,
            0,
            DUPLICATE_SAME_ACCESS,
        )
    };
    assert_ne!(
        ok,
        0,
        "DuplicateHandle: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the duplicate just made, a server end.
    let ok = unsafe { DisconnectNamedPipe(dup) };
    assert_ne!(
        ok,
        0,
        "DisconnectNamedPipe: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: closed once.
    unsafe { CloseHandle(dup) };
}

#[test]
fn data_of_a_client_disconnected_elsewhere_is_not_handed_to_the_next() {
    use std::io::{Read, Write};
    let mut l = Looper::new();
    let name = name();
    let server = ServerOptions::new().create(&name).unwrap();
    l.add(&server);
    let old = ClientOptions::new().open(&name).unwrap();
    l.add(&old);
    l.connect(&server);
    l.write_all(&old, b"secret of the old client");
    l.flush(&old);
    // The server reads it ahead; its user does not read it.
    for _ in 0..3 {
        l.turn(std::time::Duration::from_millis(50));
    }
    disconnect_elsewhere(&server);
    drop(old);
    // The server's next write finds the pipe listening.
    match (&server).write(b"to whom?") {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        // Wine's known answer: ERROR_PIPE_NOT_CONNECTED (233).
        Err(other) if wine_version().is_some() && format!("{other:?}").contains("code: 233") => {
            wine_limitation(&format!(
                "a write on a pipe disconnected through another handle gives {other:?}, \
                 not ERROR_PIPE_LISTENING"
            ));
            return;
        }
        other => panic!("a write after an outside disconnect: {other:?}"),
    }
    let mut buf = [0u8; 64];
    match (&server).read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the old client's data after the reset: {other:?}"),
    }
    let new = ClientOptions::new().open(&name).unwrap();
    l.add(&new);
    l.connect(&server);
    l.write_all(&new, b"new");
    assert_eq!(
        l.read_exact(&server, 3),
        b"new",
        "the new client's data first"
    );
}

#[test]
fn a_listener_that_lost_every_instance_creates_a_first_instance_again() {
    let mut l = Looper::new();
    let name = name();
    // One instance at most: handing it out leaves the listener none (its
    // replacement fails with ERROR_PIPE_BUSY).
    let listener = ServerOptions::new()
        .max_instances(1)
        .listen(&name, 1)
        .unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    let accepted = l.until("accept", || match listener.accept() {
        Ok(p) => Some(p),
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(e) => panic!("accept: {e}"),
    });
    drop((accepted, client));
    // Every instance of the listener is gone, and so is the name: another
    // process takes it.
    let squatter = ServerOptions::new()
        .current_user_only(false)
        .create(&name)
        .unwrap();
    let _squatter_client = ClientOptions::new().open(&name).unwrap();
    // The listener's next instance is a first instance: refused, since
    // the name exists, rather than joining the squatter's pipe.
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock && wine_version().is_some() => {
            wine_limitation(
                "FILE_FLAG_FIRST_PIPE_INSTANCE is not enforced: the listener's re-created \
                 instance joined the name another server had taken",
            );
        }
        other => panic!(
            "a listener re-creating a name another server took: {:?}",
            other.map(|_| "a pipe")
        ),
    }
    drop(squatter);
}

/// A security descriptor from SDDL, allocated by the system (leaked: tests only).
fn raw_descriptor(sddl: &str) -> PSECURITY_DESCRIPTOR {
    use windows_sys::Win32::Security::Authorization::ConvertStringSecurityDescriptorToSecurityDescriptorW;
    let w: Vec<u16> = sddl.encode_utf16().chain(Some(0)).collect();
    let mut sd = ptr::null_mut();
    // SAFETY: a NUL-terminated string; `sd` receives an allocation we never free.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            w.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            ptr::null_mut(),
        )
    };
    assert_ne!(ok, 0, "{sddl}: {}", std::io::Error::last_os_error());
    sd
}

/// `SetSecurityInfo` of the DACL of `sddl` on `h`: the Win32 error, 0 for success.
fn set_dacl(h: RawHandle, sddl: &str) -> u32 {
    use windows_sys::Win32::Security::Authorization::SetSecurityInfo;
    use windows_sys::Win32::Security::GetSecurityDescriptorDacl;
    let sd = raw_descriptor(sddl);
    let (mut present, mut defaulted, mut dacl) = (0, 0, ptr::null_mut());
    // SAFETY: a valid descriptor; out-pointers valid.
    assert_ne!(
        unsafe { GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) },
        0
    );
    // SAFETY: a live handle; `dacl` points into `sd`, alive.
    unsafe {
        SetSecurityInfo(
            h,
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            dacl,
            ptr::null(),
        )
    }
}

#[test]
fn write_dac_lets_the_server_change_the_dacl() {
    const ERROR_ACCESS_DENIED: u32 = 5;
    let new_dacl = "D:P(A;;GA;;;SY)(A;;GA;;;OW)(A;;0x0012019b;;;AU)";
    let server = ServerOptions::new().write_dac(true).create(name()).unwrap();
    assert_eq!(
        set_dacl(server.as_raw_handle(), new_dacl),
        0,
        "with WRITE_DAC"
    );
    let (_, _, aces) = parse(&sddl_of(server.as_raw_handle()));
    assert!(aces.iter().any(|a| a.ends_with(";;;AU")), "{aces:?}");
    // Without it the handle may not (the creator is the owner, but the
    // handle was not opened for it).
    let plain = ServerOptions::new().create(name()).unwrap();
    match set_dacl(plain.as_raw_handle(), new_dacl) {
        ERROR_ACCESS_DENIED => {}
        0 if wine_version().is_some() => {
            wine_limitation("a pipe handle without WRITE_DAC may change the pipe's DACL");
        }
        e => panic!("SetSecurityInfo without WRITE_DAC: error {e}"),
    }
    // The other two flags create (ACCESS_SYSTEM_SECURITY only with
    // SeSecurityPrivilege: ERROR_PRIVILEGE_NOT_HELD otherwise).
    ServerOptions::new()
        .write_owner(true)
        .create(name())
        .unwrap();
    match ServerOptions::new()
        .access_system_security(true)
        .create(name())
    {
        Ok(_) => {}
        Err(e) => assert_eq!(e.raw_os_error(), Some(1314), "{e}"),
    }
}

/// Whether `h` is inheritable (`GetHandleInformation`).
fn inheritable(h: RawHandle) -> bool {
    use windows_sys::Win32::Foundation::{GetHandleInformation, HANDLE_FLAG_INHERIT};
    let mut flags = 0;
    // SAFETY: a live handle; a valid out-pointer.
    assert_ne!(unsafe { GetHandleInformation(h, &mut flags) }, 0);
    flags & HANDLE_FLAG_INHERIT != 0
}

#[test]
fn raw_security_attributes_are_used_as_given() {
    use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
    let name = name();
    let mut attrs = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: raw_descriptor("D:P(A;;GA;;;WD)"),
        bInheritHandle: 1,
    };
    let mut options = ServerOptions::new();
    options.max_instances(4);
    // SAFETY: `attrs` is valid for the call.
    let server = unsafe {
        options.create_with_security_attributes_raw(
            &name,
            (&mut attrs as *mut SECURITY_ATTRIBUTES).cast(),
        )
    }
    .unwrap();
    let (_, flags, aces) = parse(&sddl_of(server.as_raw_handle()));
    assert_eq!((flags.as_str(), aces.len()), ("P", 1), "{aces:?}");
    assert!(
        aces[0].ends_with(";;;WD"),
        "the given descriptor, not current-user-only"
    );
    assert!(inheritable(server.as_raw_handle()), "bInheritHandle");
    // Null: the same as `create`, current-user-only.
    // SAFETY: null is allowed.
    let plain = unsafe {
        ServerOptions::new().create_with_security_attributes_raw(name_2(), ptr::null_mut())
    }
    .unwrap();
    assert_current_user_only(plain.as_raw_handle(), "null attributes");
    assert!(!inheritable(plain.as_raw_handle()));
    // Clients: inheritable as asked (a second instance for the second one).
    let _second = options.create(&name).unwrap();
    // SAFETY: `attrs` is valid for the call.
    let client = unsafe {
        ClientOptions::new().open_with_security_attributes_raw(
            &name,
            (&mut attrs as *mut SECURITY_ATTRIBUTES).cast(),
        )
    }
    .unwrap();
    assert!(inheritable(client.as_raw_handle()));
    // SAFETY: null is allowed.
    let client =
        unsafe { ClientOptions::new().open_with_security_attributes_raw(&name, ptr::null_mut()) }
            .unwrap();
    assert!(!inheritable(client.as_raw_handle()));
}
