//! Base-model resolution: directory, hub cache, offline failure.
//! One test function: it sets process environment variables.

use models::base_model::{resolve, Source};

fn write_checkpoint(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::write(dir.join(f), b"{}").unwrap();
    }
}

#[test]
fn resolves_directories_then_cache_and_fails_clearly_offline() {
    let tmp = tempfile::tempdir().unwrap();
    // A plain directory.
    let dir = tmp.path().join("local-model");
    write_checkpoint(&dir);
    let (files, source) = resolve(dir.to_str().unwrap()).unwrap();
    assert_eq!(source, Source::Directory);
    assert_eq!(files.weights, dir.join("model.safetensors"));
    // A directory missing a file names it.
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let err = resolve(dir.to_str().unwrap()).unwrap_err().to_string();
    assert!(err.contains("lacks tokenizer.json"), "{err}");

    // A hub id found in the cache (layout written by scripts/fetch-base-model.sh).
    let home = tmp.path().join("hf");
    let repo = home.join("hub/models--acme--tiny-bert");
    write_checkpoint(&repo.join("snapshots/rev1"));
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "rev1").unwrap();
    std::env::set_var("HF_HOME", &home);
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let (files, source) = resolve("acme/tiny-bert").unwrap();
    assert_eq!(source, Source::HubCache);
    assert_eq!(files.config, repo.join("snapshots/rev1/config.json"));

    // Unknown id, offline: a clear error with the way out.
    let err = resolve("acme/missing").unwrap_err().to_string();
    assert!(
        err.contains("HF_HUB_OFFLINE") && err.contains("fetch-base-model.sh"),
        "{err}"
    );
}
