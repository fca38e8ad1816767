//! The compatibility steps of `cargo xtask test`: the test suites of the
//! crate this one succeeds, and of a user of it, run against this crate.
//!
//! Nothing of theirs is kept in the repository. Cargo downloads the packages
//! (a scratch crate in `target/compat/fetch` depends on them at exact
//! versions; `cargo metadata` says where their sources are), and scratch
//! crates under `target/compat` build their tests against this crate:
//!
//! - mio-named-pipes 0.1.7's integration tests (`tests/*.rs`), with the
//!   dependencies 0.1.7's manifest names, and this crate as the library;
//! - parity-tokio-ipc 0.4.0's unit tests, in a workspace whose
//!   `[patch.crates-io]` puts this crate in place of every
//!   `mio-named-pipes = "0.1"` (its own and tokio-named-pipes'); the step
//!   checks in `cargo tree` and `Cargo.lock` that the patch took.
//!
//! - tokio's `tests/net_named_pipe.rs` (tokio at the version of the
//!   workspace's `Cargo.lock`), with only its
//!   `use tokio::net::windows::named_pipe::{...}` line pointed at
//!   `async-named-pipes`, and the runnable examples of tokio's named pipe
//!   docs (`src/net/windows/named_pipe.rs`), their import changed the
//!   same way, each a test with the other end of the pipe when the example
//!   has one end only.
//!
//! All run under Wine through `xtask wine-run`, with a shorter time limit
//! than the crate's own tests, so that a hang fails fast.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::json::Json;
use crate::summary::TestCounts;
use crate::{native_cargo, run_tee, step, Result, Step, WinEnv, GNU};

/// The predecessor, whose integration tests run against this crate.
const OLD: (&str, &str) = ("mio-named-pipes", "0.1.7");
/// A user of the predecessor, whose unit tests run with this crate patched in.
const USER: (&str, &str) = ("parity-tokio-ipc", "0.4.0");
/// Time limit per test binary, in seconds, unless `XTASK_WINE_TIMEOUT` is set.
const DEFAULT_TIMEOUT: &str = "120";
/// Where this repository keeps the mio 0.6 front (the crate that replaces 0.1.7).
const MIO_DIR: &str = "mio";

/// Where cargo put a downloaded package, and what its manifest says.
struct Package {
    /// The package's directory (holding its `Cargo.toml`).
    dir: PathBuf,
    version: String,
    edition: String,
    /// Its dependencies, as `cargo metadata` lists them.
    deps: Vec<Dep>,
}

/// One dependency of a downloaded package.
#[derive(Debug, PartialEq)]
struct Dep {
    name: String,
    /// The name the package's code uses, when it renames the dependency.
    rename: Option<String>,
    req: String,
    /// `None` (normal), `dev` or `build`.
    kind: Option<String>,
    optional: bool,
    default_features: bool,
    features: Vec<String>,
    /// A `cfg(...)` or target name the dependency is limited to.
    target: Option<String>,
}

struct Packages {
    old: Package,
    user: Package,
    tokio: Package,
}

/// The tokio whose named pipe tests and doc examples run against the
/// async front: the version of the workspace's `Cargo.lock`.
fn tokio_version(root: &Path) -> Result<String> {
    let lock = fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|e| format!("reading Cargo.lock: {e}"))?;
    lock.split("[[package]]")
        .find(|p| p.contains("\nname = \"tokio\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_string())
        .ok_or_else(|| "Cargo.lock has no tokio".into())
}

/// Runs the compatibility steps, after the crate's own tests.
pub fn test_steps(steps: &mut Vec<Step>, w: &WinEnv) -> Result<()> {
    let scratch = w.root.join("target/compat");
    let mut packages = None;
    step(steps, "compat: fetch packages", || {
        let p = fetch(&scratch, &tokio_version(&w.root)?)?;
        println!("{} {}: {}", OLD.0, OLD.1, p.old.dir.display());
        println!("{} {}: {}", USER.0, USER.1, p.user.dir.display());
        println!("tokio: {}", p.tokio.dir.display());
        packages = Some(p);
        Ok(String::new())
    })?;
    let p = packages.expect("set by the fetch step");
    let ours = w.root.join(MIO_DIR);
    step(steps, "0.1.7's tests under Wine", || {
        let manifest = old_tests_crate(&scratch.join("old-tests"), &ours, &p.old)?;
        let mut c = compat_cargo(w, "test", &manifest);
        c.arg("--tests");
        run_counted(w, c)
    })?;
    step(steps, "parity-tokio-ipc under Wine", || {
        let manifest = user_workspace(&scratch.join("user-tests"), &ours, &p.user)?;
        check_patched(&manifest, &ours)?;
        let mut c = compat_cargo(w, "test", &manifest);
        c.args(["-p", USER.0, "--lib"]);
        run_counted(w, c)
    })?;
    step(steps, "tokio's pipe tests under Wine", || {
        let manifest = tokio_tests_crate(&scratch.join("tokio-tests"), &w.root, &p.tokio)?;
        let mut c = compat_cargo(w, "test", &manifest);
        c.arg("--tests");
        run_counted(w, c)
    })
}

/// `cargo <sub>` for Windows on a scratch manifest, through the toolchain
/// `cargo xtask` chose, sharing the target directory of the crate's own build
/// (for the Debian toolchain, its std built with `-Zbuild-std`).
fn compat_cargo(w: &WinEnv, sub: &str, manifest: &Path) -> Command {
    let mut c = w.cargo(sub, GNU);
    c.arg("--manifest-path").arg(manifest);
    if env::var_os("CARGO_TARGET_DIR").is_none() && w.toolchain == crate::Toolchain::Rustup {
        c.env("CARGO_TARGET_DIR", w.root.join("target"));
    }
    c.env(
        "XTASK_WINE_TIMEOUT",
        env::var("XTASK_WINE_TIMEOUT").unwrap_or_else(|_| DEFAULT_TIMEOUT.into()),
    );
    c
}

/// Runs a `cargo test` under Wine and counts its results.
fn run_counted(w: &WinEnv, c: Command) -> Result<String> {
    let _server = w.wineserver();
    let (status, out) = run_tee(c)?;
    let counts = TestCounts::parse(&out);
    println!("\n{counts}");
    if !status.success() {
        return Err(format!("exited with {status}; {counts}"));
    }
    if counts.passed == 0 {
        return Err("no test ran".into());
    }
    Ok(counts.to_string())
}

// ---------------------------------------------------------------- fetch

/// Makes cargo download both packages and says where they are.
fn fetch(scratch: &Path, tokio: &str) -> Result<Packages> {
    let dir = scratch.join("fetch");
    let manifest = format!(
        "# Written by `cargo xtask test`: makes cargo download the packages whose\n\
         # tests run against this crate.\n\
         [package]\n\
         name = \"compat-fetch\"\n\
         version = \"0.0.0\"\n\
         edition = \"2021\"\n\
         publish = false\n\n\
         [lib]\n\
         path = \"lib.rs\"\n\n\
         [dependencies]\n\
         old = {{ package = \"{}\", version = \"={}\" }}\n\
         user = {{ package = \"{}\", version = \"={}\" }}\n\
         tokio = {{ version = \"={}\", default-features = false }}\n\n\
         [workspace]\n",
        OLD.0, OLD.1, USER.0, USER.1, tokio
    );
    write(&dir.join("Cargo.toml"), &manifest)?;
    write(&dir.join("lib.rs"), "")?;
    let out = Command::new(native_cargo())
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cannot start cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta = Json::parse(&String::from_utf8_lossy(&out.stdout))?;
    Ok(Packages {
        old: package(&meta, OLD)?,
        user: package(&meta, USER)?,
        tokio: package(&meta, ("tokio", tokio))?,
    })
}

/// The package `name` `version` of `cargo metadata`'s output.
fn package(meta: &Json, (name, version): (&str, &str)) -> Result<Package> {
    let p = meta
        .get("packages")
        .map(Json::items)
        .unwrap_or_default()
        .iter()
        .find(|p| {
            p.get("name").and_then(Json::str) == Some(name)
                && p.get("version").and_then(Json::str) == Some(version)
        })
        .ok_or_else(|| format!("cargo metadata lists no {name} {version}"))?;
    let text = |v: &Json, key: &str| v.get(key).and_then(Json::str).map(str::to_string);
    let manifest = text(p, "manifest_path").ok_or("a package without manifest_path")?;
    let dir = Path::new(&manifest)
        .parent()
        .ok_or("a manifest path without a directory")?
        .to_path_buf();
    let deps = p
        .get("dependencies")
        .map(Json::items)
        .unwrap_or_default()
        .iter()
        .map(|d| Dep {
            name: text(d, "name").unwrap_or_default(),
            rename: text(d, "rename"),
            req: text(d, "req").unwrap_or_else(|| "*".into()),
            kind: text(d, "kind"),
            optional: d.get("optional").and_then(Json::bool).unwrap_or(false),
            default_features: d
                .get("uses_default_features")
                .and_then(Json::bool)
                .unwrap_or(true),
            features: d
                .get("features")
                .map(Json::items)
                .unwrap_or_default()
                .iter()
                .filter_map(|f| f.str().map(str::to_string))
                .collect(),
            target: text(d, "target"),
        })
        .collect();
    Ok(Package {
        dir,
        version: version.to_string(),
        edition: text(p, "edition").unwrap_or_else(|| "2015".into()),
        deps,
    })
}

// ---------------------------------------------------------------- 0.1.7's tests

/// Writes a crate whose test targets are the predecessor's `tests/*.rs`
/// (used where cargo downloaded them), with every non-optional dependency
/// of its manifest (normal and dev: its tests may use either) and this
/// crate as the library they test. Returns the manifest's path.
fn old_tests_crate(dir: &Path, root: &Path, old: &Package) -> Result<PathBuf> {
    let mut tests: Vec<PathBuf> = fs::read_dir(old.dir.join("tests"))
        .map_err(|e| format!("{}: {e}", old.dir.join("tests").display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    tests.sort();
    if tests.is_empty() {
        return Err(format!("no tests/*.rs in {}", old.dir.display()));
    }
    let lib = OLD.0.replace('-', "_");
    let mut m = format!(
        "# Written by `cargo xtask test`: the integration tests of {} {}\n\
         # (where cargo downloaded them), built against this crate.\n\
         [package]\n\
         name = \"compat-old-tests\"\n\
         version = \"0.0.0\"\n\
         edition = \"{}\"\n\
         publish = false\n\
         autotests = false\n\n\
         [workspace]\n",
        OLD.0, OLD.1, old.edition
    );
    for t in &tests {
        let name = t.file_stem().unwrap_or_default().to_string_lossy();
        writeln!(
            m,
            "\n[[test]]\nname = {}\npath = {}",
            quote(&name),
            quote_path(t)
        )
        .unwrap();
    }
    writeln!(
        m,
        "\n[dev-dependencies.{lib}]\npackage = {}\npath = {}",
        quote(OLD.0),
        quote_path(root)
    )
    .unwrap();
    m.push_str(&dev_dependencies(&old.deps, &lib)?);
    let manifest = dir.join("Cargo.toml");
    write(&manifest, &m)?;
    Ok(manifest)
}

/// The manifest sections that make `deps` dev-dependencies; `lib` is the
/// name already taken by the library under test.
fn dev_dependencies(deps: &[Dep], lib: &str) -> Result<String> {
    let mut out = String::new();
    let mut seen: Vec<(Option<&str>, &str)> = Vec::new();
    for d in deps {
        if d.optional || d.kind.as_deref() == Some("build") {
            continue;
        }
        let key = d.rename.as_deref().unwrap_or(&d.name);
        if key.replace('-', "_") == lib {
            return Err(format!("{} depends on a crate named like itself", OLD.0));
        }
        if seen.contains(&(d.target.as_deref(), key)) {
            // The same dependency as normal and dev dependency: one entry.
            continue;
        }
        seen.push((d.target.as_deref(), key));
        let table = match &d.target {
            Some(t) => format!("target.{}.dev-dependencies", quote(t)),
            None => "dev-dependencies".into(),
        };
        let features: Vec<String> = d.features.iter().map(|f| quote(f)).collect();
        writeln!(
            out,
            "\n[{table}.{}]\npackage = {}\nversion = {}\ndefault-features = {}\nfeatures = [{}]",
            quote(key),
            quote(&d.name),
            quote(&d.req),
            d.default_features,
            features.join(", ")
        )
        .unwrap();
    }
    Ok(out)
}

// ---------------------------------------------------------------- parity-tokio-ipc

/// Copies the user's package into a scratch workspace that patches this
/// crate in for `mio-named-pipes`. Returns the workspace manifest's path.
fn user_workspace(dir: &Path, root: &Path, user: &Package) -> Result<PathBuf> {
    let member = dir.join(format!("{}-{}", USER.0, USER.1));
    if member.exists() {
        fs::remove_dir_all(&member).map_err(|e| format!("{}: {e}", member.display()))?;
    }
    copy_dir(&user.dir, &member)?;
    let m = format!(
        "# Written by `cargo xtask test`: {} {} (copied from where cargo\n\
         # downloaded it) with this crate in place of {}.\n\
         [workspace]\n\
         members = [{}]\n\
         resolver = \"1\"\n\n\
         [patch.crates-io]\n\
         {} = {{ path = {} }}\n",
        USER.0,
        USER.1,
        OLD.0,
        quote(&member.file_name().unwrap_or_default().to_string_lossy()),
        OLD.0,
        quote_path(root)
    );
    let manifest = dir.join("Cargo.toml");
    write(&manifest, &m)?;
    Ok(manifest)
}

/// Fails unless every `mio-named-pipes` in the workspace's graph is this
/// crate: as `cargo tree` shows it, and in `Cargo.lock` (no registry source).
fn check_patched(manifest: &Path, root: &Path) -> Result<()> {
    let out = Command::new(native_cargo())
        .args(["tree", "--target", GNU, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--manifest-path"])
        .arg(manifest)
        .output()
        .map_err(|e| format!("cannot start cargo tree: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("cargo tree failed ({}):\n{stderr}", out.status));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let lock = fs::read_to_string(manifest.with_file_name("Cargo.lock"))
        .map_err(|e| format!("reading the scratch Cargo.lock: {e}"))?;
    let ours = format!("({})", root.display());
    match patched(&tree, &lock, OLD.0, &ours) {
        Ok(used) => {
            println!("{} used by {}: {used}", OLD.0, USER.0);
            Ok(())
        }
        Err(e) => {
            let lines: Vec<&str> = tree.lines().filter(|l| l.contains(OLD.0)).collect();
            Err(format!(
                "{e}\n`cargo tree` lines naming {}:\n{}\n{stderr}\
                 (a [patch] takes only when the patched crate's version matches the requirement: 0.1.x)",
                OLD.0,
                lines.join("\n")
            ))
        }
    }
}

/// The one copy of `name` in `tree` (lines `name vX.Y.Z (source)`), if it is
/// the one at `ours` (`(path)`) and `lock` has it without a registry source.
fn patched(tree: &str, lock: &str, name: &str, ours: &str) -> Result<String> {
    let prefix = format!("{name} v");
    let mut used: Vec<&str> = tree
        .lines()
        .map(|l| l.trim().trim_end_matches(" (*)"))
        .filter(|l| l.starts_with(&prefix))
        .collect();
    used.sort();
    used.dedup();
    match used.as_slice() {
        [] => return Err(format!("no {name} in the crate graph")),
        [one] if one.ends_with(ours) => {}
        _ => return Err(format!("{name} used: {}, not only {ours}", used.join(", "))),
    }
    let from_registry: Vec<&str> = lock
        .split("[[package]]")
        .filter(|p| p.contains(&format!("name = \"{name}\"\n")))
        .filter(|p| p.contains("\nsource = "))
        .collect();
    if !from_registry.is_empty() {
        return Err(format!(
            "Cargo.lock has {name} from a registry:{}",
            from_registry.join("[[package]]")
        ));
    }
    Ok(used[0].to_string())
}

// ---------------------------------------------------------------- tokio's tests

/// The module path of tokio's named pipes, in their `use` lines.
const TOKIO_PIPES: &str = "tokio::net::windows::named_pipe";
/// The crate tokio's tests and examples are pointed at.
const ASYNC: &str = "async_named_pipes";

/// The examples of tokio's named pipe docs that run here, by pipe name:
/// the server loop, the client open-with-retry loops, the clients'
/// readiness ones (`readable`, `writable`, `try_read`, `try_read_buf`,
/// `try_write` and their vectored forms), and every self-contained one
/// (both ends in the example) of the options. Left out: `info()` (tokio's
/// `max_instances` is a `u32`, ours an `Option`), the servers' readiness
/// ones (they never call `connect`, and wait for readiness of a pipe with no
/// client), the clients' `ready` (it writes until an error, for ever), `write_dac` (another option set), `first_pipe_instance`'s
/// two (Wine does not enforce the flag) and `disconnect`'s (a client's write
/// after the server's disconnect is `BrokenPipe` here, with the OS error 233
/// inside it, where tokio's example expects `raw_os_error() == Some(233)`).
const TOKIO_EXAMPLES: &[&str] = &[
    r"\\.\pipe\named-pipe-idiomatic-server",
    r"\\.\pipe\named-pipe-idiomatic-client",
    r"\\.\pipe\mynamedpipe",
    r"\\.\pipe\tokio-named-pipe-new",
    r"\\.\pipe\tokio-named-pipe-access-inbound-err1",
    r"\\.\pipe\tokio-named-pipe-access-inbound-err2",
    r"\\.\pipe\tokio-named-pipe-access-inbound",
    r"\\.\pipe\tokio-named-pipe-access-outbound-err1",
    r"\\.\pipe\tokio-named-pipe-access-outbound-err2",
    r"\\.\pipe\tokio-named-pipe-access-outbound",
    r"\\.\pipe\tokio-named-pipe-max-instances",
    r"\\.\pipe\tokio-named-pipe-create",
    r"\\.\pipe\tokio-named-pipe-client-new",
    r"\\.\pipe\tokio-named-pipe-client-readable",
    r"\\.\pipe\tokio-named-pipe-client-try-read",
    r"\\.\pipe\tokio-named-pipe-client-try-read-vectored",
    r"\\.\pipe\tokio-named-pipe-client-writable",
    r"\\.\pipe\tokio-named-pipe-client-try-write",
    r"\\.\pipe\tokio-named-pipe-client-try-write-vectored",
];

/// `line` with tokio's named pipe module replaced by this crate, if it is
/// a `use` of it.
fn point_use_at_us(line: &str) -> Option<String> {
    let t = line.trim_start();
    if !t.starts_with("use ") || !t.contains(TOKIO_PIPES) {
        return None;
    }
    Some(if t.trim_end() == format!("use {TOKIO_PIPES};") {
        line.replace(
            &format!("use {TOKIO_PIPES};"),
            &format!("use {ASYNC} as named_pipe;"),
        )
    } else {
        line.replace(&format!("{TOKIO_PIPES}::"), &format!("{ASYNC}::"))
    })
}

/// tokio's test file with its one `use` of the named pipe module pointed
/// at this crate, and nothing else changed.
fn rewrite_tokio_test(text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rewritten = 0;
    for line in text.split_inclusive('\n') {
        match point_use_at_us(line) {
            Some(l) => {
                rewritten += 1;
                out.push_str(&l);
            }
            None => out.push_str(line),
        }
    }
    match rewritten {
        1 => Ok(out),
        n => Err(format!(
            "{n} lines use {TOKIO_PIPES} in tokio's test (expected one)"
        )),
    }
}

/// One code example of a doc comment.
#[derive(Debug, PartialEq)]
struct Example {
    /// The line of its opening fence, 1-based.
    line: usize,
    /// The pipe name of its `const PIPE_NAME`.
    pipe: Option<String>,
    /// Marked `no_run`: rustdoc only compiles it (it needs another process).
    no_run: bool,
    /// The code as rustdoc compiles it (hidden `# ` lines included).
    code: String,
}

/// The Rust code examples of the doc comments (`///`) of `text`, except
/// those rustdoc does not run as they are (`should_panic`, `ignore`,
/// `compile_fail`, other languages).
fn doc_examples(text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut open: Option<(usize, bool, bool, Vec<String>)> = None;
    for (i, line) in text.lines().enumerate() {
        let Some(doc) = line.trim_start().strip_prefix("///") else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        if let Some(tag) = doc.trim_end().strip_prefix("```") {
            match open.take() {
                None => {
                    let runs = tag.split(',').map(str::trim).all(|t| {
                        matches!(t, "" | "rust" | "no_run" | "edition2018" | "edition2021")
                    });
                    let no_run = tag.split(',').any(|t| t.trim() == "no_run");
                    open = Some((i + 1, runs, no_run, Vec::new()));
                }
                Some((line, runs, no_run, body)) => {
                    if runs {
                        let code = body.join("\n");
                        let pipe = code.lines().find_map(|l| {
                            let rest = l.split("PIPE_NAME: &str = r\"").nth(1)?;
                            Some(rest.split('"').next()?.to_string())
                        });
                        out.push(Example {
                            line,
                            pipe,
                            no_run,
                            code,
                        });
                    }
                }
            }
            continue;
        }
        if let Some((_, _, _, body)) = open.as_mut() {
            // rustdoc's hidden lines: `# code` compiles, `#` alone is empty.
            let shown = match doc.strip_prefix('#') {
                Some("") => "",
                Some(rest) if rest.starts_with(' ') => &rest[1..],
                _ => doc,
            };
            body.push(shown.to_string());
        }
    }
    out
}

/// Whether `e` is a server's readiness example that never calls `connect`
/// (one of them shares its pipe name with a client's): its instance waits
/// for readiness with no client, for ever.
fn waits_unconnected(e: &Example) -> bool {
    e.no_run
        && e.code.contains("ServerOptions")
        && !e.code.contains("ClientOptions")
        && !e.code.contains(".connect()")
}

/// A test file that runs `examples` against this crate: each in a module
/// of its own (its `use` of tokio's named pipes pointed here), its `main`
/// called by a test. An example with a client only gets a server (this
/// crate's) on its pipe name, which connects it, sends `hello`, reads what
/// the client sends until it leaves or is silent for a second, and closes;
/// a `no_run` one with a server only gets a client, until `main` returns.
fn examples_test_file(examples: &[Example]) -> Result<String> {
    let mut f = String::from(
        "// Written by `cargo xtask test`: examples of tokio's named pipe docs, their\n\
         // `use` of tokio's named pipes pointed at async-named-pipes.\n\
         #![allow(unused, clippy::all)]\n\n\
         // One example at a time: two of them use the same pipe name.\n\
         static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());\n\n\
         fn serial() -> std::sync::MutexGuard<'static, ()> {\n\
         \x20   SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)\n\
         }\n",
    );
    for e in examples {
        let mut code = String::new();
        let mut pointed = 0;
        for l in e.code.lines() {
            match point_use_at_us(l) {
                Some(l) => {
                    pointed += 1;
                    code.push_str(&l);
                }
                None => code.push_str(l),
            }
            code.push('\n');
        }
        if pointed != 1 {
            return Err(format!(
                "the example at line {} has {pointed} uses of {TOKIO_PIPES}",
                e.line
            ));
        }
        let client_only = code.contains("ClientOptions") && !code.contains("ServerOptions");
        let pipe = e.pipe.as_deref().unwrap_or_default();
        write!(
            f,
            "\nmod example_{line} {{\n{code}\n\
             #[test]\n\
             fn example_at_line_{line}() {{\n\
             \x20   let _serial = super::serial();\n",
            line = e.line
        )
        .unwrap();
        if client_only {
            write!(
                f,
                "    // The other end: a server instance for the example's client.\n\
                 \x20   let server = async_named_pipes::ServerOptions::new().create({}).unwrap();\n\
                 \x20   let served = std::thread::spawn(move || {{\n\
                 \x20       let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();\n\
                 \x20       rt.block_on(async move {{\n\
                 \x20           use tokio::io::{{AsyncReadExt, AsyncWriteExt}};\n\
                 \x20           server.connect().await.unwrap();\n\
                 \x20           let _ = (&server).write_all(b\"hello\").await;\n\
                 \x20           let mut buf = [0u8; 4096];\n\
                 \x20           let quiet = std::time::Duration::from_secs(1);\n\
                 \x20           while let Ok(Ok(1..)) = tokio::time::timeout(quiet, (&server).read(&mut buf)).await {{}}\n\
                 \x20       }});\n\
                 \x20   }});\n\
                 \x20   main().unwrap();\n\
                 \x20   served.join().unwrap();\n",
                quote(pipe),
            )
            .unwrap();
        } else if e.no_run && !code.contains("ClientOptions") {
            write!(
                f,
                "    // The other end: a client for the example's server, until it returns.\n\
                 \x20   let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));\n\
                 \x20   let stop = std::sync::Arc::clone(&done);\n\
                 \x20   let client = std::thread::spawn(move || {{\n\
                 \x20       while !stop.load(std::sync::atomic::Ordering::SeqCst) {{\n\
                 \x20           if let Ok(c) = async_named_pipes::ClientOptions::new().open({}) {{\n\
                 \x20               return Some(c);\n\
                 \x20           }}\n\
                 \x20           std::thread::sleep(std::time::Duration::from_millis(10));\n\
                 \x20       }}\n\
                 \x20       None\n\
                 \x20   }});\n\
                 \x20   main().unwrap();\n\
                 \x20   done.store(true, std::sync::atomic::Ordering::SeqCst);\n\
                 \x20   drop(client.join().unwrap());\n",
                quote(pipe),
            )
            .unwrap();
        } else {
            f.push_str("    main().unwrap();\n");
        }
        f.push_str("}\n}\n");
    }
    Ok(f)
}

/// Writes a crate whose tests are tokio's `tests/net_named_pipe.rs`
/// (rewritten as [`rewrite_tokio_test`] says) and the chosen examples of
/// its named pipe docs, against this crate. Returns the manifest's path.
fn tokio_tests_crate(dir: &Path, root: &Path, tokio: &Package) -> Result<PathBuf> {
    let test_path = tokio.dir.join("tests/net_named_pipe.rs");
    let test =
        fs::read_to_string(&test_path).map_err(|e| format!("{}: {e}", test_path.display()))?;
    write(
        &dir.join("tests/net_named_pipe.rs"),
        &rewrite_tokio_test(&test)?,
    )?;
    let docs_path = tokio.dir.join("src/net/windows/named_pipe.rs");
    let docs =
        fs::read_to_string(&docs_path).map_err(|e| format!("{}: {e}", docs_path.display()))?;
    let all = doc_examples(&docs);
    let total = all.len();
    let (chosen, left): (Vec<Example>, Vec<Example>) = all.into_iter().partition(|e| {
        e.pipe
            .as_deref()
            .is_some_and(|p| TOKIO_EXAMPLES.contains(&p))
            && !waits_unconnected(e)
    });
    // Every chosen example found: a tokio that changed its docs fails here.
    for want in TOKIO_EXAMPLES {
        if !chosen.iter().any(|e| e.pipe.as_deref() == Some(want)) {
            return Err(format!("no example of tokio's docs uses the pipe {want}"));
        }
    }
    let left: Vec<String> = left.iter().map(|e| e.line.to_string()).collect();
    println!(
        "tokio's doc examples run: {} of {total}; left out (why: TOKIO_EXAMPLES in xtask/src/compat.rs), at lines {}",
        chosen.len(),
        left.join(", ")
    );
    write(
        &dir.join("tests/doc_examples.rs"),
        &examples_test_file(&chosen)?,
    )?;
    let req = |name: &str| {
        tokio
            .deps
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.req.clone())
            .ok_or_else(|| format!("tokio's manifest names no {name}"))
    };
    let m = format!(
        "# Written by `cargo xtask test`: tokio's named pipe tests and doc examples\n\
         # (where cargo downloaded them), built against async-named-pipes.\n\
         [package]\n\
         name = \"compat-tokio-tests\"\n\
         version = \"0.0.0\"\n\
         edition = \"{edition}\"\n\
         publish = false\n\
         autotests = false\n\n\
         [workspace]\n\n\
         # tokio's test file is for tokio's feature `full`.\n\
         [features]\n\
         default = [\"full\"]\n\
         full = []\n\n\
         [[test]]\n\
         name = \"net_named_pipe\"\n\
         path = \"tests/net_named_pipe.rs\"\n\n\
         [[test]]\n\
         name = \"doc_examples\"\n\
         path = \"tests/doc_examples.rs\"\n\n\
         [dev-dependencies]\n\
         async-named-pipes = {{ path = {ours}, features = [\"tokio\"] }}\n\
         tokio = {{ version = \"={version}\", features = [\"full\"] }}\n\
         tokio-test = {{ version = {tokio_test} }}\n\
         windows-sys = {{ version = {windows_sys}, features = [\"Win32_Foundation\"] }}\n\
         futures-executor = \"0.3\"\n",
        edition = tokio.edition,
        ours = quote_path(&root.join("async")),
        version = tokio.version,
        tokio_test = quote(&req("tokio-test")?),
        windows_sys = quote(&req("windows-sys")?),
    );
    let manifest = dir.join("Cargo.toml");
    write(&manifest, &m)?;
    Ok(manifest)
}

// ---------------------------------------------------------------- files

pub(crate) fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // Rewriting an unchanged file would make cargo rebuild for nothing.
    if fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => write!(q, "\\u{:04X}", c as u32).unwrap(),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn quote_path(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, kind: Option<&str>, target: Option<&str>) -> Dep {
        Dep {
            name: name.into(),
            rename: None,
            req: "^0.4".into(),
            kind: kind.map(Into::into),
            optional: false,
            default_features: true,
            features: vec![],
            target: target.map(Into::into),
        }
    }

    #[test]
    fn every_used_dependency_becomes_a_dev_dependency() {
        let mut env_logger = dep("env_logger", Some("dev"), None);
        env_logger.default_features = false;
        let mut winapi = dep("winapi", None, Some("cfg(windows)"));
        winapi.features = vec!["winbase".into(), "ioapiset".into()];
        let mut optional = dep("serde", None, None);
        optional.optional = true;
        let deps = [
            env_logger,
            winapi,
            optional,
            dep("cc", Some("build"), None),
            dep("log", None, None),
            dep("log", Some("dev"), None),
        ];
        let toml = dev_dependencies(&deps, "mio_named_pipes").unwrap();
        assert_eq!(
            toml,
            "\n[dev-dependencies.\"env_logger\"]\npackage = \"env_logger\"\nversion = \"^0.4\"\n\
             default-features = false\nfeatures = []\n\
             \n[target.\"cfg(windows)\".dev-dependencies.\"winapi\"]\npackage = \"winapi\"\n\
             version = \"^0.4\"\ndefault-features = true\nfeatures = [\"winbase\", \"ioapiset\"]\n\
             \n[dev-dependencies.\"log\"]\npackage = \"log\"\nversion = \"^0.4\"\n\
             default-features = true\nfeatures = []\n"
        );
    }

    #[test]
    fn the_patch_must_be_the_only_copy() {
        let ours = "(/w/mnp)";
        let tree = "parity-tokio-ipc v0.4.0 (/w/x)\nmio-named-pipes v0.1.8 (/w/mnp)\n\
                    tokio-named-pipes v0.1.0\nmio-named-pipes v0.1.8 (/w/mnp) (*)\n";
        let lock = "[[package]]\nname = \"mio-named-pipes\"\nversion = \"0.1.8\"\n\
                    dependencies = []\n\n[[package]]\nname = \"mio\"\nversion = \"0.6.23\"\n\
                    source = \"registry+x\"\n";
        assert_eq!(
            patched(tree, lock, "mio-named-pipes", ours),
            Ok("mio-named-pipes v0.1.8 (/w/mnp)".to_string())
        );
        // The patch did not take: the registry's 0.1.7 is used.
        let unpatched = "tokio-named-pipes v0.1.0\nmio-named-pipes v0.1.7\n";
        assert!(patched(unpatched, lock, "mio-named-pipes", ours).is_err());
        // Both copies in the graph.
        let both = format!("{tree}mio-named-pipes v0.1.7\n");
        assert!(patched(&both, lock, "mio-named-pipes", ours).is_err());
        assert!(patched("", lock, "mio-named-pipes", ours).is_err());
        // The lock file names a registry copy.
        let lock2 = format!(
            "{lock}\n[[package]]\nname = \"mio-named-pipes\"\nversion = \"0.1.7\"\nsource = \"registry+x\"\n"
        );
        assert!(patched(tree, &lock2, "mio-named-pipes", ours).is_err());
    }

    #[test]
    fn only_the_use_line_of_tokios_test_is_rewritten() {
        let test =
            "use std::io;\nuse tokio::net::windows::named_pipe::{ClientOptions, PipeMode};\n\
                    fn f() { let _ = \"tokio::net::windows::named_pipe::\"; }\n";
        assert_eq!(
            rewrite_tokio_test(test).unwrap(),
            "use std::io;\nuse async_named_pipes::{ClientOptions, PipeMode};\n\
             fn f() { let _ = \"tokio::net::windows::named_pipe::\"; }\n"
        );
        // None, or two: tokio changed the file; the step says so.
        assert!(rewrite_tokio_test("use std::io;\n").is_err());
        let twice =
            "use tokio::net::windows::named_pipe::A;\nuse tokio::net::windows::named_pipe::B;\n";
        assert!(rewrite_tokio_test(twice).is_err());
        assert_eq!(
            point_use_at_us("    use tokio::net::windows::named_pipe;").as_deref(),
            Some("    use async_named_pipes as named_pipe;")
        );
    }

    #[test]
    fn doc_examples_are_found_with_their_hidden_lines() {
        let src = "/// Text.\n\
                   ///\n\
                   /// ```no_run\n\
                   /// use tokio::net::windows::named_pipe::ServerOptions;\n\
                   /// const PIPE_NAME: &str = r\"\\\\.\\pipe\\a\";\n\
                   /// # #[tokio::main] async fn main() {\n\
                   /// #\n\
                   /// let x = 1;\n\
                   /// # }\n\
                   /// ```\n\
                   fn documented() {}\n\
                   /// ```should_panic\n\
                   /// panic!();\n\
                   /// ```\n\
                   /// ```text\n\
                   /// not rust\n\
                   /// ```\n\
                   /// ```\n\
                   /// let y = 2;\n\
                   /// ```\n";
        let found = doc_examples(src);
        assert_eq!(
            found,
            [
                Example {
                    line: 3,
                    pipe: Some(r"\\.\pipe\a".into()),
                    no_run: true,
                    code: "use tokio::net::windows::named_pipe::ServerOptions;\n\
                           const PIPE_NAME: &str = r\"\\\\.\\pipe\\a\";\n\
                           #[tokio::main] async fn main() {\n\nlet x = 1;\n}"
                        .into(),
                },
                Example {
                    line: 18,
                    pipe: None,
                    no_run: false,
                    code: "let y = 2;".into(),
                },
            ]
        );
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny"), r#""x\u000Ay""#);
    }
}
