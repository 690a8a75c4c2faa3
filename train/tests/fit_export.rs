//! `fit` end to end on a tiny random model and the small simulated dataset:
//! export, reload, identical scores, threshold, resume, atomic export.

use std::path::{Path, PathBuf};

use candle_core::Device;
use datasets::{build::build_dataset, read_sessions, simulator::config::SimConfig, BadLinePolicy};
use models::{
    bundle::{Bundle, SessionScore},
    tiny::write_base_model,
};
use train::fit::{fit, FitConfig, TrainLayers};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Small dataset + tiny base model (random weights, vocabulary from the data).
fn fixture(dir: &Path) -> PathBuf {
    let config = SimConfig::load(&workspace().join("datasets/config/small.toml")).unwrap();
    build_dataset(&config, &dir.join("data"), false, |_| {}).unwrap();
    let prompts: Vec<String> = read_sessions(&dir.join("data/train.jsonl"), BadLinePolicy::Strict)
        .unwrap()
        .flat_map(|s| s.unwrap().events.into_iter().map(|e| e.prompt))
        .collect();
    let base = dir.join("base");
    write_base_model(&base, prompts.iter().map(String::as_str)).unwrap();
    base
}

fn config(dir: &Path, base: &Path, layers: TrainLayers, epochs: usize) -> FitConfig {
    FitConfig {
        train: dir.join("data/train.jsonl"),
        validation: dir.join("data/validation.jsonl"),
        base_model: base.display().to_string(),
        out: dir.join("bundle"),
        run_dir: dir.join("run"),
        max_tokens: 48,
        max_prompts: 3,
        train_layers: layers,
        epochs,
        batch_size: 16,
        learning_rate: 1e-3,
        head_learning_rate: 3e-3,
        weight_decay: 0.01,
        warmup_fraction: 0.1,
        max_grad_norm: 1.0,
        class_weighting: true,
        patience: 5,
        target_fpr: 0.05,
        propagation_fpr: 0.2,
        head_hidden: 16,
        head_dropout: 0.1,
        seed: 3,
        max_train_sessions: None,
        resume: false,
        init_from: None,
        refit_normalization: false,
        replay: None,
        replay_sessions: None,
    }
}

/// The bundle at `bundle` loaded on the CPU, `cfg`'s validation sessions,
/// and the bundle's scores of them.
fn rescored(cfg: &FitConfig, bundle: &Path) -> (Bundle, Vec<datasets::Session>, Vec<SessionScore>) {
    let bundle = Bundle::load(bundle, &Device::Cpu).unwrap();
    let sessions: Vec<_> = read_sessions(&cfg.validation, BadLinePolicy::Strict)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let scores = bundle.score(&sessions, 7).unwrap();
    (bundle, sessions, scores)
}

/// Each bundle score within `tolerance` of the training-time score.
fn assert_close(scores: &[SessionScore], training: &[f32], tolerance: f32, what: &str) {
    assert_eq!(scores.len(), training.len(), "{what}");
    for (got, want) in scores.iter().zip(training) {
        assert!(
            (got.score - want).abs() < tolerance,
            "{what}: bundle {} vs training {want}",
            got.score
        );
    }
}

#[test]
fn exported_bundle_scores_like_the_end_of_training() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path());
    for layers in [TrainLayers::Top(1), TrainLayers::All, TrainLayers::HeadOnly] {
        let cfg = config(tmp.path(), &base, layers, 2);
        let outcome = fit(&cfg, &Device::Cpu).unwrap();
        assert_eq!(outcome.history.len(), 2);
        let (bundle, sessions, scores) = rescored(&cfg, &outcome.bundle);
        assert_close(
            &scores,
            &outcome.validation_scores,
            1e-5,
            &format!("{layers:?}"),
        );
        assert_eq!(scores[0].embedding.len(), 32);
        // The threshold keeps validation FPR at or under the target.
        let t = &bundle.threshold;
        assert!(t.validation_fpr <= t.target_fpr, "{t:?}");
        // Propagation's threshold: no higher, chosen for its looser FPR,
        // which the benign validation scores it was chosen on confirm (the
        // training-time scores: the threshold sits one ulp above one of
        // them, closer than the bundle's rescoring tolerance).
        let p = t.propagation.as_ref().expect("propagation threshold saved");
        assert!(p.threshold <= t.threshold, "{t:?}");
        assert!(
            p.validation_fpr <= p.target_fpr && p.target_fpr == 0.2,
            "{t:?}"
        );
        let benign: Vec<f32> = outcome
            .validation_scores
            .iter()
            .zip(&sessions)
            .filter(|(_, s)| s.label == Some(datasets::Label::Benign))
            .map(|(&score, _)| score)
            .collect();
        let passing = benign.iter().filter(|&&s| s >= p.threshold).count();
        assert!(
            (passing as f64 / benign.len() as f64 - p.validation_fpr).abs() < 1e-9,
            "{t:?}"
        );
        let metadata = &bundle.metadata;
        assert_eq!(metadata.data_files.len(), 2);
        assert_eq!(metadata.data_files[0].sha256.len(), 64);
        // Something was learned: validation ranks better than chance.
        assert!(
            outcome.validation.roc_auc.unwrap() > 0.6,
            "{layers:?}: {:?}",
            outcome.validation
        );
    }
}

#[test]
fn resume_continues_where_the_run_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path());
    let first = fit(
        &config(tmp.path(), &base, TrainLayers::Top(1), 1),
        &Device::Cpu,
    )
    .unwrap();
    let mut more = config(tmp.path(), &base, TrainLayers::Top(1), 2);
    more.resume = true;
    let resumed = fit(&more, &Device::Cpu).unwrap();
    assert_eq!(resumed.history.len(), 2);
    assert_eq!(resumed.history[0], first.history[0]);
    // Other settings may not resume this run.
    let mut other = more.clone();
    other.max_tokens = 40;
    let err = fit(&other, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("other data or settings"), "{err}");
}

#[test]
fn a_failed_run_leaves_the_previous_bundle_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path());
    let cfg = config(tmp.path(), &base, TrainLayers::HeadOnly, 1);
    fit(&cfg, &Device::Cpu).unwrap();
    let before = std::fs::read(cfg.out.join("model.safetensors")).unwrap();
    let mut broken = cfg.clone();
    std::fs::write(tmp.path().join("bad.jsonl"), "{\"session_id\":\"x\"}\n").unwrap();
    broken.validation = tmp.path().join("bad.jsonl");
    let err = fit(&broken, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("bad.jsonl:1: field `account_id`"), "{err}");
    assert_eq!(
        std::fs::read(cfg.out.join("model.safetensors")).unwrap(),
        before
    );
    Bundle::load(&cfg.out, &Device::Cpu).unwrap();
}

/// The tensors of a safetensors file, by name.
fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut all: Vec<(String, Vec<f32>)> = candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn a_warm_start_begins_from_the_parent_and_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path());
    let parent_cfg = config(tmp.path(), &base, TrainLayers::Top(1), 1);
    let parent = fit(&parent_cfg, &Device::Cpu).unwrap().bundle;
    let parent_bundle = Bundle::load(&parent, &Device::Cpu).unwrap();

    // A retrain on other data (new labels plus a replay sample of the
    // old) with nothing to learn: learning rates 0 keep every weight.
    let mut child_cfg = config(tmp.path(), &base, TrainLayers::All, 1);
    child_cfg.out = tmp.path().join("child");
    child_cfg.run_dir = tmp.path().join("child-run");
    child_cfg.train = tmp.path().join("data/validation.jsonl");
    child_cfg.replay = Some(parent_cfg.train.clone());
    child_cfg.replay_sessions = Some(50);
    child_cfg.init_from = Some(parent.clone());
    child_cfg.learning_rate = 0.0;
    child_cfg.head_learning_rate = 0.0;
    // The parent's head and session input win over these.
    child_cfg.head_hidden = 8;
    child_cfg.max_tokens = 32;
    let child = fit(&child_cfg, &Device::Cpu).unwrap().bundle;
    let child_bundle = Bundle::load(&child, &Device::Cpu).unwrap();

    assert_eq!(
        tensors(&child.join("model.safetensors")),
        tensors(&parent.join("model.safetensors"))
    );
    assert_eq!(child_bundle.head, parent_bundle.head);
    assert_eq!(child_bundle.norm, parent_bundle.norm);
    let recorded = child_bundle.metadata.parent.as_ref().unwrap();
    let sha = datasets::sha256_file(&parent.join("model.safetensors")).unwrap();
    assert_eq!(recorded.version, sha[..12]);
    assert_eq!(recorded.data_files, parent_bundle.metadata.data_files);
    let files: Vec<(&str, usize)> = child_bundle
        .metadata
        .data_files
        .iter()
        .map(|f| (f.path.rsplit('/').next().unwrap(), f.sessions))
        .collect();
    assert_eq!(files[1], ("train.jsonl", 50), "{files:?}");

    // Refitting the normalisation on the new data changes it.
    let mut refit = child_cfg.clone();
    refit.refit_normalization = true;
    refit.run_dir = tmp.path().join("refit-run");
    refit.out = tmp.path().join("refit");
    let refit = Bundle::load(&fit(&refit, &Device::Cpu).unwrap().bundle, &Device::Cpu).unwrap();
    assert_ne!(refit.norm, parent_bundle.norm);
    // Without a warm start there is nothing to refit.
    let mut lone = parent_cfg.clone();
    lone.refit_normalization = true;
    let err = fit(&lone, &Device::Cpu).unwrap_err().to_string();
    assert!(
        err.contains("--refit-normalization needs --init-from"),
        "{err}"
    );
}

#[test]
fn settings_out_of_range_are_refused_before_any_file_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let mut good = config(tmp.path(), &missing, TrainLayers::Top(1), 1);
    good.train = missing.join("train.jsonl");
    type Change = fn(&mut FitConfig);
    let cases: [(Change, &str); 5] = [
        (|c| c.head_dropout = 1.0, "--head-dropout"),
        (|c| c.learning_rate = f64::NAN, "--learning-rate"),
        (|c| c.warmup_fraction = 1.5, "--warmup-fraction"),
        (|c| c.max_tokens = 1, "--max-tokens"),
        (
            |c| c.replay_sessions = Some(3),
            "--replay-sessions needs --replay",
        ),
    ];
    for (change, flag) in cases {
        let mut bad = good.clone();
        change(&mut bad);
        let err = fit(&bad, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains(flag), "{flag}: {err}");
    }
    // The token budget against the model, once its config is read.
    let base = fixture(tmp.path());
    let mut long = config(tmp.path(), &base, TrainLayers::Top(1), 1);
    long.max_tokens = 100_000;
    let err = fit(&long, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("--max-tokens 100000: the model has"), "{err}");
}

/// A short fit on a CUDA GPU (feature `cuda`; run by scripts/gpu-check.sh
/// on a machine with one): it learns, and the exported bundle scores on
/// the CPU as training scored on the GPU.
#[cfg(feature = "cuda")]
#[test]
fn a_short_fit_on_cuda_learns_and_scores_like_the_cpu() {
    let gpu = Device::new_cuda(0).expect("a CUDA GPU (this test runs only on one)");
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path());
    let cfg = config(tmp.path(), &base, TrainLayers::All, 2);
    let outcome = fit(&cfg, &gpu).unwrap();
    assert_eq!(outcome.history.len(), 2);
    assert!(
        outcome.validation.roc_auc.unwrap() > 0.6,
        "{:?}",
        outcome.validation
    );
    let (_, _, scores) = rescored(&cfg, &outcome.bundle);
    assert_close(
        &scores,
        &outcome.validation_scores,
        1e-3,
        "CPU bundle vs GPU training",
    );
}
