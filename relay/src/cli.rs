//! The command line: what to relay, where, and what ends a connection;
//! and the decisions that need no Windows call (which addresses and SDDL
//! expose a pipe, what an OS error means in words). Plain Rust, so that it
//! is tested natively.
// Without Windows only the parser runs (the modes are Windows code).
#![cfg_attr(not(windows), allow(dead_code))]

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
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
        /// What ends each client's connection.
        eof: Eof,
        /// How many clients at once, and from where.
        clients: Clients,
    },
    /// Listen on a TCP address; relay each connection to a new client of a pipe.
    TcpListen {
        /// The TCP address, `HOST:PORT`.
        addr: String,
        /// The pipe's name.
        pipe: String,
        /// How to open it.
        open: Open,
        /// What ends each connection.
        eof: Eof,
        /// How many connections at once, and from where.
        clients: Clients,
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
    /// Who may own the pipe.
    pub owner: Owner,
}

/// Who may own (serve) the pipe a client opens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Owner {
    /// The current user, SYSTEM or the Administrators group.
    #[default]
    Trusted,
    /// This SID (`S-1-5-...`) only.
    Sid(String),
    /// Anyone: no check.
    Any,
}

/// How a server creates its instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serve {
    /// How many instances wait for clients.
    pub instances: usize,
    /// A security descriptor, as SDDL; `None`: the current user only.
    pub sddl: Option<String>,
    /// The SDDL may let other users write (`--allow-others`).
    pub allow_others: bool,
    /// Let clients on other machines in.
    pub allow_remote: bool,
    /// Message pipes: each chunk from the other side is one message.
    pub message: bool,
}

/// How many connections a listening relay serves at once, and where its
/// TCP side may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clients {
    /// Connections served at once; more are refused (closed at once).
    pub max: usize,
    /// TCP addresses that are not loopback are allowed.
    pub allow_remote_tcp: bool,
    /// `tcp-listen` lets in local TCP peers of any user (default: only
    /// processes of the relay's user).
    pub any_tcp_peer: bool,
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

/// What ends a relay between a pipe and the other side (stdio, a TCP
/// connection, a child process).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Eof {
    /// On the end of the other side's stream (stdin's end, a TCP FIN).
    pub stdin: StdinEof,
    /// On the pipe's end of stream (its close, or a zero-byte message).
    pub pipe: PipeEof,
    /// End a connection after this long with no data either way.
    pub idle_timeout: Option<Duration>,
}

/// What the end of stdin (or the TCP peer's FIN) does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StdinEof {
    /// Keep relaying the pipe to stdout until it ends.
    #[default]
    Keep,
    /// Send a zero-byte message (the end of a request, to some servers;
    /// go-winio's `CloseWrite`), then keep relaying the pipe.
    ZeroMessage,
    /// Write what is pending to the pipe, close it and end.
    Close,
}

/// What the pipe's end of stream (its close, or a zero-byte message) does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PipeEof {
    /// End once stdout (or the TCP peer) has everything.
    #[default]
    Exit,
    /// Close stdout (shut the TCP connection down for writing) and keep
    /// sending stdin to the pipe until stdin ends.
    DrainStdin,
}

/// The default time to wait while every instance of a pipe is busy.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// The default number of instances a listening relay keeps waiting.
pub const DEFAULT_INSTANCES: usize = 4;
/// The default number of connections a listening relay serves at once.
pub const DEFAULT_MAX_CLIENTS: usize = 64;
/// The most `--max-clients` takes (a thread or two and a pipe each).
pub const MAX_MAX_CLIENTS: usize = 4096;

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

PIPE is \\.\pipe\NAME (or //./pipe/NAME). HOST is a name or an address; PORT is 1 to 65535.

Opening a pipe (connect, tcp-listen):
  -p, --wait-for-pipe       wait for a pipe that does not exist yet
  --busy-timeout SECS       wait at most SECS while every instance is busy (default 30;
                            0: not at all); a wait that ends early is tried again
  --expect-owner SID        the pipe's owner must be SID (default: the current user,
                            SYSTEM or Administrators; anything else: access denied)
  --any-owner               do not check the pipe's owner
End of stream (every mode; 'stdin' is the TCP connection or the child's output there):
  --stdin-eof keep          on the end of stdin, keep relaying the pipe to stdout
                            (default of connect)
  --stdin-eof message, -s   ... send a zero-byte message, then keep relaying
  --stdin-eof close, -ei    ... write what is pending, close the pipe and end
                            (default of tcp-listen and listen)
  --pipe-eof exit, -ep      on the pipe's end, end once stdout has everything (default)
  --pipe-eof drain          ... close stdout (shut TCP down for writing) and keep
                            sending stdin to the pipe until stdin ends
  --idle-timeout TIME       end a connection after TIME with no data either way
                            (like 90s, 30m, 2h; default: never)
  On a message pipe a zero-byte message is the end of the stream in that direction:
  go-winio's CloseWrite, which Docker sends at the end of `docker attach` and
  `docker exec` output. With -ep the relay ends there (the docker CLI returns);
  with --pipe-eof drain stdout closes and stdin still goes to the pipe.
Serving (listen):
  --instances N             instances waiting for clients (default 4)
  --sddl SDDL               security descriptor of the pipe (default: the current
                            user and SYSTEM only)
  --allow-others            let --sddl grant write access to Everyone (WD), Anonymous (AN),
                            Authenticated Users (AU) or other all-users groups
  --allow-remote            accept clients from other machines (default: rejected)
  --message                 message pipes: each chunk read from the other side is one message
Many connections (listen, tcp-listen):
  --max-clients N           connections served at once (default 64); more are closed at
                            once, with a log line
  --allow-remote-tcp        tcp-listen may listen on, and listen --tcp connect to, an
                            address that is not loopback (default: refused: it would let
                            other machines reach the pipe)
  --any-tcp-peer            tcp-listen lets in local TCP peers of any user (default: only
                            processes running as the relay's user; others are closed at
                            once, with a log line)
Other:
  -v, --verbose             log connections, waits and ends to stderr, with times
  -h, --help                this text
  -V, --version             the version

Exit codes:
  0  done (also when stdout's reader left early, as with `| head`)
  1  the relay failed (a TCP address in use or not this machine's, a read or write failed)
  2  bad command line (option, address, port 0, a host that does not resolve, SDDL,
     a remote TCP address without --allow-remote-tcp, an SDDL open to others
     without --allow-others)
  3  no such pipe
  4  every instance stayed busy
  5  access denied: the pipe refused us, or its owner is not one we trust
     (listen: the name is taken, or access denied)
";

/// Options seen, by the modes they belong to.
#[derive(Default)]
struct Seen {
    listen_only: Option<String>,
    opening: Option<String>,
    many: Option<String>,
    remote_tcp: bool,
    any_tcp_peer: bool,
    stdin_eof: bool,
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, Usage> {
    let mut args = args.into_iter().peekable();
    let mut verbose = false;
    let mut positional: Vec<String> = Vec::new();
    let mut open = Open {
        wait_for_pipe: false,
        busy_timeout: DEFAULT_BUSY_TIMEOUT,
        owner: Owner::Trusted,
    };
    let mut eof = Eof::default();
    let mut serve = Serve {
        instances: DEFAULT_INSTANCES,
        sddl: None,
        allow_others: false,
        allow_remote: false,
        message: false,
    };
    let mut clients = Clients {
        max: DEFAULT_MAX_CLIENTS,
        allow_remote_tcp: false,
        any_tcp_peer: false,
    };
    let mut target: Option<Target> = None;
    let mut seen = Seen::default();

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
            "-p" | "--wait-for-pipe" => {
                open.wait_for_pipe = true;
                seen.opening.get_or_insert(arg);
            }
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
                seen.opening.get_or_insert(arg);
            }
            "--expect-owner" => {
                let v = value(&arg)?;
                if open.owner == Owner::Any {
                    return Err(usage("give --expect-owner or --any-owner, not both"));
                }
                if !is_sid(&v) {
                    return Err(usage(format!(
                        "--expect-owner takes a SID like S-1-5-18, not `{v}`"
                    )));
                }
                open.owner = Owner::Sid(v);
                seen.opening.get_or_insert(arg);
            }
            "--any-owner" => {
                if matches!(open.owner, Owner::Sid(_)) {
                    return Err(usage("give --expect-owner or --any-owner, not both"));
                }
                open.owner = Owner::Any;
                seen.opening.get_or_insert(arg);
            }
            "-s" => {
                // As in npiperelay, -ei wins over -s, in either order.
                if !seen.stdin_eof || eof.stdin != StdinEof::Close {
                    eof.stdin = StdinEof::ZeroMessage;
                }
                seen.stdin_eof = true;
            }
            "-ei" => {
                eof.stdin = StdinEof::Close;
                seen.stdin_eof = true;
            }
            "-ep" => eof.pipe = PipeEof::Exit,
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
                seen.stdin_eof = true;
            }
            "--pipe-eof" => {
                let v = value(&arg)?;
                eof.pipe = match v.as_str() {
                    "exit" => PipeEof::Exit,
                    "drain" => PipeEof::DrainStdin,
                    _ => return Err(usage(format!("--pipe-eof is exit or drain, not `{v}`"))),
                };
            }
            "--idle-timeout" => {
                let v = value(&arg)?;
                eof.idle_timeout = Some(duration(&v).ok_or_else(|| {
                    usage(format!(
                        "--idle-timeout takes a time like 90s, 30m or 2h (more than 0), not `{v}`"
                    ))
                })?);
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
                seen.listen_only.get_or_insert(arg);
            }
            "--sddl" => {
                serve.sddl = Some(value(&arg)?);
                seen.listen_only.get_or_insert(arg);
            }
            "--allow-others" => {
                serve.allow_others = true;
                seen.listen_only.get_or_insert(arg);
            }
            "--allow-remote" => {
                serve.allow_remote = true;
                seen.listen_only.get_or_insert(arg);
            }
            "--message" => {
                serve.message = true;
                seen.listen_only.get_or_insert(arg);
            }
            "--max-clients" => {
                let v = value(&arg)?;
                clients.max = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_MAX_CLIENTS).contains(n))
                    .ok_or_else(|| {
                        usage(format!(
                            "--max-clients takes a number from 1 to {MAX_MAX_CLIENTS}, not `{v}`"
                        ))
                    })?;
                seen.many.get_or_insert(arg);
            }
            "--allow-remote-tcp" => {
                clients.allow_remote_tcp = true;
                seen.remote_tcp = true;
            }
            "--any-tcp-peer" => {
                clients.any_tcp_peer = true;
                seen.any_tcp_peer = true;
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
    // Listening modes end a connection at the other side's end unless told
    // otherwise: nothing else would end it against a keep-alive server.
    let listening_eof = |mut eof: Eof| {
        if !seen.stdin_eof {
            eof.stdin = StdinEof::Close;
        }
        eof
    };
    let mode = match first.as_str() {
        "listen" => {
            let pipe = pipe_name(positional.next(), "listen")?;
            let to = target.take().ok_or_else(|| {
                usage("listen needs where each client goes: --exec PROGRAM, --tcp HOST:PORT or --stdio")
            })?;
            Mode::Listen {
                pipe,
                serve: serve.clone(),
                to,
                eof: listening_eof(eof),
                clients,
            }
        }
        "tcp-listen" => {
            let addr = positional
                .next()
                .ok_or_else(|| usage("tcp-listen needs HOST:PORT and a pipe name"))?;
            let pipe = pipe_name(positional.next(), "tcp-listen")?;
            Mode::TcpListen {
                addr,
                pipe,
                open: open.clone(),
                eof: listening_eof(eof),
                clients,
            }
        }
        "connect" => Mode::Connect {
            pipe: pipe_name(positional.next(), "connect")?,
            open: open.clone(),
            eof,
        },
        _ => Mode::Connect {
            pipe: pipe_name(Some(first), "connect")?,
            open: open.clone(),
            eof,
        },
    };
    if let Some(extra) = positional.next() {
        return Err(usage(format!("unexpected argument `{extra}`")));
    }
    let name = match &mode {
        Mode::Listen { .. } => "listen",
        Mode::TcpListen { .. } => "tcp-listen",
        _ => "connect",
    };
    if name != "listen" {
        if let Some(o) = seen.listen_only {
            return Err(usage(format!("{o} is for listen mode")));
        }
        if target.is_some() {
            return Err(usage("--exec, --tcp and --stdio are for listen mode"));
        }
    }
    if name == "listen" {
        if let Some(o) = seen.opening {
            return Err(usage(format!(
                "{o} is for connect and tcp-listen, not listen"
            )));
        }
    }
    if name == "connect" {
        if let Some(o) = seen.many {
            return Err(usage(format!("{o} is for listen and tcp-listen")));
        }
    }
    let tcp_side = match &mode {
        Mode::TcpListen { addr, .. } => Some(addr),
        Mode::Listen {
            to: Target::Tcp(addr),
            ..
        } => Some(addr),
        _ => None,
    };
    if seen.any_tcp_peer && name != "tcp-listen" {
        return Err(usage("--any-tcp-peer is for tcp-listen"));
    }
    if seen.remote_tcp && tcp_side.is_none() {
        return Err(usage(
            "--allow-remote-tcp is for tcp-listen and listen --tcp",
        ));
    }
    if let Some(addr) = tcp_side {
        let (host, _) = host_port(addr)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            exposure(&SocketAddr::new(ip, 1), clients.allow_remote_tcp, addr)?;
        }
    }
    if let Mode::Listen { serve, .. } = &mode {
        match &serve.sddl {
            None if serve.allow_others => {
                return Err(usage(
                    "--allow-others goes with an --sddl that grants others access",
                ))
            }
            Some(sddl) if !serve.allow_others => {
                if let Some(who) = sddl_lets_others_write(sddl) {
                    return Err(usage(format!(
                        "--sddl lets {who} write to the pipe: add --allow-others if you mean it"
                    )));
                }
            }
            _ => {}
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

/// Splits `HOST:PORT` (`[V6]:PORT` too) and checks the port: 1 to 65535.
pub fn host_port(addr: &str) -> Result<(&str, u16), Usage> {
    let bad = || {
        usage(format!(
            "bad TCP address `{addr}`: give HOST:PORT, like 127.0.0.1:2375 or localhost:2375"
        ))
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| {
        usage(format!(
            "bad TCP address `{addr}`: the port is a number from 1 to 65535"
        ))
    })?;
    if port == 0 {
        return Err(usage(format!(
            "bad TCP address `{addr}`: port 0 would be any free port, which no client could know; give the port to use"
        )));
    }
    Ok((host, port))
}

/// Refuses a TCP address that is not loopback unless remote TCP is allowed:
/// it would let other machines reach the pipe.
pub fn exposure(at: &SocketAddr, allow_remote_tcp: bool, given: &str) -> Result<(), Usage> {
    if allow_remote_tcp || at.ip().is_loopback() {
        return Ok(());
    }
    Err(usage(format!(
        "`{given}` ({}) is not a loopback address: other machines could reach the pipe through it; add --allow-remote-tcp if you mean it",
        at.ip()
    )))
}

/// A duration: `90s`, `30m`, `2h`, `500ms`, or plain seconds; more than zero.
fn duration(v: &str) -> Option<Duration> {
    let (num, unit) = match v.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0 && secs <= 1e9).then(|| Duration::from_secs_f64(secs))
}

/// Whether `v` looks like a SID string, `S-1-...`.
fn is_sid(v: &str) -> bool {
    let mut parts = v.split('-');
    parts.next().is_some_and(|s| s.eq_ignore_ascii_case("s")) && parts.next() == Some("1") && {
        let rest: Vec<&str> = parts.collect();
        !rest.is_empty()
            && rest
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// Groups that are "other users": SDDL alias, SID, and name.
const OTHERS: &[(&str, &str, &str)] = &[
    ("WD", "S-1-1-0", "Everyone (WD)"),
    ("AN", "S-1-5-7", "Anonymous (AN)"),
    ("AU", "S-1-5-11", "Authenticated Users (AU)"),
    ("BU", "S-1-5-32-545", "Users (BU)"),
    ("BG", "S-1-5-32-546", "Guests (BG)"),
    ("IU", "S-1-5-4", "Interactive users (IU)"),
    ("NU", "S-1-5-2", "Network users (NU)"),
];

/// Access rights that write to a pipe or take it over: write data, create
/// an instance, write its DACL or owner, generic write, generic all.
const WRITE_RIGHTS: u32 = 0x2 | 0x4 | 0x4_0000 | 0x8_0000 | 0x1000_0000 | 0x4000_0000;

/// The rights of SDDL's two-letter codes.
fn right(code: &str) -> Option<u32> {
    Some(match code {
        "GA" => 0x1000_0000,
        "GR" => 0x8000_0000,
        "GW" => 0x4000_0000,
        "GX" => 0x2000_0000,
        "FA" => 0x1F_01FF,
        "FR" => 0x12_0089,
        "FW" => 0x12_0116,
        "FX" => 0x12_00A0,
        "KA" => 0xF_003F,
        "KR" | "KX" => 0x2_0019,
        "KW" => 0x2_0006,
        "CC" => 0x1,
        "DC" => 0x2,
        "LC" => 0x4,
        "SW" => 0x8,
        "RP" => 0x10,
        "WP" => 0x20,
        "DT" => 0x40,
        "LO" => 0x80,
        "CR" => 0x100,
        "SD" => 0x1_0000,
        "RC" => 0x2_0000,
        "WD" => 0x4_0000,
        "WO" => 0x8_0000,
        _ => return None,
    })
}

/// The rights an ACE's rights field grants; `None` if it cannot be read
/// (which the caller treats as everything).
fn rights(field: &str) -> Option<u32> {
    let f = field.trim();
    if let Some(hex) = f.strip_prefix("0x").or_else(|| f.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) {
        return f.parse().ok();
    }
    if f.len() % 2 != 0 {
        return None;
    }
    let mut mask = 0;
    for i in (0..f.len()).step_by(2) {
        mask |= right(f.get(i..i + 2)?.to_ascii_uppercase().as_str())?;
    }
    Some(mask)
}

/// The DACL part of an SDDL string: `Some(flags and ACEs)`, or `None` when
/// there is no `D:` part.
fn dacl(sddl: &str) -> Option<&str> {
    let b = sddl.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    let mut start = None;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            c if depth == 0 && b.get(i + 1) == Some(&b':') && b"OGDS".contains(&c) => {
                // A section starts where the previous one cannot go on: at
                // the start, after an ACE, or after an owner or group SID
                // (two letters, or S-1-... digits).
                let prev = if i == 0 { None } else { Some(b[i - 1]) };
                let boundary = match prev {
                    None | Some(b')') => true,
                    Some(p) => {
                        // After `O:XX`, `G:XX`, `O:S-1-5-18`, or DACL flags.
                        let before = &sddl[..i];
                        let last = before.rfind(':').map_or(0, |k| k + 1);
                        let value = &before[last..];
                        p != b'-'
                            && (value.len() == 2
                                || is_sid(value)
                                || value.bytes().all(|c| c.is_ascii_uppercase() || c == b'_'))
                    }
                };
                if boundary {
                    if let Some(s) = start {
                        return Some(&sddl[s..i]);
                    }
                    if c == b'D' {
                        start = Some(i + 2);
                    }
                    i += 2;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    start.map(|s| &sddl[s..])
}

/// Whom an SDDL lets write to the pipe among all-users groups (Everyone,
/// Anonymous, Authenticated Users, ...): `Some(name)` of the first, or
/// `Some("everyone")` for a DACL that controls nothing. `None`: only named
/// users and groups may write. A part that cannot be read counts as
/// granting everything.
pub fn sddl_lets_others_write(sddl: &str) -> Option<&'static str> {
    // No DACL: Windows' default DACL, which lets no other user write.
    let d = dacl(sddl)?;
    let flags_end = d.find('(').unwrap_or(d.len());
    if d[..flags_end].contains("NO_ACCESS_CONTROL") {
        return Some("everyone (a NULL DACL)");
    }
    for ace in d[flags_end..].split(['(', ')']).filter(|a| !a.is_empty()) {
        let f: Vec<&str> = ace.split(';').collect();
        if f.len() < 6 {
            return Some("anyone (an ACE that cannot be read)");
        }
        let allow = matches!(f[0].trim().to_ascii_uppercase().as_str(), "A" | "OA" | "XA");
        // Inherit-only ACEs do not apply to the pipe itself.
        let inherit_only = f[1].to_ascii_uppercase().contains("IO");
        if !allow || inherit_only {
            continue;
        }
        let sid = f[5].trim().to_ascii_uppercase();
        let Some(&(_, _, who)) = OTHERS.iter().find(|(a, s, _)| sid == *a || sid == *s) else {
            continue;
        };
        if rights(f[2]).map_or(true, |m| m & WRITE_RIGHTS != 0) {
            return Some(who);
        }
    }
    None
}

/// Known OS error codes in the relay's words.
fn known(code: i32) -> Option<&'static str> {
    Some(match code {
        2 => "no such pipe",
        5 => "access denied",
        109 => "the other end closed",
        231 => "every instance is busy",
        232 => "the other end is closing",
        233 => "no process is on the other end",
        535 => "no process is on the other end",
        676 => "every instance was closed while waiting",
        995 => "the operation was cancelled",
        10048 => "the address is in use (another program listens there)",
        10049 => "the address is not one of this machine's",
        10050 | 10051 | 10065 => "the network cannot be reached",
        10053 | 10054 => "the connection was reset",
        10060 => "the connection timed out",
        10061 => "connection refused (nothing listens there)",
        11001 => "no such host",
        11002..=11004 => "the host name cannot be resolved now",
        _ => return None,
    })
}

/// An OS error in words, never the system's message text (Wine's is often
/// "FormatMessageW() returned error ..."): known codes get the relay's own
/// words, others the error kind and the code.
pub fn words(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => match known(code) {
            Some(w) => w.to_string(),
            None => format!("{} (OS error {code})", kind_words(e.kind())),
        },
        None => e.to_string(),
    }
}

fn kind_words(k: io::ErrorKind) -> String {
    let s = format!("{k:?}");
    // `ConnectionRefused` -> `connection refused`
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Whether writing to stdout failed because its reader left (`| head`):
/// not the relay's failure, nor the pipe's.
pub fn reader_left(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe || matches!(e.raw_os_error(), Some(109 | 232 | 233))
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

    fn open_default() -> Open {
        Open {
            wait_for_pipe: false,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            owner: Owner::Trusted,
        }
    }

    #[test]
    fn npiperelay_command_lines_mean_what_they_meant() {
        // docker: -ep -s //./pipe/docker_engine
        assert_eq!(
            mode(&["-ep", "-s", "//./pipe/docker_engine"]),
            Mode::Connect {
                pipe: r"\\.\pipe\docker_engine".into(),
                open: open_default(),
                eof: Eof {
                    stdin: StdinEof::ZeroMessage,
                    pipe: PipeEof::Exit,
                    idle_timeout: None,
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
        // Connect keeps relaying the pipe after stdin's end unless told.
        let Mode::Connect { eof, .. } = mode(&[r"\\.\pipe\x"]) else {
            panic!()
        };
        assert_eq!(eof, Eof::default());
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
                "D:P(A;;GA;;;SY)(A;;GR;;;WD)",
                "--message",
                "--max-clients",
                "3",
                "--exec",
                "cat",
                "-n",
            ]),
            Mode::Listen {
                pipe: r"\\.\pipe\svc".into(),
                serve: Serve {
                    instances: 8,
                    sddl: Some("D:P(A;;GA;;;SY)(A;;GR;;;WD)".into()),
                    allow_others: false,
                    allow_remote: false,
                    message: true
                },
                to: Target::Exec(vec!["cat".into(), "-n".into()]),
                eof: Eof {
                    stdin: StdinEof::Close,
                    pipe: PipeEof::Exit,
                    idle_timeout: None
                },
                clients: Clients {
                    max: 3,
                    allow_remote_tcp: false,
                    any_tcp_peer: false
                },
            }
        );
        assert!(matches!(
            mode(&["listen", r"\\.\pipe\svc", "--tcp", "127.0.0.1:80"]),
            Mode::Listen { to: Target::Tcp(a), clients, .. }
                if a == "127.0.0.1:80" && clients.max == DEFAULT_MAX_CLIENTS
        ));
        assert!(matches!(
            mode(&["tcp-listen", "127.0.0.1:2375", "//./pipe/docker_engine", "--busy-timeout", "0.5"]),
            Mode::TcpListen { addr, pipe, open, eof, .. } if addr == "127.0.0.1:2375"
                && pipe == r"\\.\pipe\docker_engine"
                && open.busy_timeout == Duration::from_millis(500)
                && eof.stdin == StdinEof::Close
        ));
    }

    #[test]
    fn end_of_stream_options_work_in_every_mode() {
        // A TCP FIN becomes what --stdin-eof says; the pipe's end what -ep
        // or --pipe-eof says; listening modes close by default.
        let Mode::TcpListen { eof, .. } = mode(&[
            "tcp-listen",
            "localhost:2375",
            r"\\.\pipe\d",
            "-s",
            "--pipe-eof",
            "drain",
            "--idle-timeout",
            "90s",
        ]) else {
            panic!()
        };
        assert_eq!(
            eof,
            Eof {
                stdin: StdinEof::ZeroMessage,
                pipe: PipeEof::DrainStdin,
                idle_timeout: Some(Duration::from_secs(90))
            }
        );
        let Mode::Listen { eof, .. } = mode(&[
            "listen",
            r"\\.\pipe\d",
            "-ep",
            "--stdin-eof",
            "keep",
            "--tcp",
            "[::1]:80",
        ]) else {
            panic!()
        };
        assert_eq!((eof.stdin, eof.pipe), (StdinEof::Keep, PipeEof::Exit));
        let Mode::Connect { eof, .. } = mode(&[r"\\.\pipe\d", "--idle-timeout", "500ms"]) else {
            panic!()
        };
        assert_eq!(eof.idle_timeout, Some(Duration::from_millis(500)));
        for (v, secs) in [("2", 2.0), ("1.5m", 90.0), ("2h", 7200.0), ("250ms", 0.25)] {
            assert_eq!(duration(v), Some(Duration::from_secs_f64(secs)), "{v}");
        }
        for v in ["0", "0s", "-1s", "1d", "s", "", "1e999", "nan"] {
            assert_eq!(duration(v), None, "{v}");
        }
    }

    #[test]
    fn owner_checks() {
        let Mode::Connect { open, .. } = mode(&[r"\\.\pipe\x", "--expect-owner", "S-1-5-18"])
        else {
            panic!()
        };
        assert_eq!(open.owner, Owner::Sid("S-1-5-18".into()));
        let Mode::TcpListen { open, .. } =
            mode(&["tcp-listen", "127.0.0.1:9", r"\\.\pipe\x", "--any-owner"])
        else {
            panic!()
        };
        assert_eq!(open.owner, Owner::Any);
        let Mode::TcpListen { clients, .. } =
            mode(&["tcp-listen", "127.0.0.1:9", r"\\.\pipe\x", "--any-tcp-peer"])
        else {
            panic!()
        };
        assert!(clients.any_tcp_peer);
        assert!(is_sid("S-1-5-21-1-2-3-1001"));
        for bad in ["S-1", "S-1-", "S-2-5", "SY", "S-1-5-x", ""] {
            assert!(!is_sid(bad), "{bad}");
        }
    }

    #[test]
    fn tcp_addresses_are_host_port_with_a_real_port_and_loopback_unless_allowed() {
        assert_eq!(host_port("127.0.0.1:2375").unwrap(), ("127.0.0.1", 2375));
        assert_eq!(host_port("localhost:80").unwrap(), ("localhost", 80));
        assert_eq!(host_port("[::1]:80").unwrap(), ("::1", 80));
        for (bad, says) in [
            ("127.0.0.1:0", "port 0"),
            ("127.0.0.1", "give HOST:PORT"),
            (":80", "give HOST:PORT"),
            ("::1:80", "give HOST:PORT"),
            ("h:65536", "from 1 to 65535"),
            ("h:http", "from 1 to 65535"),
        ] {
            let e = host_port(bad).unwrap_err();
            assert!(e.0.contains(says), "{bad}: {e}");
        }
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        let lan: SocketAddr = "[fe80::1]:1".parse().unwrap();
        assert!(exposure(&lo, false, "x").is_ok());
        assert!(exposure(&"[::1]:1".parse().unwrap(), false, "x").is_ok());
        for a in [any, lan] {
            let e = exposure(&a, false, "x").unwrap_err();
            assert!(e.0.contains("--allow-remote-tcp"), "{e}");
            assert!(exposure(&a, true, "x").is_ok());
        }
        // On the command line: literal addresses are judged at once.
        for args in [
            &["tcp-listen", "0.0.0.0:2375", r"\\.\pipe\d"][..],
            &["listen", r"\\.\pipe\d", "--tcp", "10.0.0.1:22"][..],
        ] {
            let e = p(args).unwrap_err();
            assert!(e.0.contains("not a loopback address"), "{args:?}: {e}");
            let mut with: Vec<&str> = args.to_vec();
            with.push("--allow-remote-tcp");
            assert!(p(&with).is_ok(), "{with:?}");
        }
        let e = p(&["tcp-listen", "127.0.0.1:0", r"\\.\pipe\d"]).unwrap_err();
        assert!(e.0.contains("port 0"), "{e}");
    }

    #[test]
    fn an_sddl_that_lets_others_write_needs_allow_others() {
        for (sddl, who) in [
            ("D:(A;;GA;;;WD)", Some("Everyone (WD)")),
            (
                "D:P(A;;GA;;;SY)(A;;GRGW;;;AU)",
                Some("Authenticated Users (AU)"),
            ),
            ("D:(A;;FA;;;S-1-1-0)", Some("Everyone (WD)")),
            ("D:(A;;0x12019f;;;AN)", Some("Anonymous (AN)")),
            ("D:(A;;0x4;;;WD)", Some("Everyone (WD)")),
            ("O:SYG:SYD:(A;;GW;;;BU)", Some("Users (BU)")),
            ("D:NO_ACCESS_CONTROL", Some("everyone (a NULL DACL)")),
            ("D:(A;;ZZ;;;WD)", Some("Everyone (WD)")),
            ("D:(A;;GA;;WD)", Some("anyone (an ACE that cannot be read)")),
            // Read only, a deny, inherit-only, named users: nobody else writes.
            ("D:P(A;;GA;;;SY)(A;;GR;;;WD)", None),
            ("D:(A;;FR;;;AU)(D;;GA;;;AN)", None),
            ("D:(A;IO;GA;;;WD)(A;;GA;;;S-1-5-21-1-2-3-1001)", None),
            ("D:P(A;;GA;;;OW)(A;;GA;;;SY)", None),
            ("O:DAG:DAD:(A;;GA;;;DA)", None),
            // No DACL: Windows' default, read for Everyone.
            ("O:SY", None),
            ("D:P", None),
        ] {
            assert_eq!(sddl_lets_others_write(sddl), who, "{sddl}");
        }
        let e = p(&[
            "listen",
            r"\\.\pipe\x",
            "--sddl",
            "D:(A;;GA;;;WD)",
            "--stdio",
        ])
        .unwrap_err();
        assert!(
            e.0.contains("Everyone (WD)") && e.0.contains("--allow-others"),
            "{e}"
        );
        assert!(p(&[
            "listen",
            r"\\.\pipe\x",
            "--sddl",
            "D:(A;;GA;;;WD)",
            "--allow-others",
            "--stdio"
        ])
        .is_ok());
        let e = p(&["listen", r"\\.\pipe\x", "--allow-others", "--stdio"]).unwrap_err();
        assert!(e.0.contains("goes with an --sddl"), "{e}");
    }

    #[test]
    fn os_errors_are_in_words() {
        for (code, says) in [
            (2, "no such pipe"),
            (5, "access denied"),
            (231, "busy"),
            (232, "closing"),
            (233, "no process"),
            (676, "closed while waiting"),
            (10048, "in use"),
            (10049, "not one of this machine's"),
            (10061, "refused"),
            (11001, "no such host"),
        ] {
            let w = words(&io::Error::from_raw_os_error(code));
            assert!(w.contains(says), "{code}: {w}");
            assert!(
                !w.contains("FormatMessage") && !w.contains("os error"),
                "{w}"
            );
        }
        let w = words(&io::Error::from_raw_os_error(1_234_567));
        assert!(w.ends_with("(OS error 1234567)"), "{w}");
        assert!(!w.contains("FormatMessage"), "{w}");
        assert_eq!(
            kind_words(io::ErrorKind::ConnectionRefused),
            "connection refused"
        );
        assert!(reader_left(&io::Error::from_raw_os_error(232)));
        assert!(reader_left(&io::ErrorKind::BrokenPipe.into()));
        assert!(!reader_left(&io::Error::from_raw_os_error(5)));
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
                &["listen", r"\\.\pipe\x", "-p", "--stdio"][..],
                "-p is for connect and tcp-listen",
            ),
            (
                &["listen", r"\\.\pipe\x", "--any-owner", "--stdio"][..],
                "--any-owner is for connect and tcp-listen",
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
            (
                &[r"\\.\pipe\x", "--max-clients", "2"][..],
                "--max-clients is for listen and tcp-listen",
            ),
            (
                &[
                    "tcp-listen",
                    "127.0.0.1:1",
                    r"\\.\pipe\x",
                    "--max-clients",
                    "0",
                ][..],
                "--max-clients takes",
            ),
            (
                &[r"\\.\pipe\x", "--allow-remote-tcp"][..],
                "--allow-remote-tcp is for tcp-listen and listen --tcp",
            ),
            (
                &["listen", r"\\.\pipe\x", "--allow-remote-tcp", "--stdio"][..],
                "--allow-remote-tcp is for",
            ),
            (
                &[r"\\.\pipe\x", "--any-owner", "--expect-owner", "S-1-5-18"][..],
                "not both",
            ),
            (
                &[
                    "listen",
                    r"\\.\pipe\x",
                    "--any-tcp-peer",
                    "--tcp",
                    "127.0.0.1:1",
                ][..],
                "--any-tcp-peer is for tcp-listen",
            ),
            (
                &[r"\\.\pipe\x", "--expect-owner", "SY"][..],
                "--expect-owner takes a SID",
            ),
            (
                &[r"\\.\pipe\x", "--idle-timeout", "soon"][..],
                "--idle-timeout takes",
            ),
            (&["tcp-listen", "2375", r"\\.\pipe\x"][..], "give HOST:PORT"),
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

    #[test]
    fn the_help_documents_every_option_and_exit_code() {
        for o in [
            "--allow-remote-tcp",
            "--allow-others",
            "--max-clients",
            "--idle-timeout",
            "--expect-owner",
            "--any-owner",
            "--any-tcp-peer",
            "--pipe-eof drain",
            "CloseWrite",
            "docker attach",
        ] {
            assert!(HELP.contains(o), "{o}");
        }
        for code in 0..=5 {
            assert!(HELP.contains(&format!("\n  {code}  ")), "exit code {code}");
        }
    }
}
