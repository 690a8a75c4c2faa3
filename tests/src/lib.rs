//! Helpers for end-to-end tests that drive the workspace binaries.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Binaries this test process has brought up to date; the lock also
/// serialises the builds so parallel tests do not race on one binary.
static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Path of a workspace binary in the same `target/<profile>/` directory as
/// the test executable.
///
/// `cargo test` only builds a package's binaries when that package has
/// integration tests of its own, so a binary may be missing on a fresh
/// checkout, or stale after an edit. The first call for each binary in a
/// test process therefore runs `cargo build -p <name> --bin <name>` with
/// the cargo that runs the tests and the same profile (a no-op when the
/// binary is up to date).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if built
        .get_or_insert_with(HashSet::new)
        .insert(name.to_string())
    {
        build_binary(name, dir);
    }
    assert!(
        path.exists(),
        "{} not found after building it",
        path.display()
    );
    path
}

/// Builds binary `name` of the package of the same name into the profile
/// directory `profile_dir`.
fn build_binary(name: &str, profile_dir: &std::path::Path) {
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .expect("profile directory name");
    // cargo calls the dev profile's directory `debug`.
    let profile = if profile == "debug" { "dev" } else { profile };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--profile", profile, "-p", name, "--bin", name])
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the `{name}` binary: {e}"));
    assert!(
        status.success(),
        "building the `{name}` binary failed: {status}"
    );
}

/// The workspace root (where README.md and the shipped configs live).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}
