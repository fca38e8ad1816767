//! The check of a pipe name, before any Win32 call sees it.
//!
//! A named pipe lives under `\\.\pipe\` (this machine) or
//! `\\server\pipe\` (another one); any other name reaches the file
//! system and fails with a bare OS error (`ERROR_INVALID_NAME`, or a file
//! of that name opened as if it were a pipe). The check works on UTF-16,
//! what the Win32 calls take, so it runs in native tests too.

/// What a pipe name must look like, for the error message.
pub(crate) const EXPECTED: &str = r"a pipe name has the form \\.\pipe\<name> (or \\<server>\pipe\<name> for another machine's pipe)";

/// Whether `name` (UTF-16, without its NUL) names a pipe: two separators,
/// a server (`.` for this machine), a separator, `pipe` (any case), a
/// separator, and a name that is not empty. `\` and `/` both separate, as
/// they do for Win32.
pub(crate) fn is_pipe_name(name: &[u16]) -> bool {
    let sep = |c: u16| c == u16::from(b'\\') || c == u16::from(b'/');
    let [a, b, rest @ ..] = name else {
        return false;
    };
    if !sep(*a) || !sep(*b) {
        return false;
    }
    let Some(end) = rest.iter().position(|&c| sep(c)) else {
        return false;
    };
    let (server, rest) = (&rest[..end], &rest[end + 1..]);
    let pipe: Vec<u16> = "pipe".encode_utf16().collect();
    let Some(word) = rest.get(..pipe.len()) else {
        return false;
    };
    let lower = |c: u16| {
        if (u16::from(b'A')..=u16::from(b'Z')).contains(&c) {
            c + 32
        } else {
            c
        }
    };
    !server.is_empty()
        && word.iter().map(|&c| lower(c)).eq(pipe.iter().copied())
        && rest.get(pipe.len()).is_some_and(|&c| sep(c))
        && rest.len() > pipe.len() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        is_pipe_name(&s.encode_utf16().collect::<Vec<_>>())
    }

    #[test]
    fn local_and_remote_pipe_names_pass() {
        assert!(ok(r"\\.\pipe\a"));
        assert!(ok(r"\\.\pipe\mio-named-pipes-1234\sub\dirs"));
        assert!(ok(r"\\.\PIPE\Upper"));
        assert!(ok(r"\\server\pipe\name"));
        assert!(ok(r"\\?\pipe\name"));
        assert!(ok("//./pipe/forward"));
        assert!(ok(r"\\.\pipe\ünïcødé ✓"));
    }

    #[test]
    fn names_without_the_prefix_fail() {
        for bad in [
            "",
            "name",
            r"pipe\name",
            r"\pipe\name",
            r"\\.\name",
            r"\\.\pipe",
            r"\\.\pipe\",
            r"\\\pipe\name",
            r"\\.\pipes\name",
            r"\\.\pip\name",
            r"C:\pipe\name",
            r"\\.\C:\pipe\name",
            r".\pipe\name",
        ] {
            assert!(!ok(bad), "{bad:?} passed");
        }
    }
}
