//! `cargo xtask`: build, test, demo and benchmark mio-named-pipes on Linux.
//!
//! The crate's code is Windows-only. Here it is built for
//! `x86_64-pc-windows-gnu` with mingw and run under Wine. `setup` installs
//! what a fresh Debian 12 machine lacks; every other command runs it first,
//! so `cargo xtask demo` and `cargo xtask test` need nothing else.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{self, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod bench;
mod compat;
mod json;
mod ready;
mod summary;

use summary::TestCounts;

/// The target the tests run on, under Wine.
const GNU: &str = "x86_64-pc-windows-gnu";
/// Targets that are only type-checked: they catch code that builds with mingw only.
/// On aarch64 the check leaves out the front's `mio-06` feature: mio 0.6
/// depends on winapi 0.2, which does not build for aarch64 at all. The core
/// has no such feature: it is checked whole on both.
const CHECK_ONLY: [(&str, &str, &[&str]); 2] = [
    ("check (x86_64-msvc)", "x86_64-pc-windows-msvc", &[]),
    (
        "check (aarch64-msvc)",
        "aarch64-pc-windows-msvc",
        &["--no-default-features"],
    ),
];
/// The library package: the mio 0.6 front.
const LIB: &str = "mio-named-pipes";
/// The engine, Win32 layer and options every front shares.
const CORE: &str = "named-pipes-core";
/// The async front (tokio, smol, futures), checked with its optional I/O
/// traits on (`--all-features`) and off.
const ASYNC: &str = "async-named-pipes";
/// Seeds of the engine simulation's deep run in `cargo xtask test`.
const SIM_SEEDS_DEEP: u32 = 20_000;
/// The relay program's package.
pub(crate) const RELAY: &str = "pipe-relay";
/// The benchmark package.
const BENCH: &str = "mio-named-pipes-bench";
/// What every mode runs, and the Debian package that provides it: the mingw
/// linker and Wine. A name without `/` is looked up on `PATH`. On Debian 12
/// `wine64` alone brings no `wine`, `wineboot` or `wineserver` command: those
/// come with the package `wine`.
const NEED_ALWAYS: [Need; 7] = [
    Need::new("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64"),
    Need::new("wine", "wine"),
    Need::new("wineboot", "wine"),
    Need::new("wineserver", "wine"),
    Need::new("/usr/lib/wine/wine64", "wine64"),
    // The Linux clients of the relay's Unix-socket tests and benchmark.
    Need::new("socat", "socat"),
    Need::new("curl", "curl"),
];
/// Debian's Rust toolchain, used when rustup cannot install the Windows
/// targets: the commands the Debian path runs and the std sources
/// `-Zbuild-std` compiles.
const NEED_DEBIAN_RUST: [Need; 5] = [
    Need::new("/usr/bin/cargo", "cargo-web"),
    Need::new("/usr/bin/rustc", "rustc-web"),
    Need::new(
        "/usr/lib/rustlib/src/rust/library/std/Cargo.toml",
        "rust-web-src",
    ),
    Need::new("/usr/bin/cargo-clippy", "rust-web-clippy"),
    Need::new("/usr/bin/rustdoc", "rustc-web"),
];
/// The marker tests print where Wine lacks or fakes an API (see tests/util).
const WINE_LIMITATION: &str = "WINE LIMITATION";
/// The benchmark binaries `cargo xtask bench` runs, in order.
const BENCHES: [&str; 2] = ["throughput", "accept"];
/// Default time limit for one test binary under Wine, in seconds.
const DEFAULT_WINE_TIMEOUT: u64 = 600;

type Result<T> = std::result::Result<T, String>;

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("help");
    let rest = args.get(1..).unwrap_or(&[]).to_vec();
    let result = match cmd {
        "setup" => setup(true).map(|_| ()),
        "test" => test(),
        "compat" => summarized("compat", |steps| {
            let w = setup(false)?;
            compat::test_steps(steps, &w)
        }),
        "ready" => summarized("ready", |steps| {
            let w = setup(false)?;
            ready::workflow_step(steps, &w)?;
            ready::msrv_step(steps, &w)?;
            ready::package_step(steps, &w)
        }),
        "demo" => demo(&rest),
        "bench" => bench::bench(&rest),
        "wine-run" => wine_run(&rest),
        "help" | "--help" | "-h" => {
            print!("{}", HELP);
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{HELP}")),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        process::exit(1);
    }
}

const HELP: &str = "\
cargo xtask <command>

  setup   make this machine able to build for x86_64-pc-windows-gnu and run it under Wine
  test    everything that must stay green: fmt, clippy, native tests, MSVC checks, docs,
          the whole test suite under Wine, then mio-named-pipes 0.1.7's tests and
          parity-tokio-ipc 0.4.0's tests against this crate under Wine
  compat  only the last steps of `test`: 0.1.7's and parity-tokio-ipc's tests under Wine
  ready   only the release steps of `test`: actionlint on the CI workflow (and its commands
          documented), the MSRV claim (one rust-version, in the README), cargo package of the
          published crates
  demo    run the examples under Wine: the echo server of each front, the async message client
  bench   run the benchmarks under Wine: wineserver requests of one traced round per
          peer, then timed rounds (--requests-only: the requests alone; --bins B,...:
          only these benchmark binaries; other arguments are passed to the benchmarks)

Environment:
  XTASK_TOOLCHAIN=rustup|debian   force a toolchain (default: rustup if it has the targets)
  XTASK_WINE_TIMEOUT=SECONDS      time limit per test binary under Wine (default 600;
                                  120 for 0.1.7's and parity-tokio-ipc's tests)
";

/// Which Rust toolchain builds for Windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Toolchain {
    /// rustup's toolchain with the Windows targets' prebuilt std.
    Rustup,
    /// Debian's `rustc-web`, building std from source (`-Zbuild-std`).
    Debian,
}

/// Everything needed to run cargo for Windows.
struct WinEnv {
    root: PathBuf,
    toolchain: Toolchain,
    prefix: PathBuf,
}

fn root() -> PathBuf {
    let manifest = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let xtask = manifest.unwrap_or_else(|| env::current_dir().expect("current directory"));
    xtask.parent().map(Path::to_path_buf).unwrap_or(xtask)
}

// ---------------------------------------------------------------- setup

fn setup(loud: bool) -> Result<WinEnv> {
    let root = root();
    ensure_native_tools()?;
    let mut apt = Apt::default();
    apt.ensure(&NEED_ALWAYS)?;
    let toolchain = choose_toolchain()?;
    if toolchain == Toolchain::Debian {
        apt.ensure(&NEED_DEBIAN_RUST)?;
    }
    let prefix = root.join("target").join("wine");
    ensure_prefix(&prefix)?;
    ensure_shim(&root, &prefix)?;
    // actionlint for the workflow step of `cargo xtask test` (which installs
    // it itself where `setup` was not run); `demo` and `bench` need none.
    if loud {
        ready::ensure_actionlint(&root, &mut apt)?;
    }
    if loud || apt.installed_any {
        println!(
            "xtask: ready to build for {GNU} with the {toolchain:?} toolchain; Wine prefix {}",
            prefix.display()
        );
    }
    Ok(WinEnv {
        root,
        toolchain,
        prefix,
    })
}

/// A command (or file) that a step runs, and the Debian package that provides it.
#[derive(Clone, Copy, Debug)]
struct Need {
    /// A command name looked up on `PATH`, or an absolute path.
    what: &'static str,
    /// The Debian package that installs it.
    package: &'static str,
}

impl Need {
    const fn new(what: &'static str, package: &'static str) -> Self {
        Need { what, package }
    }

    fn present(&self) -> bool {
        if self.what.contains('/') {
            Path::new(self.what).exists()
        } else {
            on_path(self.what)
        }
    }
}

/// True when `name` is an executable file in a directory of `PATH`.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = env::var_os("PATH") else {
        return false;
    };
    env::split_paths(&path).any(|dir| {
        fs::metadata(dir.join(name))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// The packages that provide what is missing of `needs`, each once, and the
/// missing names.
fn missing(needs: &[Need]) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut packages = Vec::new();
    let mut names = Vec::new();
    for n in needs.iter().filter(|n| !n.present()) {
        names.push(n.what);
        if !packages.contains(&n.package) {
            packages.push(n.package);
        }
    }
    (packages, names)
}

#[derive(Default)]
struct Apt {
    updated: bool,
    installed_any: bool,
}

impl Apt {
    /// Installs the packages that provide whatever of `needs` is missing, and
    /// checks again afterwards. Where nothing can be installed (no apt-get,
    /// neither root nor sudo, apt-get failing), fails with one line naming
    /// what is missing and the command that would install it.
    fn ensure(&mut self, needs: &[Need]) -> Result<()> {
        let (packages, names) = missing(needs);
        if names.is_empty() {
            return Ok(());
        }
        let fix = format!("apt-get install {}", packages.join(" "));
        let stop = |why: &str| {
            format!(
                "missing {} ({why}); install with: sudo apt-get update && sudo {fix}",
                names.join(", ")
            )
        };
        if !on_path("apt-get") {
            return Err(stop("no apt-get on this machine"));
        }
        let sudo = !is_root();
        if sudo && !on_path("sudo") {
            return Err(stop("not root and no sudo"));
        }
        println!(
            "xtask: missing {}; installing Debian packages: {}",
            names.join(", "),
            packages.join(" ")
        );
        if !self.updated {
            run_quiet(apt_cmd(sudo, &["update", "-qq"]), "apt-get update")
                .map_err(|e| stop(&first_line(&e)))?;
            self.updated = true;
        }
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(packages.iter().copied());
        run_quiet(apt_cmd(sudo, &args), "apt-get install").map_err(|e| stop(&first_line(&e)))?;
        self.installed_any = true;
        let (_, still) = missing(needs);
        if !still.is_empty() {
            return Err(format!(
                "still missing {} after `{fix}`: this machine's packages do not provide them",
                still.join(", ")
            ));
        }
        Ok(())
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn apt_cmd(sudo: bool, args: &[&str]) -> Command {
    let mut c = if sudo {
        let mut c = Command::new("sudo");
        // -n: fail rather than wait for a password nobody will type.
        c.args(["-n", "apt-get"]);
        c
    } else {
        Command::new("apt-get")
    };
    c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    c
}

fn choose_toolchain() -> Result<Toolchain> {
    match env::var("XTASK_TOOLCHAIN").as_deref() {
        Ok("debian") => return Ok(Toolchain::Debian),
        Ok("rustup") => {
            return if rustup_targets(true) {
                Ok(Toolchain::Rustup)
            } else {
                Err("XTASK_TOOLCHAIN=rustup, but rustup cannot install the Windows targets".into())
            }
        }
        Ok(other) => {
            return Err(format!(
                "XTASK_TOOLCHAIN must be `rustup` or `debian`, not `{other}`"
            ))
        }
        Err(_) => {}
    }
    if rustup_targets(!apt_has_debian_rust()) {
        Ok(Toolchain::Rustup)
    } else {
        Ok(Toolchain::Debian)
    }
}

/// `cargo fmt` and `cargo clippy` for the native steps: rustup's proxies
/// exist even when the component does not, so ask each for its version, and
/// add the missing components with rustup.
fn ensure_native_tools() -> Result<()> {
    let works = |sub: &str| {
        Command::new(native_cargo())
            .args([sub, "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let missing: Vec<&str> = [("fmt", "rustfmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(sub, _)| !works(sub))
        .map(|(_, component)| component)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let fix = format!("rustup component add {}", missing.join(" "));
    println!(
        "xtask: missing cargo {}; running `{fix}`",
        missing.join(", cargo ")
    );
    let mut c = Command::new("rustup");
    c.args(["component", "add"]).args(&missing);
    run_quiet(c, &fix).map_err(|e| {
        format!(
            "missing {} for the native steps ({}); install with: {fix}",
            missing.join(", "),
            first_line(&e)
        )
    })
}

fn apt_has_debian_rust() -> bool {
    missing(&NEED_DEBIAN_RUST).1.is_empty()
}

/// True when rustup has (or, with `install`, could add) every Windows target.
fn rustup_targets(install: bool) -> bool {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return false;
    };
    let have = String::from_utf8_lossy(&out.stdout).to_string();
    let missing: Vec<&str> = std::iter::once(GNU)
        .chain(CHECK_ONLY.iter().map(|c| c.1))
        .filter(|t| !have.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    if !install {
        return false;
    }
    println!(
        "xtask: adding rust targets with rustup: {}",
        missing.join(" ")
    );
    let ok = Command::new("rustup")
        .args(["target", "add"])
        .args(&missing)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!(
            "xtask: rustup could not add them; using Debian's Rust toolchain with -Zbuild-std"
        );
    }
    ok
}

fn wine_cmd(prefix: &Path, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("WINEPREFIX", prefix).env("WINEDEBUG", "-all");
    c
}

fn ensure_prefix(prefix: &Path) -> Result<()> {
    if prefix.join("system.reg").exists() {
        return Ok(());
    }
    println!(
        "xtask: creating the Wine prefix {} (once, a few seconds)",
        prefix.display()
    );
    fs::create_dir_all(prefix).map_err(|e| format!("creating {}: {e}", prefix.display()))?;
    let mut c = wine_cmd(prefix, "wine");
    c.args(["wineboot", "--init"]);
    run_quiet(c, "wineboot --init")?;
    let mut w = wine_cmd(prefix, "wineserver");
    w.arg("-w");
    run_quiet(w, "wineserver -w")?;
    if !prefix.join("system.reg").exists() {
        return Err(format!(
            "Wine did not create its prefix at {}",
            prefix.display()
        ));
    }
    Ok(())
}

/// Wine 8 lacks bcryptprimitives.dll (imported by every Rust >= 1.78 binary):
/// build the shim from `xtask/shim` and put it in the prefix's system32,
/// unless this Wine ships the DLL itself.
fn ensure_shim(root: &Path, prefix: &Path) -> Result<()> {
    let system32 = prefix.join("drive_c/windows/system32");
    let dest = system32.join("bcryptprimitives.dll");
    if let Ok(existing) = fs::read(&dest) {
        if contains(&existing, b"Wine placeholder DLL") {
            return Ok(()); // Wine has a builtin bcryptprimitives.dll.
        }
    }
    let src = root.join("xtask/shim/bcryptprimitives.c");
    let def = root.join("xtask/shim/bcryptprimitives.def");
    let out_dir = root.join("target/xtask");
    let built = out_dir.join("bcryptprimitives.dll");
    let stale = match (fs::metadata(&built), fs::metadata(&src)) {
        (Ok(b), Ok(s)) => b.modified().ok() < s.modified().ok(),
        _ => true,
    };
    if stale {
        fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
        let mut c = Command::new("x86_64-w64-mingw32-gcc");
        c.args(["-O2", "-shared", "-s", "-o"])
            .arg(&built)
            .arg(&src)
            .arg(&def)
            .arg("-lbcrypt");
        run_quiet(c, "building the bcryptprimitives.dll shim")?;
    }
    let new = fs::read(&built).map_err(|e| e.to_string())?;
    if fs::read(&dest).ok().as_deref() != Some(&new[..]) {
        fs::write(&dest, &new).map_err(|e| format!("installing {}: {e}", dest.display()))?;
    }
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------- cargo

impl WinEnv {
    /// `cargo <sub> <args> --target <target>` for a Windows target.
    fn cargo(&self, sub: &str, target: &str) -> Command {
        let mut c = match self.toolchain {
            Toolchain::Rustup => {
                let mut c = Command::new(native_cargo());
                c.arg(sub);
                c
            }
            Toolchain::Debian => {
                let mut c = Command::new("/usr/bin/cargo");
                for var in [
                    "RUSTC",
                    "RUSTDOC",
                    "RUSTUP_TOOLCHAIN",
                    "CARGO",
                    "RUSTC_WRAPPER",
                ] {
                    c.env_remove(var);
                }
                let path = env::var_os("PATH").unwrap_or_default();
                let mut p = OsString::from("/usr/bin:");
                p.push(path);
                c.env("PATH", p)
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env("CARGO_TARGET_DIR", self.root.join("target/debian"));
                c.arg(sub).arg("-Zbuild-std");
                c
            }
        };
        let runner = format!("{} wine-run", current_exe().display());
        c.current_dir(&self.root)
            .args(["--target", target])
            .env(
                "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
                "x86_64-w64-mingw32-gcc",
            )
            .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", runner)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all");
        c
    }

    /// Where cargo puts what it builds for Windows with this toolchain.
    fn target_dir(&self) -> PathBuf {
        match self.toolchain {
            Toolchain::Rustup => env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| self.root.join("target"), PathBuf::from),
            Toolchain::Debian => self.root.join("target/debian"),
        }
    }

    /// Keeps one wineserver alive for the whole run, so that test binaries
    /// do not each pay for a server start; stopped when dropped.
    fn wineserver(&self) -> WineServer {
        let mut c = wine_cmd(&self.prefix, "wineserver");
        c.arg("-p");
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        WineServer {
            prefix: self.prefix.clone(),
        }
    }
}

struct WineServer {
    prefix: PathBuf,
}

impl Drop for WineServer {
    fn drop(&mut self) {
        let mut c = wine_cmd(&self.prefix, "wineserver");
        let _ = c
            .arg("-k")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn native_cargo() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn native(args: &[&str]) -> Command {
    let mut c = Command::new(native_cargo());
    c.args(args).current_dir(root());
    c
}

fn current_exe() -> PathBuf {
    env::current_exe().expect("path of the xtask binary")
}

fn run_quiet(mut c: Command, what: &str) -> Result<()> {
    let out = c
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `c`, echoing its standard output line by line, and returns that output.
fn run_tee(mut c: Command) -> Result<(ExitStatus, String)> {
    c.stdout(Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", c.get_program()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut all = String::new();
    let mut out = std::io::stdout();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let _ = writeln!(out, "{line}");
        all.push_str(&line);
        all.push('\n');
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok((status, all))
}

// ---------------------------------------------------------------- test

struct Step {
    name: &'static str,
    secs: f64,
    note: String,
}

fn test() -> Result<()> {
    summarized("test", test_steps)
}

/// Runs `steps` and prints how long each took and what it found.
fn summarized(command: &str, steps_of: impl FnOnce(&mut Vec<Step>) -> Result<()>) -> Result<()> {
    let started = Instant::now();
    let mut steps: Vec<Step> = Vec::new();
    let result = steps_of(&mut steps);
    println!("\n==== cargo xtask {command}: summary");
    for s in &steps {
        println!("{:<28} {:>7.1}s  {}", s.name, s.secs, s.note);
    }
    println!("{:<28} {:>7.1}s", "total", started.elapsed().as_secs_f64());
    result
}

fn step(
    steps: &mut Vec<Step>,
    name: &'static str,
    f: impl FnOnce() -> Result<String>,
) -> Result<()> {
    println!("\n==== {name}");
    let t = Instant::now();
    let r = f();
    let secs = t.elapsed().as_secs_f64();
    match r {
        Ok(note) => {
            steps.push(Step {
                name,
                secs,
                note: format!("ok {note}"),
            });
            Ok(())
        }
        Err(e) => {
            steps.push(Step {
                name,
                secs,
                note: "FAILED".into(),
            });
            Err(format!("step `{name}` failed: {e}"))
        }
    }
}

fn status_ok(c: Command) -> Result<String> {
    let (status, _) = run_tee(c)?;
    if status.success() {
        Ok(String::new())
    } else {
        Err(format!("exited with {status}"))
    }
}

fn test_steps(steps: &mut Vec<Step>) -> Result<()> {
    let mut winenv = None;
    step(steps, "setup", || {
        winenv = Some(setup(false)?);
        Ok(String::new())
    })?;
    let w = winenv.expect("set by the setup step");

    step(steps, "rustfmt --check", || {
        status_ok(native(&["fmt", "--all", "--", "--check"]))
    })?;
    ready::workflow_step(steps, &w)?;
    step(steps, "clippy (native)", || {
        status_ok(native(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
            "-D",
            "clippy::incompatible_msrv",
        ]))
    })?;
    // Every clippy run denies `incompatible_msrv` (std items newer than the
    // claimed `rust-version`) by name, so no `allow` can hide it: with the
    // three runs below and the native one, for all targets and features.
    step(steps, "clippy (windows-gnu)", || {
        let mut c = w.cargo("clippy", GNU);
        c.args([
            "--workspace",
            "--exclude",
            "xtask",
            "--all-targets",
            "--",
            "-D",
            "warnings",
            "-D",
            "clippy::incompatible_msrv",
        ]);
        status_ok(c)?;
        // The front without its mio 0.6 integration must build too (the
        // core with it: it has no features).
        let mut c = w.cargo("clippy", GNU);
        c.args([
            "-p",
            LIB,
            "-p",
            CORE,
            "-p",
            ASYNC,
            "--no-default-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
            "-D",
            "clippy::incompatible_msrv",
        ]);
        status_ok(c)?;
        // The async front with its tokio and futures-io traits (and the
        // tests that use them).
        let mut c = w.cargo("clippy", GNU);
        c.args([
            "-p",
            ASYNC,
            "--all-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
            "-D",
            "clippy::incompatible_msrv",
        ]);
        status_ok(c)
    })?;
    ready::msrv_step(steps, &w)?;
    step(steps, "native tests", || {
        let (status, out) = run_tee(native(&["test", "--workspace"]))?;
        let counts = TestCounts::parse(&out);
        if !status.success() {
            return Err(format!("exited with {status}"));
        }
        Ok(counts.to_string())
    })?;
    step(steps, "engine simulation, deep", || {
        // The native tests run 500 seeds; release mode runs 40 times as
        // many in seconds (the seeds that found the engine's subtler bugs
        // lay in the thousands).
        let mut c = native(&["test", "--release", "-p", CORE, "--lib", "engine::sim"]);
        c.env("SIM_SEEDS", SIM_SEEDS_DEEP.to_string());
        let (status, out) = run_tee(c)?;
        if !status.success() {
            return Err(format!("exited with {status}"));
        }
        Ok(format!(
            "{SIM_SEEDS_DEEP} seeds; {}",
            TestCounts::parse(&out)
        ))
    })?;
    for (name, target, extra) in CHECK_ONLY {
        step(steps, name, || {
            let mut c = w.cargo("check", target);
            c.args(["-p", LIB, "-p", CORE, "-p", ASYNC])
                .args(["--lib", "--tests", "--examples"])
                .args(extra);
            status_ok(c)?;
            let mut c = w.cargo("check", target);
            c.args(["-p", ASYNC, "--all-features", "--lib", "--tests"]);
            status_ok(c)
        })?;
    }
    step(steps, "doc (windows-gnu)", || {
        let mut c = w.cargo("doc", GNU);
        c.args([
            "-p",
            LIB,
            "-p",
            CORE,
            "-p",
            ASYNC,
            "--all-features",
            "--no-deps",
        ])
        .env("RUSTDOCFLAGS", "-D warnings");
        status_ok(c)
    })?;
    ready::package_step(steps, &w)?;
    step(steps, "tests under Wine", || {
        let _server = w.wineserver();
        let mut c = w.cargo("test", GNU);
        // --show-output: tests that meet a Wine limitation say so in their output.
        c.args(["-p", LIB, "-p", CORE, "-p", RELAY, "-p", ASYNC])
            .args(["--all-features", "--", "--show-output"]);
        let (status, out) = run_tee(c)?;
        let counts = TestCounts::parse(&out);
        let limits: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(WINE_LIMITATION))
            .collect();
        println!("\n{counts}");
        if !limits.is_empty() {
            println!(
                "{} checks could not be made under Wine, as the tests say:",
                limits.len()
            );
            for l in &limits {
                println!("  {}", l.trim());
            }
        }
        if !status.success() {
            return Err(format!("exited with {status}; {counts}"));
        }
        if counts.passed == 0 {
            return Err("no test ran under Wine".into());
        }
        Ok(format!(
            "{counts}; {} Wine limitations reported",
            limits.len()
        ))
    })?;
    step(steps, "relay unix-listen from Linux (Wine)", || {
        // The Linux relay in front of the Windows relay and the Docker-like
        // test server, both built here; the tests fail if they are missing.
        let mut c = w.cargo("build", GNU);
        c.args(["-p", RELAY, "--bin", RELAY, "--example", "http_pipe_server"]);
        status_ok(c)?;
        let _server = w.wineserver();
        let dir = w.target_dir().join(GNU).join("debug");
        let mut c = native(&[
            "test",
            "-p",
            RELAY,
            "--test",
            "unix",
            "--",
            "--test-threads=2",
        ]);
        c.env("PIPE_RELAY_EXE", dir.join(format!("{RELAY}.exe")))
            .env(
                "PIPE_RELAY_TEST_SERVER",
                dir.join("examples").join("http_pipe_server.exe"),
            )
            .env("PIPE_RELAY_REQUIRE_WINDOWS", "1")
            .env("WINEPREFIX", &w.prefix)
            .env("WINEDEBUG", "-all");
        let (status, out) = run_tee(c)?;
        let counts = TestCounts::parse(&out);
        if !status.success() {
            return Err(format!("exited with {status}; {counts}"));
        }
        Ok(counts.to_string())
    })?;
    compat::test_steps(steps, &w)
}

// ---------------------------------------------------------------- demo

/// The examples `demo` runs: the mio front's echo server (given `demo`'s
/// arguments), then the async front's echo server and message client on tokio.
const DEMOS: [(&str, &str, &[&str]); 3] = [
    (LIB, "echo", &[]),
    (ASYNC, "tokio_echo", &["--features", "tokio"]),
    (ASYNC, "message_client", &["--features", "tokio"]),
];

fn demo(args: &[String]) -> Result<()> {
    let w = setup(false)?;
    let _server = w.wineserver();
    for (package, example, features) in DEMOS {
        println!("\n==== {package}: example {example}");
        let mut c = w.cargo("run", GNU);
        c.args(["-p", package, "--release", "--example", example])
            .args(features)
            .arg("--");
        if example == "echo" {
            c.args(args);
        }
        let status = c.status().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("the {example} example exited with {status}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- runner

/// Cargo's runner for the Windows target: runs one binary under Wine with a
/// time limit, so that a hung test fails, names its binary, and never hangs CI.
fn wine_run(args: &[String]) -> Result<()> {
    use std::os::unix::process::CommandExt;

    let (exe, rest) = args
        .split_first()
        .ok_or("wine-run needs the path of an .exe")?;
    let limit = match env::var("XTASK_WINE_TIMEOUT") {
        Ok(s) => s.parse::<u64>().map_err(|_| {
            format!("XTASK_WINE_TIMEOUT must be a whole number of seconds, not `{s}`")
        })?,
        Err(_) => DEFAULT_WINE_TIMEOUT,
    };
    let name = Path::new(exe)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut child = Command::new("wine")
        .arg(exe)
        .args(rest)
        .env(
            "WINEDEBUG",
            env::var("WINEDEBUG").unwrap_or_else(|_| "-all".into()),
        )
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start wine: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(limit);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            process::exit(status.code().unwrap_or(1));
        }
        if Instant::now() >= deadline {
            // The whole process group (wine may start helpers), then the
            // child itself in case the group kill was refused.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &group])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "\nxtask: TIMEOUT: {name} ran longer than {limit} s under Wine and was killed"
            );
            process::exit(124);
        }
        thread::sleep(Duration::from_millis(20));
    }
}
