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
    assert_eq!(owner, me, "{what}: owner of {sddl}");
    assert_eq!(flags, "P", "{what}: a protected DACL: {sddl}");
    // Windows maps GENERIC_ALL to the pipe's FILE_ALL_ACCESS (FA) when it
    // stores the DACL; Wine may keep GENERIC_ALL (GA). Either way: full
    // control, allow, no inheritance flags, and nothing else.
    assert_eq!(aces.len(), 2, "{what}: exactly two ACEs: {sddl}");
    let full = |ace: &String, sid: &str| {
        ace == &format!("A;;FA;;;{sid}") || ace == &format!("A;;GA;;;{sid}")
    };
    assert!(
        full(&aces[0], &me),
        "{what}: first ACE is the user's: {sddl}"
    );
    assert!(
        full(&aces[1], "SY"),
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
        if recorded == me {
            wine_limitation(&format!(
                "the O:{alias} of a pipe's security descriptor is not recorded: its owner \
                 stays the creating user"
            ));
            // What Wine does: the check sees the current user, and passes.
            let c = ClientOptions::new().current_user_only(true).open(&name);
            assert!(c.is_ok(), "{:?}", c.err());
            continue;
        }
        assert_eq!(recorded, alias, "the pipe's owner as recorded");
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
