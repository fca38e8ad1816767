//! `pipe-relay`: relays Windows named pipes to stdio, TCP and child
//! processes, and back — the program WSL and MSYS users run (through
//! `socat`) to reach `\\.\pipe\` servers such as Docker's or the OpenSSH
//! agent, and to serve a pipe from the other side.
//!
//! It is built on mio-named-pipes: clients wait while every instance is
//! busy, servers keep several instances listening, message pipes keep
//! their boundaries. See `pipe-relay --help`.

mod cli;
mod mux;
#[cfg(windows)]
mod mux_serve;
#[cfg(windows)]
mod pump;
#[cfg(windows)]
mod run;
#[cfg(unix)]
mod unix;

use std::process::ExitCode;

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if mux::args::is_mux(&raw) {
        return mux_main(&raw);
    }
    let args = match cli::parse(raw) {
        Ok(a) => a,
        Err(u) => {
            eprintln!("pipe-relay: {u}");
            return ExitCode::from(2);
        }
    };
    match args.mode {
        cli::Mode::Help => {
            print!("{}{}", cli::HELP, mux::args::HELP);
            ExitCode::SUCCESS
        }
        cli::Mode::Version => {
            println!("pipe-relay {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        mode => relay(mode, args.verbose),
    }
}

#[cfg(windows)]
fn relay(mode: cli::Mode, verbose: bool) -> ExitCode {
    let r = match &mode {
        cli::Mode::Connect { pipe, open, eof } => run::connect(pipe, open, *eof, verbose),
        cli::Mode::Listen {
            pipe,
            serve,
            to,
            eof,
            clients,
        } => run::listen(pipe, serve, to, *eof, clients, verbose),
        cli::Mode::TcpListen {
            addr,
            pipe,
            open,
            eof,
            clients,
        } => run::tcp_listen(addr, pipe, open, *eof, clients, verbose),
        cli::Mode::Help | cli::Mode::Version => Ok(()),
    };
    match r {
        Ok(()) => {
            // The thread reading stdin may still wait for input: exit
            // without waiting for it.
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(0)
        }
        Err(f) => {
            eprintln!("pipe-relay: {}", f.message);
            ExitCode::from(u8::try_from(f.code).unwrap_or(1))
        }
    }
}

#[cfg(not(windows))]
fn relay(_: cli::Mode, _: bool) -> ExitCode {
    eprintln!("pipe-relay: Windows named pipes exist on Windows only");
    ExitCode::FAILURE
}

/// `unix-listen` (Linux) and `mux-serve` (the Windows side it starts).
fn mux_main(raw: &[String]) -> ExitCode {
    let mode = match mux::args::parse(raw) {
        Ok(m) => m,
        Err(u) => {
            eprintln!("pipe-relay: {u}");
            return ExitCode::from(2);
        }
    };
    let r: Result<(), (u8, String)> = match mode {
        #[cfg(windows)]
        mux::args::MuxMode::Serve(s) => {
            mux_serve::run(&s).map_err(|f| (u8::try_from(f.code).unwrap_or(1), f.message))
        }
        #[cfg(not(windows))]
        mux::args::MuxMode::Serve(_) => Err((
            1,
            "mux-serve is the Windows side of unix-listen: it runs on Windows".into(),
        )),
        #[cfg(unix)]
        mux::args::MuxMode::Unix(u) => unix::run(&u),
        #[cfg(not(unix))]
        mux::args::MuxMode::Unix(_) => Err((
            1,
            "unix-listen runs on Linux (in WSL), where it starts this program on the Windows side"
                .into(),
        )),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, m)) => {
            eprintln!("pipe-relay: {m}");
            ExitCode::from(code)
        }
    }
}
