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
//! Both run under Wine through `xtask wine-run`, with a shorter time limit
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
}

/// Runs the compatibility steps, after the crate's own tests.
pub fn test_steps(steps: &mut Vec<Step>, w: &WinEnv) -> Result<()> {
    let scratch = w.root.join("target/compat");
    let mut packages = None;
    step(steps, "compat: fetch packages", || {
        let p = fetch(&scratch)?;
        println!("{} {}: {}", OLD.0, OLD.1, p.old.dir.display());
        println!("{} {}: {}", USER.0, USER.1, p.user.dir.display());
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
fn fetch(scratch: &Path) -> Result<Packages> {
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
         user = {{ package = \"{}\", version = \"={}\" }}\n\n\
         [workspace]\n",
        OLD.0, OLD.1, USER.0, USER.1
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
    fn toml_strings_are_escaped() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny"), r#""x\u000Ay""#);
    }
}
