//! Security decisions, as plain Rust: whether a client may use the pipe it
//! opened (its owner, its server's process id). The Win32 layer finds the
//! facts (`sys/security.rs`, `sys/client.rs`); these functions judge them.

/// Whether a pipe owned by `found` (a SID string) may be used when its owner
/// must be one of `allowed` (canonical SID strings); an empty list checks
/// nothing. The error is the message of the `PermissionDenied` the open fails with.
pub(crate) fn check_owner(found: &str, allowed: &[String]) -> Result<(), String> {
    if allowed.is_empty() || allowed.iter().any(|a| a.eq_ignore_ascii_case(found)) {
        return Ok(());
    }
    Err(format!(
        "the pipe is owned by {found}, which is not one of the owners the client accepts ({}); \
         another user may have created this pipe name",
        allowed.join(", ")
    ))
}

/// Whether a pipe served by process `found` may be used when the client
/// expects process `expected` (`None`: any).
pub(crate) fn check_server_process(found: u32, expected: Option<u32>) -> Result<(), String> {
    match expected {
        Some(pid) if pid != found => Err(format!(
            "the pipe is served by process {found}, not by the expected process {pid}"
        )),
        _ => Ok(()),
    }
}

/// `SECURITY_SQOS_PRESENT`: the `SECURITY_*` bits of `CreateFileW`'s flags
/// mean something only with it.
pub(crate) const SECURITY_SQOS_PRESENT: u32 = 0x0010_0000;
/// Every security quality-of-service bit (`SECURITY_VALID_SQOS_FLAGS`):
/// the impersonation level (`SECURITY_ANONYMOUS` 0, `SECURITY_IDENTIFICATION`
/// 0x10000, `SECURITY_IMPERSONATION` 0x20000, `SECURITY_DELEGATION`
/// 0x30000), `SECURITY_CONTEXT_TRACKING` 0x40000,
/// `SECURITY_EFFECTIVE_ONLY` 0x80000 and `SECURITY_SQOS_PRESENT`.
pub(crate) const SECURITY_VALID_SQOS_FLAGS: u32 = 0x001F_0000;

/// The flags a client gives `CreateFileW` for the quality of service the
/// user asked: `SECURITY_SQOS_PRESENT` or'ed in (without it Windows ignores
/// the level, and the server may impersonate the client fully). Any other
/// bit (a file flag or attribute) is refused: the error is the message of
/// the `InvalidInput` the open fails with.
pub(crate) fn sqos_flags(flags: u32) -> Result<u32, String> {
    let stray = flags & !SECURITY_VALID_SQOS_FLAGS;
    if stray != 0 {
        return Err(format!(
            "security_qos_flags takes SECURITY_* quality-of-service flags only \
             (within {SECURITY_VALID_SQOS_FLAGS:#x}), not {flags:#x} (bits {stray:#x})"
        ));
    }
    Ok(flags | SECURITY_SQOS_PRESENT)
}

/// What a thread does once its impersonation ended, by the outcome of
/// `RevertToSelf`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterRevert {
    /// Back to the process's identity: go on.
    Continue,
    /// Still the client, as far as anyone knows: the process must not run
    /// one more instruction as that client (Microsoft's `RevertToSelf`
    /// documentation: shut the process down). The message says why.
    Abort(String),
}

/// Decides what follows `RevertToSelf`: going on when it succeeded,
/// aborting the process when it failed (the thread may still act as the
/// client, and whatever runs next on it would).
pub(crate) fn after_revert<E: std::fmt::Display>(revert: Result<(), E>) -> AfterRevert {
    match revert {
        Ok(()) => AfterRevert::Continue,
        Err(e) => AfterRevert::Abort(format!(
            "RevertToSelf failed ({e}) while ending a named pipe client's impersonation: \
             the thread may still act as the client; aborting the process"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RevertToSelf cannot be made to fail under Wine (nor, on purpose, on
    // Windows): the decision is tested here, the drop that carries it out
    // (`ImpersonationGuard`) calls `std::process::abort` on `Abort`.
    #[test]
    fn a_failed_revert_aborts_the_process() {
        assert_eq!(after_revert::<String>(Ok(())), AfterRevert::Continue);
        match after_revert(Err("Access is denied. (os error 5)")) {
            AfterRevert::Abort(why) => {
                assert!(
                    why.contains("RevertToSelf failed (Access is denied. (os error 5))"),
                    "{why}"
                );
                assert!(why.contains("aborting"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sqos_flags_always_have_sqos_present_and_nothing_else() {
        const IDENTIFICATION: u32 = 0x1_0000;
        const IMPERSONATION: u32 = 0x2_0000;
        const DELEGATION: u32 = 0x3_0000;
        const CONTEXT_TRACKING: u32 = 0x4_0000;
        const EFFECTIVE_ONLY: u32 = 0x8_0000;
        // The level alone, as tokio's users write it: the flag is added.
        assert_eq!(
            sqos_flags(IDENTIFICATION),
            Ok(SECURITY_SQOS_PRESENT | IDENTIFICATION)
        );
        assert_eq!(sqos_flags(0), Ok(SECURITY_SQOS_PRESENT), "anonymous");
        assert_eq!(
            sqos_flags(SECURITY_SQOS_PRESENT | IMPERSONATION),
            Ok(SECURITY_SQOS_PRESENT | IMPERSONATION)
        );
        let all = DELEGATION | CONTEXT_TRACKING | EFFECTIVE_ONLY;
        assert_eq!(sqos_flags(all), Ok(all | SECURITY_SQOS_PRESENT));
        // File flags and attributes are no SQOS flags.
        for bad in [
            0x4000_0000,
            0x8000_0000,
            0x1,
            0x0020_0000,
            IDENTIFICATION | 0x80,
        ] {
            let e = sqos_flags(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:#x}")), "{e}");
        }
    }

    const ME: &str = "S-1-5-21-1-2-3-1000";

    #[test]
    fn an_empty_owner_list_checks_nothing() {
        assert_eq!(check_owner("S-1-5-18", &[]), Ok(()));
    }

    #[test]
    fn the_owner_must_be_one_of_the_list() {
        let allowed = vec![ME.to_string(), "S-1-5-18".to_string()];
        assert_eq!(check_owner(ME, &allowed), Ok(()));
        assert_eq!(check_owner("S-1-5-18", &allowed), Ok(()));
        // SID strings compare without regard to case ("s-1-5-18").
        assert_eq!(check_owner("s-1-5-18", &allowed), Ok(()));
        let e = check_owner("S-1-5-32-544", &allowed).unwrap_err();
        // The message names what was found and what was expected.
        assert!(e.contains("owned by S-1-5-32-544"), "{e}");
        assert!(e.contains(ME) && e.contains("S-1-5-18"), "{e}");
        // A prefix of an allowed SID is another SID.
        assert!(check_owner("S-1-5-21-1-2-3-100", &allowed).is_err());
    }

    #[test]
    fn the_server_process_must_be_the_expected_one() {
        assert_eq!(check_server_process(42, None), Ok(()));
        assert_eq!(check_server_process(42, Some(42)), Ok(()));
        let e = check_server_process(42, Some(7)).unwrap_err();
        assert!(e.contains("process 42") && e.contains("process 7"), "{e}");
    }
}
