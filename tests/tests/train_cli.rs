//! The `train` binary end to end: the main job (`train run`) on the small
//! simulated dataset with a tiny random base model, then `train evaluate`
//! and the bad-input paths.

use std::{
    path::Path,
    process::{Command, Output},
};

use e2e::{workspace_binary, workspace_root};
use models::tiny::write_base_model;

fn train(args: &[&str]) -> Output {
    Command::new(workspace_binary("train"))
        .args(args)
        .current_dir(workspace_root())
        .env("RUST_BACKTRACE", "0")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run train")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A base model directory in Hugging Face layout with random weights.
fn tiny_base_model(dir: &Path) {
    let corpus =
        std::fs::read_to_string(workspace_root().join("datasets/corpora/dolly.jsonl")).unwrap();
    write_base_model(dir, [corpus.as_str()]).unwrap();
}

#[test]
fn main_job_builds_trains_evaluates_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    tiny_base_model(&base);
    let data = tmp.path().join("data");
    let bundle = tmp.path().join("bundle");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let out = train(&[
        "run",
        "--dataset-config",
        "datasets/config/small.toml",
        "--data-dir",
        &path(&data),
        "--base-model",
        &path(&base),
        "--out",
        &path(&bundle),
        "--run-dir",
        &path(&tmp.path().join("run")),
        "--max-tokens",
        "48",
        "--epochs",
        "1",
        "--max-train-sessions",
        "0",
        "--target-fpr",
        "0.05",
    ]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    for f in [
        "model.safetensors",
        "config.json",
        "head_config.json",
        "tokenizer.json",
        "feature_norm.json",
        "threshold.json",
        "metadata.json",
    ] {
        assert!(bundle.join(f).is_file(), "bundle lacks {f}");
    }
    assert!(
        log.contains("| ROC-AUC |") && log.contains("| benign archetype |"),
        "{log}"
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("metadata.json")).unwrap()).unwrap();
    let test = &metadata["test_metrics"];
    assert!(test["metrics"]["roc_auc"].as_f64().is_some(), "{metadata}");
    assert_eq!(test["file"], path(&data.join("test.jsonl")));

    // evaluate agrees with what run recorded.
    let out = train(&[
        "evaluate",
        "--bundle",
        &path(&bundle),
        "--data",
        &path(&data.join("test.jsonl")),
    ]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let roc = test["metrics"]["roc_auc"].as_f64().unwrap();
    assert!(log.contains(&format!("| ROC-AUC | {roc:.4} |")), "{log}");
}

#[test]
fn bad_input_gets_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let out = train(&[
        "fit",
        "--base-model",
        missing.to_str().unwrap(),
        "--train",
        "x.jsonl",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("base model not found"),
        "{}",
        text(&out)
    );

    let out = train(&["fit", "--train-layers", "seven"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("expected all, head or a number of top layers"),
        "{}",
        text(&out)
    );

    let out = train(&["evaluate", "--bundle", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("nope/config.json"), "{}", text(&out));

    let out = train(&["fit", "--device", "tpu"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown device"), "{}", text(&out));
}
