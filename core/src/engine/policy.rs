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

#[cfg(test)]
mod tests {
    use super::*;

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
