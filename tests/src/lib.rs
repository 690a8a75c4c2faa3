//! Helpers for end-to-end tests that drive the workspace binaries.
#![forbid(unsafe_code)]

pub mod fuzz;
pub mod openapi;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Set once this test process has brought the workspace binaries up to
/// date; the lock also serialises that build across parallel tests.
static BUILT: Mutex<bool> = Mutex::new(false);

/// Path of a workspace binary in the same `target/<profile>/` directory as
/// the test executable.
///
/// `cargo test` only builds a package's binaries when that package has
/// integration tests of its own, so a binary may be missing on a fresh
/// checkout, or stale after an edit. The first call in a test process
/// therefore builds every workspace binary (see [`build_binaries`]; a
/// no-op when they are up to date).
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
    if !*built {
        build_binaries(dir);
        *built = true;
    }
    assert!(
        path.exists(),
        "{} not found after building it",
        path.display()
    );
    path
}

/// Whether cargo sets the environment variable `key` for the crate it runs
/// (package name, manifest directory, ...) rather than to configure cargo.
fn set_by_cargo_for_the_crate(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || key.starts_with("CARGO_BIN_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

/// Builds the workspace's binaries into the profile directory
/// `profile_dir` with the cargo that runs the tests, selecting what
/// `cargo test --workspace` selects (`--workspace --bins --tests`) so that
/// feature unification, and with it every dependency's build, is the same
/// one: a per-package selection (`-p serve`) would compile candle, axum
/// and the rest a second time with other features. The variables cargo
/// sets for this test crate are removed, or build scripts that watch them
/// (ring's) would rerun and rebuild their dependants, here and again in
/// the next `cargo test`.
fn build_binaries(profile_dir: &std::path::Path) {
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .expect("profile directory name");
    // cargo calls the dev profile's directory `debug`.
    let profile = if profile == "debug" { "dev" } else { profile };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root()).args([
        "build",
        "--profile",
        profile,
        "--workspace",
        "--bins",
        "--tests",
    ]);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(set_by_cargo_for_the_crate) {
            command.env_remove(key);
        }
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the workspace binaries: {e}"));
    assert!(
        status.success(),
        "building the workspace binaries failed: {status}"
    );
}

/// The workspace root (where README.md and the shipped configs live).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}
