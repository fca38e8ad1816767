//! The command lines of `unix-listen` (Linux) and `mux-serve` (the Windows
//! side it starts). The options of a pipe client (`-p`, `--busy-timeout`,
//! the end-of-stream options) are `connect`'s, parsed by `cli` and passed
//! on to the Windows side as given.

use crate::cli::{self, Eof, Mode, Open, StdinEof, Usage};

/// `pipe-relay mux-serve PIPE [connect's options]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeArgs {
    /// The pipe each connection opens.
    pub pipe: String,
    /// How to open it.
    pub open: Open,
    /// What the end of each direction does.
    pub eof: Eof,
    /// Log to stderr.
    pub verbose: bool,
}

/// `pipe-relay unix-listen SOCKET PIPE [options]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixArgs {
    /// The Unix socket's path.
    pub socket: String,
    /// The pipe's name, as `connect` checked it.
    pub pipe: String,
    /// The command that runs the Windows side, if given (`--windows-relay`).
    pub windows_relay: Option<Vec<String>>,
    /// The socket file's mode.
    pub mode: u32,
    /// The most connections at once.
    pub max_conns: usize,
    /// Log to stderr (and pass `-v` on).
    pub verbose: bool,
    /// The arguments of `mux-serve` after the subcommand: the pipe and the
    /// client options.
    pub serve_args: Vec<String>,
}

/// One of the two subcommands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MuxMode {
    /// The Windows side.
    Serve(ServeArgs),
    /// The Linux side.
    Unix(UnixArgs),
}

/// The help of `unix-listen` (`mux-serve`, its Windows side, is not for users).
pub const HELP: &str = r"
From Linux (WSL): one command, one Windows process for every connection:
  pipe-relay [-v] unix-listen SOCKET PIPE [OPTIONS]
                            listen on the Unix socket SOCKET; every connection <-> a new
                            client of PIPE, all through one pipe-relay.exe on the Windows side
  --windows-relay CMD       how to run the Windows side (default: pipe-relay.exe next to
                            this program, else on PATH; or the PIPE_RELAY_WINDOWS variable),
                            e.g. --windows-relay 'wine /opt/pipe-relay.exe'
  --mode OCTAL              the socket file's permissions (default 600)
  --max-connections N       connections at once (default 1024)
  and connect's options, for each connection: -p, --busy-timeout, --expect-owner,
  --any-owner, --idle-timeout, --stdin-eof (default here: message: the client's
  half-close is a zero-byte message), --pipe-eof.
";

/// The environment variable that names the Windows side's command, as
/// `--windows-relay` does.
#[cfg_attr(not(unix), allow(dead_code))]
pub const WINDOWS_RELAY_ENV: &str = "PIPE_RELAY_WINDOWS";

/// Whether the command line is one of these subcommands (its first word
/// that is not `-v`).
pub fn is_mux(args: &[String]) -> bool {
    matches!(
        args.iter()
            .find(|a| !matches!(a.as_str(), "-v" | "--verbose"))
            .map(String::as_str),
        Some("mux-serve" | "unix-listen")
    )
}

fn usage(m: impl Into<String>) -> Usage {
    Usage(m.into())
}

/// Parses a command line for which [`is_mux`] holds.
pub fn parse(args: &[String]) -> Result<MuxMode, Usage> {
    let mut verbose = false;
    let mut rest = Vec::new();
    let mut sub = None;
    let mut windows_relay = None;
    let mut mode = 0o600;
    let mut max_conns = super::MAX_CONNS;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match a.as_str() {
            "-v" | "--verbose" => verbose = true,
            "mux-serve" | "unix-listen" if sub.is_none() => sub = Some(a.clone()),
            "--windows-relay" => {
                let v = value(a)?;
                let words: Vec<String> = v.split_whitespace().map(str::to_string).collect();
                if words.is_empty() {
                    return Err(usage("--windows-relay needs a command"));
                }
                windows_relay = Some(words);
            }
            "--mode" => {
                let v = value(a)?;
                mode = u32::from_str_radix(&v, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| {
                        usage(format!(
                            "--mode takes octal permissions like 600 or 660, not `{v}`"
                        ))
                    })?;
            }
            "--max-connections" => {
                let v = value(a)?;
                max_conns = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=super::MAX_CONNS).contains(n))
                    .ok_or_else(|| {
                        usage(format!(
                            "--max-connections takes a number from 1 to {}, not `{v}`",
                            super::MAX_CONNS
                        ))
                    })?;
            }
            _ => rest.push(a.clone()),
        }
    }
    let sub = sub.ok_or_else(|| usage("give mux-serve or unix-listen"))?;
    let unix_only = windows_relay.is_some() || mode != 0o600 || max_conns != super::MAX_CONNS;
    if sub == "mux-serve" {
        if unix_only {
            return Err(usage(
                "--windows-relay, --mode and --max-connections are for unix-listen",
            ));
        }
        let (pipe, open, eof) = client(rest)?;
        return Ok(MuxMode::Serve(ServeArgs {
            pipe,
            open,
            eof,
            verbose,
        }));
    }
    if rest.is_empty() || rest[0].starts_with('-') {
        return Err(usage(
            "unix-listen needs a socket path and a pipe name: unix-listen /path/to/socket //./pipe/NAME",
        ));
    }
    let socket = rest.remove(0);
    if rest.is_empty() {
        return Err(usage("give a pipe name, like //./pipe/docker_engine"));
    }
    // A client's half-close is a zero-byte message unless told otherwise
    // (what Docker's attach and exec expect; connect's default is keep).
    if !rest
        .iter()
        .any(|a| matches!(a.as_str(), "-s" | "-ei" | "--stdin-eof"))
    {
        rest.push("-s".into());
    }
    let (pipe, _, _) = client(rest.clone())?;
    Ok(MuxMode::Unix(UnixArgs {
        socket,
        pipe,
        windows_relay,
        mode,
        max_conns,
        verbose,
        serve_args: rest,
    }))
}

/// The pipe and the client options, as `connect` reads them.
fn client(rest: Vec<String>) -> Result<(String, Open, Eof), Usage> {
    if rest.is_empty() {
        return Err(usage("give a pipe name, like //./pipe/docker_engine"));
    }
    let args = std::iter::once("connect".to_string()).chain(rest);
    match cli::parse(args)?.mode {
        Mode::Connect { pipe, open, eof } => Ok((pipe, open, eof)),
        _ => Err(usage("give a pipe name and the options of connect")),
    }
}

/// What the end of the client's sending direction does, in words, for `-v`.
#[cfg_attr(not(windows), allow(dead_code))]
pub fn stdin_eof_words(e: StdinEof) -> &'static str {
    match e {
        StdinEof::Keep => "nothing",
        StdinEof::ZeroMessage => "a zero-byte message",
        StdinEof::Close => "closing the pipe",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<MuxMode, Usage> {
        let v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        assert!(is_mux(&v) || v.is_empty());
        parse(&v)
    }

    #[test]
    fn unix_listen_takes_its_options_and_passes_the_clients_on() {
        let MuxMode::Unix(u) = p(&[
            "-v",
            "unix-listen",
            "/run/x.sock",
            "//./pipe/docker_engine",
            "--busy-timeout",
            "2",
            "--windows-relay",
            "wine /w/pipe-relay.exe",
            "--mode",
            "660",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(u.socket, "/run/x.sock");
        assert_eq!(u.pipe, r"\\.\pipe\docker_engine");
        assert_eq!(
            u.windows_relay,
            Some(vec!["wine".into(), "/w/pipe-relay.exe".into()])
        );
        assert_eq!(u.mode, 0o660);
        assert!(u.verbose);
        assert_eq!(
            u.serve_args,
            ["//./pipe/docker_engine", "--busy-timeout", "2", "-s"]
        );
        let MuxMode::Unix(u) = p(&["unix-listen", "/s", r"\\.\pipe\a"]).unwrap() else {
            panic!()
        };
        assert_eq!((u.mode, u.max_conns, u.windows_relay), (0o600, MAX, None));
    }
    const MAX: usize = super::super::MAX_CONNS;

    #[test]
    fn mux_serve_reads_connects_options() {
        let MuxMode::Serve(s) = p(&["mux-serve", "//./pipe/x", "-s", "-p"]).unwrap() else {
            panic!()
        };
        assert_eq!(s.pipe, r"\\.\pipe\x");
        assert!(s.open.wait_for_pipe);
        assert_eq!(s.eof.stdin, StdinEof::ZeroMessage);
        assert!(!is_mux(&["connect".to_string(), "mux-serve".to_string()]));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        for (a, says) in [
            (&["unix-listen"][..], "needs a socket path"),
            (&["unix-listen", "/s"][..], "give a pipe name"),
            (&["unix-listen", "/s", "C:\\x"][..], "is not a pipe name"),
            (
                &["unix-listen", "/s", "//./pipe/x", "--mode", "999"][..],
                "--mode takes",
            ),
            (
                &["unix-listen", "/s", "//./pipe/x", "--mode"][..],
                "needs a value",
            ),
            (
                &["unix-listen", "/s", "//./pipe/x", "--windows-relay", " "][..],
                "needs a command",
            ),
            (
                &["unix-listen", "/s", "//./pipe/x", "--max-connections", "0"][..],
                "--max-connections takes",
            ),
            (
                &["unix-listen", "/s", "//./pipe/x", "--instances", "2"][..],
                "for listen mode",
            ),
            (
                &["mux-serve", "//./pipe/x", "--mode", "644"][..],
                "are for unix-listen",
            ),
            (
                &["mux-serve", "//./pipe/x", "//./pipe/y"][..],
                "unexpected argument",
            ),
        ] {
            let e = p(a).unwrap_err();
            assert!(e.0.contains(says), "{a:?}: {e}");
        }
    }
}
