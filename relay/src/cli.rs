//! The command line: what to relay, where, and what ends a connection.
//! Plain Rust, so that it is tested natively.

use std::fmt;
use std::time::Duration;

/// What the relay does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Relay this process's stdin and stdout to a pipe.
    Connect {
        /// The pipe's name, `\\.\pipe\NAME`.
        pipe: String,
        /// How to open it.
        open: Open,
        /// What ends the relay.
        eof: Eof,
    },
    /// Serve a pipe name; relay each client to `to`.
    Listen {
        /// The pipe's name.
        pipe: String,
        /// How to create its instances.
        serve: Serve,
        /// Where each client goes.
        to: Target,
    },
    /// Listen on a TCP address; relay each connection to a new client of a pipe.
    TcpListen {
        /// The TCP address, `HOST:PORT`.
        addr: String,
        /// The pipe's name.
        pipe: String,
        /// How to open it.
        open: Open,
    },
    /// Print the usage and exit.
    Help,
    /// Print the version and exit.
    Version,
}

/// How a client opens the pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// Wait for a pipe that does not exist yet.
    pub wait_for_pipe: bool,
    /// How long to wait while every instance is busy.
    pub busy_timeout: Duration,
}

/// How a server creates its instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serve {
    /// How many instances wait for clients.
    pub instances: usize,
    /// A security descriptor, as SDDL.
    pub sddl: Option<String>,
    /// Let clients on other machines in.
    pub allow_remote: bool,
    /// Message pipes: each chunk from the other side is one message.
    pub message: bool,
}

/// Where a listening relay sends each client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A new child process per client: the client talks to its stdin and stdout.
    Exec(Vec<String>),
    /// A new TCP connection per client.
    Tcp(String),
    /// This process's stdin and stdout, one client at a time.
    Stdio,
}

/// What ends a relay between stdio and a pipe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Eof {
    /// On the end of stdin.
    pub stdin: StdinEof,
    /// On the pipe's end of stream.
    pub pipe: PipeEof,
}

/// What the end of stdin does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StdinEof {
    /// Keep relaying the pipe to stdout until it ends (a pipe has no half-close).
    #[default]
    Keep,
    /// Send a zero-byte message (the end of a request, to some servers), then keep.
    ZeroMessage,
    /// Write what is pending to the pipe, close it and exit.
    Close,
}

/// What the pipe's end of stream does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PipeEof {
    /// Exit once stdout has everything.
    #[default]
    Exit,
    /// Keep reading stdin to its end (discarding it), then exit.
    DrainStdin,
}

/// The default time to wait while every instance of a pipe is busy.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// The default number of instances a listening relay keeps waiting.
pub const DEFAULT_INSTANCES: usize = 4;

/// Options and mode, as parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// Log connections to stderr.
    pub verbose: bool,
    /// What to do.
    pub mode: Mode,
}

/// A command line that cannot be run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(msg: impl Into<String>) -> Usage {
    Usage(msg.into())
}

/// The help text.
pub const HELP: &str = r"pipe-relay: relays Windows named pipes to stdio, TCP and child processes, and back

Usage:
  pipe-relay [-v] [connect] PIPE [OPTIONS]     stdin/stdout <-> the pipe PIPE
  pipe-relay [-v] listen PIPE [OPTIONS] (--exec PROGRAM [ARG...] | --tcp HOST:PORT | --stdio)
                                               serve PIPE; each client <-> a new PROGRAM's
                                               stdin/stdout, a new TCP connection, or
                                               (one client at a time) stdin/stdout
  pipe-relay [-v] tcp-listen HOST:PORT PIPE [OPTIONS]
                                               each TCP connection <-> a new client of PIPE

PIPE is \\.\pipe\NAME (or //./pipe/NAME).

Opening a pipe (connect, tcp-listen):
  -p, --wait-for-pipe       wait for a pipe that does not exist yet
  --busy-timeout SECS       wait at most SECS while every instance is busy (default 30; 0: not at all)
End of stream (connect):
  --stdin-eof keep          on the end of stdin, keep relaying the pipe to stdout (default)
  --stdin-eof message, -s   ... send a zero-byte message, then keep relaying
  --stdin-eof close, -ei    ... write what is pending, close the pipe and exit
  --pipe-eof exit, -ep      on the pipe's end, exit once stdout has everything (default)
  --pipe-eof drain          ... keep reading stdin to its end first
Serving (listen):
  --instances N             instances waiting for clients (default 4)
  --sddl SDDL               security descriptor of the pipe (default: the system's)
  --allow-remote            accept clients from other machines (default: rejected)
  --message                 message pipes: each chunk read from the other side is one message
Other:
  -v, --verbose             log connections to stderr
  -h, --help                this text
  -V, --version             the version

Exit codes: 0 done, 1 the relay failed, 2 bad command line (option, address, SDDL),
3 no such pipe, 4 every instance stayed busy, 5 access denied (listen: or the name is taken).
";

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, Usage> {
    let mut args = args.into_iter().peekable();
    let mut verbose = false;
    let mut positional: Vec<String> = Vec::new();
    let mut open = Open {
        wait_for_pipe: false,
        busy_timeout: DEFAULT_BUSY_TIMEOUT,
    };
    let mut eof = Eof::default();
    let mut serve = Serve {
        instances: DEFAULT_INSTANCES,
        sddl: None,
        allow_remote: false,
        message: false,
    };
    let mut target: Option<Target> = None;
    let mut seen_connect_only = None;
    let mut seen_listen_only = None;

    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                return Ok(Args {
                    verbose,
                    mode: Mode::Help,
                })
            }
            "-V" | "--version" => {
                return Ok(Args {
                    verbose,
                    mode: Mode::Version,
                })
            }
            "-v" | "--verbose" => verbose = true,
            "-p" | "--wait-for-pipe" => open.wait_for_pipe = true,
            "--busy-timeout" => {
                let v = value(&arg)?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= 1e9)
                    .ok_or_else(|| {
                        usage(format!(
                            "--busy-timeout takes seconds (like 30 or 0.5), not `{v}`"
                        ))
                    })?;
                open.busy_timeout = Duration::from_secs_f64(secs);
            }
            "-s" => {
                // As in npiperelay, -ei wins over -s, in either order.
                if eof.stdin != StdinEof::Close {
                    eof.stdin = StdinEof::ZeroMessage;
                }
                seen_connect_only.get_or_insert(arg);
            }
            "-ei" => {
                eof.stdin = StdinEof::Close;
                seen_connect_only.get_or_insert(arg);
            }
            "-ep" => {
                eof.pipe = PipeEof::Exit;
                seen_connect_only.get_or_insert(arg);
            }
            "--stdin-eof" => {
                let v = value(&arg)?;
                eof.stdin = match v.as_str() {
                    "keep" => StdinEof::Keep,
                    "message" => StdinEof::ZeroMessage,
                    "close" => StdinEof::Close,
                    _ => {
                        return Err(usage(format!(
                            "--stdin-eof is keep, message or close, not `{v}`"
                        )))
                    }
                };
                seen_connect_only.get_or_insert(arg);
            }
            "--pipe-eof" => {
                let v = value(&arg)?;
                eof.pipe = match v.as_str() {
                    "exit" => PipeEof::Exit,
                    "drain" => PipeEof::DrainStdin,
                    _ => return Err(usage(format!("--pipe-eof is exit or drain, not `{v}`"))),
                };
                seen_connect_only.get_or_insert(arg);
            }
            "--instances" => {
                let v = value(&arg)?;
                serve.instances = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=254).contains(n))
                    .ok_or_else(|| {
                        usage(format!(
                            "--instances takes a number from 1 to 254, not `{v}`"
                        ))
                    })?;
                seen_listen_only.get_or_insert(arg);
            }
            "--sddl" => {
                serve.sddl = Some(value(&arg)?);
                seen_listen_only.get_or_insert(arg);
            }
            "--allow-remote" => {
                serve.allow_remote = true;
                seen_listen_only.get_or_insert(arg);
            }
            "--message" => {
                serve.message = true;
                seen_listen_only.get_or_insert(arg);
            }
            "--tcp" => {
                set_target(&mut target, Target::Tcp(value(&arg)?))?;
            }
            "--stdio" => set_target(&mut target, Target::Stdio)?,
            "--exec" => {
                let program: Vec<String> = args.by_ref().collect();
                if program.is_empty() {
                    return Err(usage("--exec needs a program to run"));
                }
                set_target(&mut target, Target::Exec(program))?;
            }
            "--" => positional.extend(args.by_ref()),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(usage(format!("unknown option `{s}` (see --help)")))
            }
            _ => positional.push(arg),
        }
    }

    let mut positional = positional.into_iter();
    let first = positional
        .next()
        .ok_or_else(|| usage("nothing to do: give a pipe name (see --help)"))?;
    let mode = match first.as_str() {
        "listen" => {
            let pipe = pipe_name(positional.next(), "listen")?;
            let to = target.take().ok_or_else(|| {
                usage("listen needs where each client goes: --exec PROGRAM, --tcp HOST:PORT or --stdio")
            })?;
            Mode::Listen { pipe, serve, to }
        }
        "tcp-listen" => {
            let addr = positional
                .next()
                .ok_or_else(|| usage("tcp-listen needs HOST:PORT and a pipe name"))?;
            let pipe = pipe_name(positional.next(), "tcp-listen")?;
            Mode::TcpListen { addr, pipe, open }
        }
        "connect" => Mode::Connect {
            pipe: pipe_name(positional.next(), "connect")?,
            open,
            eof,
        },
        _ => Mode::Connect {
            pipe: pipe_name(Some(first), "connect")?,
            open,
            eof,
        },
    };
    if let Some(extra) = positional.next() {
        return Err(usage(format!("unexpected argument `{extra}`")));
    }
    match &mode {
        Mode::Listen { .. } => {
            if let Some(o) = seen_connect_only {
                return Err(usage(format!("{o} is for connect mode, not listen")));
            }
        }
        _ => {
            if let Some(o) = seen_listen_only {
                return Err(usage(format!("{o} is for listen mode")));
            }
            if target.is_some() {
                return Err(usage("--exec, --tcp and --stdio are for listen mode"));
            }
        }
    }
    if matches!(mode, Mode::TcpListen { .. }) {
        if let Some(o) = seen_connect_only {
            return Err(usage(format!("{o} is for connect mode, not tcp-listen")));
        }
    }
    Ok(Args { verbose, mode })
}

fn set_target(slot: &mut Option<Target>, t: Target) -> Result<(), Usage> {
    if slot.is_some() {
        return Err(usage("give one of --exec, --tcp and --stdio"));
    }
    *slot = Some(t);
    Ok(())
}

/// Checks a pipe name and writes `//./pipe/NAME` as `\\.\pipe\NAME` (as
/// Windows itself reads such a path), so that waiting for it works too.
fn pipe_name(name: Option<String>, mode: &str) -> Result<String, Usage> {
    let name = name.ok_or_else(|| usage(format!("{mode} needs a pipe name")))?;
    let name = if name.starts_with("//") {
        name.replace('/', "\\")
    } else {
        name
    };
    let lower = name.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix(r"\\") else {
        return Err(usage(format!(
            r"`{name}` is not a pipe name: it starts with \\.\pipe\ (or //./pipe/)"
        )));
    };
    let after_server = rest.split_once('\\').map(|(_, r)| r).unwrap_or("");
    match after_server.strip_prefix(r"pipe\") {
        Some(n) if !n.is_empty() && !name.contains('\0') => Ok(name),
        _ => Err(usage(format!(
            r"`{name}` is not a pipe name: it starts with \\.\pipe\ (or //./pipe/)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, Usage> {
        parse(args.iter().map(|s| s.to_string()))
    }

    fn mode(args: &[&str]) -> Mode {
        p(args).unwrap().mode
    }

    #[test]
    fn npiperelay_command_lines_mean_what_they_meant() {
        // docker: -ep -s //./pipe/docker_engine
        assert_eq!(
            mode(&["-ep", "-s", "//./pipe/docker_engine"]),
            Mode::Connect {
                pipe: r"\\.\pipe\docker_engine".into(),
                open: Open {
                    wait_for_pipe: false,
                    busy_timeout: DEFAULT_BUSY_TIMEOUT
                },
                eof: Eof {
                    stdin: StdinEof::ZeroMessage,
                    pipe: PipeEof::Exit
                },
            }
        );
        // ssh-agent: -ei -s: the end of stdin closes (as npiperelay, -ei wins).
        let Mode::Connect { eof, .. } = mode(&["-ei", "-s", "//./pipe/openssh-ssh-agent"]) else {
            panic!()
        };
        assert_eq!(eof.stdin, StdinEof::Close);
        let Mode::Connect { eof, open, .. } =
            mode(&["-p", "-s", "-ei", r"\\.\pipe\openssh-ssh-agent"])
        else {
            panic!()
        };
        assert_eq!(eof.stdin, StdinEof::Close);
        assert!(open.wait_for_pipe);
        assert!(p(&["-v", "connect", r"\\.\pipe\x"]).unwrap().verbose);
    }

    #[test]
    fn listen_and_tcp_listen() {
        assert_eq!(
            mode(&[
                "listen",
                r"\\.\pipe\svc",
                "--instances",
                "8",
                "--sddl",
                "D:(A;;GA;;;WD)",
                "--message",
                "--exec",
                "cat",
                "-n",
            ]),
            Mode::Listen {
                pipe: r"\\.\pipe\svc".into(),
                serve: Serve {
                    instances: 8,
                    sddl: Some("D:(A;;GA;;;WD)".into()),
                    allow_remote: false,
                    message: true
                },
                to: Target::Exec(vec!["cat".into(), "-n".into()]),
            }
        );
        assert!(matches!(
            mode(&["listen", r"\\.\pipe\svc", "--tcp", "127.0.0.1:80"]),
            Mode::Listen { to: Target::Tcp(a), .. } if a == "127.0.0.1:80"
        ));
        assert!(matches!(
            mode(&["tcp-listen", "127.0.0.1:2375", "//./pipe/docker_engine", "--busy-timeout", "0.5"]),
            Mode::TcpListen { addr, pipe, open } if addr == "127.0.0.1:2375"
                && pipe == r"\\.\pipe\docker_engine"
                && open.busy_timeout == Duration::from_millis(500)
        ));
    }

    #[test]
    fn bad_command_lines_are_one_clear_line() {
        for (args, says) in [
            (&[][..], "nothing to do"),
            (&["listen", r"\\.\pipe\x"][..], "listen needs where"),
            (
                &["listen", r"\\.\pipe\x", "--tcp", "a:1", "--stdio"][..],
                "one of",
            ),
            (
                &[r"\\.\pipe\x", "--instances", "0"][..],
                "--instances takes",
            ),
            (
                &[r"\\.\pipe\x", "--busy-timeout", "soon"][..],
                "--busy-timeout takes",
            ),
            (
                &[r"\\.\pipe\x", "--busy-timeout", "-1"][..],
                "--busy-timeout takes",
            ),
            (&[r"\\.\pipe\x", "--busy-timeout"][..], "needs a value"),
            (
                &[r"\\.\pipe\x", "--stdin-eof", "never"][..],
                "--stdin-eof is",
            ),
            (&[r"\\.\pipe\x", "--bogus"][..], "unknown option `--bogus`"),
            (&[r"C:\file.txt"][..], "is not a pipe name"),
            (&[r"\\.\pipe\"][..], "is not a pipe name"),
            (
                &["listen", r"\\.\pipe\x", "-ei", "--stdio"][..],
                "-ei is for connect mode",
            ),
            (
                &[r"\\.\pipe\x", "--sddl", "D:"][..],
                "--sddl is for listen mode",
            ),
            (&[r"\\.\pipe\x", "--stdio"][..], "are for listen mode"),
            (&[r"\\.\pipe\x", r"\\.\pipe\y"][..], "unexpected argument"),
            (
                &["listen", r"\\.\pipe\x", "--exec"][..],
                "--exec needs a program",
            ),
        ] {
            let e = p(args).unwrap_err();
            assert!(e.0.contains(says), "{args:?}: {e}");
            assert!(!e.0.contains('\n'), "{args:?}: one line: {e}");
        }
    }

    #[test]
    fn a_remote_pipe_name_is_a_pipe_name() {
        assert!(matches!(
            mode(&[r"\\server\pipe\x"]),
            Mode::Connect { pipe, .. } if pipe == r"\\server\pipe\x"
        ));
        assert_eq!(mode(&["--help"]), Mode::Help);
        assert_eq!(mode(&["-V"]), Mode::Version);
    }
}
