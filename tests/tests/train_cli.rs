//! The `train` binary end to end: the main job (`train run`) on the small
//! simulated dataset with a tiny random base model, then `score`,
//! `cluster` and `eval`, the evaluation notebook, and the bad-input paths.

use std::{
    path::{Path, PathBuf},
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

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// ROC-AUC by counting ordered pairs (ties one half): independent of the
/// rank-based implementation under test.
fn pairwise_auc(scores: &[(f64, bool)]) -> f64 {
    let (mut ordered, mut pairs) = (0.0, 0.0);
    for &(p, _) in scores.iter().filter(|s| s.1) {
        for &(n, _) in scores.iter().filter(|s| !s.1) {
            pairs += 1.0;
            ordered += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    ordered / pairs
}

/// Folders of a main-job run on the small dataset.
struct SmallRun {
    data: PathBuf,
    bundle: PathBuf,
    eval_dir: PathBuf,
}

/// `train run` on the small dataset with a tiny base model, under `tmp`.
fn small_main_job(tmp: &Path) -> (SmallRun, Output) {
    let base = tmp.join("base");
    tiny_base_model(&base);
    let run = SmallRun {
        data: tmp.join("data"),
        bundle: tmp.join("bundle"),
        eval_dir: tmp.join("eval"),
    };
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let out = train(&[
        "run",
        "--dataset-config",
        "datasets/config/small.toml",
        "--data-dir",
        &path(&run.data),
        "--base-model",
        &path(&base),
        "--out",
        &path(&run.bundle),
        "--run-dir",
        &path(&tmp.join("run")),
        // Out-of-fold scores stay under `tmp`, not in the checkout's
        // artifacts/ where a real main job keeps its own.
        "--cross-fit-scores",
        &path(&tmp.join("cross-fit/scores.jsonl")),
        "--eval-out",
        &path(&run.eval_dir),
        "--max-tokens",
        "48",
        "--epochs",
        "1",
        "--max-train-sessions",
        "0",
        "--target-fpr",
        "0.05",
        "--propagation-fpr",
        "0.2",
        "--fresh-days",
        "20",
    ]);
    (run, out)
}

#[test]
fn main_job_then_score_cluster_and_eval_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, out) = small_main_job(tmp.path());
    let SmallRun {
        data,
        bundle,
        eval_dir,
    } = run;
    let path = |p: &Path| p.to_str().unwrap().to_string();
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
    for f in [
        "report.html",
        "report.md",
        "metrics.json",
        "scores.jsonl",
        "clusters.json",
        "accounts.jsonl",
    ] {
        assert!(eval_dir.join(f).is_file(), "evaluation lacks {f}");
    }
    assert!(
        log.contains("low-and-slow campaign accounts caught"),
        "{log}"
    );
    assert!(tmp.path().join("cross-fit/scores.jsonl").is_file(), "{log}");
    // The prompt head: one prompt of every labeled training and validation
    // session, its threshold within the target false-positive rate on the
    // validation prompts. How well it ranks is not asked of a tiny random
    // encoder trained for one epoch (train/src/prompt_head.rs tests the
    // ranking on separable prompts).
    let head = read_json(&bundle.join("prompt_head.json"));
    let labeled = |file: &str| {
        read_jsonl(&data.join(file))
            .iter()
            .filter(|s| !s["label"].is_null())
            .count() as u64
    };
    assert_eq!(head["train_prompts"], labeled("train.jsonl"), "{head}");
    let validation = &head["validation"];
    assert_eq!(validation["prompts"], labeled("validation.jsonl"), "{head}");
    let fpr = validation["fpr"].as_f64().unwrap();
    assert!(fpr <= validation["target_fpr"].as_f64().unwrap(), "{head}");
    let roc_auc = validation["roc_auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&roc_auc), "{head}");
    assert_eq!(head["weights"].as_array().unwrap().len(), 32, "{head}");
    let metadata = read_json(&bundle.join("metadata.json"));
    let test = &metadata["test_metrics"]["evaluation"];
    assert_eq!(test["file"], path(&data.join("test.jsonl")));

    // Metrics agree with the scores they were computed from.
    let test_file = data.join("test.jsonl");
    let sessions = read_jsonl(&test_file);
    let label: std::collections::HashMap<String, bool> = sessions
        .iter()
        .map(|s| {
            (
                s["session_id"].as_str().unwrap().to_string(),
                s["label"] == "extraction",
            )
        })
        .collect();
    let metrics = read_json(&eval_dir.join("metrics.json"));
    let scores = read_jsonl(&eval_dir.join("scores.jsonl"));
    assert_eq!(scores.len(), sessions.len());
    let pairs: Vec<(f64, bool)> = scores
        .iter()
        .map(|r| {
            (
                r["score"].as_f64().unwrap(),
                label[r["session_id"].as_str().unwrap()],
            )
        })
        .collect();
    let auc = metrics["ranking"]["roc_auc"].as_f64().unwrap();
    assert!((auc - pairwise_auc(&pairs)).abs() < 1e-9, "{auc}");
    assert_eq!(test["metrics"]["roc_auc"].as_f64().unwrap(), auc);
    let threshold = metrics["evaluation"]["threshold"].as_f64().unwrap();
    let tp = pairs.iter().filter(|(s, p)| *p && *s >= threshold).count();
    let fp = pairs.iter().filter(|(s, p)| !*p && *s >= threshold).count();
    let confusion = &metrics["evaluation"]["confusion"];
    assert_eq!(confusion["true_positives"], tp);
    assert_eq!(confusion["false_positives"], fp);
    assert!(metrics["baseline"]["metrics"]["roc_auc"].as_f64().is_some());

    // The account scorer's verdicts follow its saved thresholds unless the
    // corroboration rule cleared them or lowered a flag to review (and
    // says so first), and the tallies in metrics.json count them.
    let account_model = read_json(&bundle.join("account_model.json"));
    let flag_at = account_model["flag"]["threshold"].as_f64().unwrap();
    let review_at = account_model["review"]["threshold"].as_f64().unwrap();
    assert!(review_at <= flag_at, "{account_model}");
    // The evidence settings of the run are saved with the scorer.
    assert_eq!(account_model["evidence"]["fresh_days"], 20.0);
    let decisions = read_jsonl(&eval_dir.join("account_verdicts.jsonl"));
    let test_accounts: std::collections::BTreeSet<&str> = sessions
        .iter()
        .map(|s| s["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(decisions.len(), test_accounts.len());
    let extraction_accounts: std::collections::BTreeSet<&str> = sessions
        .iter()
        .filter(|s| s["label"] == "extraction")
        .map(|s| s["account_id"].as_str().unwrap())
        .collect();
    let (mut benign_flag, mut extraction_flag_or_review) = (0, 0);
    let (mut uncorroborated, mut lowered) = (0, 0);
    for d in &decisions {
        let score = d["score"].as_f64().unwrap();
        let by_score = if score >= flag_at {
            "flag"
        } else if score >= review_at {
            "review"
        } else {
            "clear"
        };
        let first_reason = d["reasons"][0].as_str().unwrap_or_default();
        let expected = if by_score == "clear" {
            "clear"
        } else if first_reason.starts_with("uncorroborated") {
            assert!(
                first_reason.starts_with(&format!("uncorroborated {by_score}:")),
                "{d}"
            );
            uncorroborated += 1;
            "clear"
        } else if first_reason.starts_with("corroborated for review: ") {
            lowered += usize::from(by_score == "flag");
            "review"
        } else {
            assert!(first_reason.starts_with("corroborated: "), "{d}");
            by_score
        };
        assert_eq!(d["verdict"], expected, "{d}");
        let extraction = extraction_accounts.contains(d["account_id"].as_str().unwrap());
        benign_flag += usize::from(!extraction && expected == "flag");
        extraction_flag_or_review += usize::from(extraction && expected != "clear");
    }
    let tallies = &metrics["account_verdicts"];
    assert_eq!(tallies["benign_total"]["flag"], benign_flag, "{tallies}");
    assert_eq!(
        tallies["corroboration"]["cleared"], uncorroborated,
        "{tallies}"
    );
    assert_eq!(
        tallies["corroboration"]["lowered_to_review"], lowered,
        "{tallies}"
    );
    let ext = &tallies["extraction_total"];
    assert_eq!(
        ext["flag"].as_u64().unwrap() + ext["review"].as_u64().unwrap(),
        extraction_flag_or_review as u64
    );
    assert_eq!(ext["accounts"], extraction_accounts.len());

    // Cluster ids, the cluster table and account verdicts agree.
    let clusters = read_json(&eval_dir.join("clusters.json"));
    let clusters = clusters.as_array().unwrap();
    assert_eq!(metrics["clustering"]["clusters"], clusters.len());
    for c in clusters {
        let id = c["cluster_id"].as_u64().unwrap();
        let members = scores.iter().filter(|r| r["cluster_id"] == id).count();
        assert_eq!(c["sessions"], members, "cluster {id}");
    }
    let accounts = read_jsonl(&eval_dir.join("accounts.jsonl"));
    for a in &accounts {
        let id = a["account_id"].as_str().unwrap();
        let of_account: Vec<_> = scores.iter().filter(|r| r["account_id"] == id).collect();
        let flagged = of_account.iter().filter(|r| r["flagged"] == true).count();
        let passing = of_account
            .iter()
            .filter(|r| r["score"].as_f64().unwrap() >= threshold)
            .count();
        // Propagation flags every session of the account; otherwise the
        // sessions over the threshold are the flagged ones.
        let expected = if a["propagated"] == true {
            of_account.len()
        } else {
            passing
        };
        assert_eq!(flagged, expected, "account {id}");
        assert_eq!(
            a["flagged_by_sessions"] == true,
            passing > 0,
            "account {id}"
        );
    }
    // Propagation used the bundle's own lower threshold, and only for
    // accounts in coordinated clusters whose mean score reaches it.
    let saved = read_json(&bundle.join("threshold.json"));
    let propagation = saved["propagation"]["threshold"].as_f64().unwrap();
    assert!(propagation <= saved["threshold"].as_f64().unwrap());
    let used = metrics["clustering"]["params"]["propagation_threshold"]
        .as_f64()
        .unwrap();
    assert!((used - propagation).abs() < 1e-6, "{used} vs {propagation}");
    for a in accounts.iter().filter(|a| a["propagated"] == true) {
        assert!(a["mean_score"].as_f64().unwrap() >= used - 1e-6, "{a}");
        assert!(a["coordinated_cluster"].is_u64(), "{a}");
    }
    // The cluster table counts each cluster's accounts flagged by sessions
    // and those propagated from it as the account verdicts do.
    let mut propagated_total = 0;
    for c in clusters {
        let id = &c["cluster_id"];
        let members: Vec<&str> = c["account_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let of_cluster = || {
            accounts
                .iter()
                .filter(|a| members.contains(&a["account_id"].as_str().unwrap()))
        };
        let by_sessions = of_cluster()
            .filter(|a| a["flagged_by_sessions"] == true)
            .count();
        let propagated = of_cluster()
            .filter(|a| a["propagated"] == true && &a["coordinated_cluster"] == id)
            .count();
        assert_eq!(
            c["accounts_flagged_by_sessions"], by_sessions,
            "cluster {id}"
        );
        assert_eq!(c["accounts_propagated"], propagated, "cluster {id}");
        propagated_total += propagated;
    }
    assert_eq!(
        propagated_total,
        accounts.iter().filter(|a| a["propagated"] == true).count()
    );
    let detection = &metrics["detection"]["extraction_total"];
    let extraction_accounts: std::collections::BTreeSet<&str> = scores
        .iter()
        .filter(|r| label[r["session_id"].as_str().unwrap()])
        .map(|r| r["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(detection["accounts"], extraction_accounts.len());
    let caught = accounts
        .iter()
        .filter(|a| extraction_accounts.contains(a["account_id"].as_str().unwrap()))
        .filter(|a| a["flagged_by_sessions"] == true || a["propagated"] == true)
        .count();
    assert_eq!(detection["flagged_after_propagation"], caught);
    let html = std::fs::read_to_string(eval_dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("adjusted Rand index"));

    // `score` streams the same scores; `cluster` finds the same clusters
    // (both in the main job's precision, f32).
    let scored = tmp.path().join("scores.jsonl");
    let bundle_arg = path(&bundle);
    let test_arg = path(&test_file);
    let out = train(&[
        "score",
        "--bundle",
        &bundle_arg,
        "--input",
        &test_arg,
        "-o",
        &path(&scored),
        "--precision",
        "f32",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let streamed = read_jsonl(&scored);
    assert_eq!(streamed.len(), scores.len());
    for (a, b) in streamed.iter().zip(&scores) {
        assert_eq!(a["session_id"], b["session_id"]);
        assert_eq!(a["score"], b["score"]);
        assert!(a["cluster_id"].is_null());
    }
    let cluster_dir = tmp.path().join("cluster");
    let out = train(&[
        "cluster",
        "--bundle",
        &bundle_arg,
        "--input",
        &test_arg,
        "--out",
        &path(&cluster_dir),
        "--precision",
        "f32",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        read_json(&cluster_dir.join("clusters.json"))
            .as_array()
            .unwrap(),
        clusters
    );
    assert_eq!(read_jsonl(&cluster_dir.join("scores.jsonl")), scores);

    // Blocked DBSCAN: every clustered session belongs to a listed cluster,
    // and the table counts exactly those sessions.
    let blocked_dir = tmp.path().join("cluster-blocked");
    let out = train(&[
        "cluster",
        "--bundle",
        &bundle_arg,
        "--input",
        &test_arg,
        "--out",
        &path(&blocked_dir),
        "--blocks",
        "4",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let blocked_clusters = read_json(&blocked_dir.join("clusters.json"));
    let blocked_clusters = blocked_clusters.as_array().unwrap();
    let blocked_scores = read_jsonl(&blocked_dir.join("scores.jsonl"));
    assert_eq!(blocked_scores.len(), scores.len());
    let mut per_cluster = vec![0u64; blocked_clusters.len()];
    for s in &blocked_scores {
        if let Some(c) = s["cluster_id"].as_u64() {
            per_cluster[c as usize] += 1;
        }
    }
    for (c, n) in blocked_clusters.iter().zip(&per_cluster) {
        assert_eq!(c["sessions"].as_u64().unwrap(), *n, "{c}");
    }

    // eval on its own writes the same report numbers (baseline from the
    // bundle's recorded training file) in the main job's precision, f32.
    let again = tmp.path().join("eval-again");
    let out = train(&[
        "eval",
        "--bundle",
        &bundle_arg,
        "--data",
        &test_arg,
        "--out",
        &path(&again),
        "--precision",
        "f32",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let metrics_again = read_json(&again.join("metrics.json"));
    assert_eq!(metrics_again["ranking"], metrics["ranking"]);
    assert_eq!(metrics_again["detection"], metrics["detection"]);
    assert_eq!(
        metrics_again["baseline"]["metrics"],
        metrics["baseline"]["metrics"]
    );
    assert_eq!(metrics_again["bundle"]["precision"], "f32");

    // check-precision compares every precision this CPU runs with f32 on
    // the test split (limits loosened: a model this small is no contract).
    let checks_path = tmp.path().join("precision.json");
    let out = train(&[
        "check-precision",
        "--bundle",
        &bundle_arg,
        "--data",
        &test_arg,
        "--min-flag-agreement",
        "0.9",
        "--max-auc-drop",
        "0.05",
        "--max-score-diff",
        "0.5",
        "--out",
        &path(&checks_path),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let checks = read_json(&checks_path);
    let checks = checks["checks"].as_array().unwrap();
    let cpu = models::CpuFeatures::detect();
    let expected: Vec<String> = cpu.supported().iter().map(|p| p.to_string()).collect();
    let got: Vec<&str> = checks
        .iter()
        .map(|c| c["precision"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(checks[0]["flag_agreement"], 1.0);
    assert_eq!(checks[0]["max_score_diff"], 0.0);
    for c in checks {
        assert!(
            c["kernels"].as_str().unwrap().contains("linear layers"),
            "{c}"
        );
        assert!(c["roc_auc"].as_f64().unwrap() > 0.5, "{c}");
    }
    for p in models::Precision::ALL.iter().filter(|p| !cpu.supports(**p)) {
        eprintln!("SKIPPED: check-precision {p}: this CPU lacks its instructions");
        assert!(text(&out).contains(&format!("{p}: skipped")));
    }

    compare_champion_and_challenger(tmp.path(), &bundle, &data.join("test.jsonl"));
}

/// `compare`: a challenger that is the champion with its session threshold
/// at 0 flags every session the champion cleared, and a gate on the
/// benign session FPR refuses it (non-zero exit) while the champion
/// against itself passes.
fn compare_champion_and_challenger(tmp: &Path, champion: &Path, test: &Path) {
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let challenger = tmp.join("challenger");
    std::fs::create_dir_all(&challenger).unwrap();
    for entry in std::fs::read_dir(champion).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), challenger.join(entry.file_name())).unwrap();
    }
    let mut threshold = read_json(&challenger.join("threshold.json"));
    threshold["threshold"] = 0.0.into();
    std::fs::write(challenger.join("threshold.json"), threshold.to_string()).unwrap();
    let out_dir = tmp.join("compare");
    let compare = |challenger: &Path| {
        train(&[
            "compare",
            "--champion",
            &path(champion),
            "--challenger",
            &path(challenger),
            "--data",
            &path(test),
            "--out",
            &path(&out_dir),
            "--precision",
            "f32",
            "--no-worse-than-champion",
            "--max-benign-session-fpr",
            "0.5",
        ])
    };
    let same = compare(champion);
    assert!(same.status.success(), "{}", text(&same));
    let report = read_json(&out_dir.join("compare.json"));
    assert_eq!(report["passed"], true);
    assert_eq!(
        report["files"][0]["changed_sessions"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        report["files"][0]["changed_accounts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let lower = compare(&challenger);
    assert!(!lower.status.success(), "{}", text(&lower));
    assert!(
        text(&lower).contains("the challenger fails"),
        "{}",
        text(&lower)
    );
    let report = read_json(&out_dir.join("compare.json"));
    assert_eq!(report["passed"], false);
    let file = &report["files"][0];
    let changed = file["changed_sessions"].as_array().unwrap();
    assert!(!changed.is_empty());
    for c in changed {
        assert_eq!(c["champion"][0], "clear", "{c}");
        assert_eq!(c["challenger"][0], "flag", "{c}");
    }
    let champion_flagged = file["champion"]["benign_session_fpr"].as_f64().unwrap();
    assert_eq!(file["challenger"]["benign_session_fpr"], 1.0);
    assert!(champion_flagged < 1.0);
    let failed: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["passed"] == false)
        .map(|r| r["gate"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&"benign session FPR: at most 0.5"),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"benign session FPR: no worse than the champion"),
        "{failed:?}"
    );
    let markdown = std::fs::read_to_string(out_dir.join("compare.md")).unwrap();
    assert!(
        markdown.contains("Verdict: the challenger fails"),
        "{markdown}"
    );
}

/// The notebook runs headless against a fresh evaluation folder.
/// `scripts/run-notebook.sh` sets up its Python packages from PyPI on first
/// use; the README's test command (`--include-ignored`) runs this test.
#[test]
#[ignore = "sets up Python packages from PyPI: run with --include-ignored (the README's test command)"]
fn notebook_runs_on_an_eval_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, out) = small_main_job(tmp.path());
    assert!(out.status.success(), "{}", text(&out));
    let executed = tmp.path().join("notebook");
    let out = Command::new(workspace_root().join("scripts/run-notebook.sh"))
        .arg(&run.eval_dir)
        .env("NOTEBOOK_OUT", &executed)
        .output()
        .expect("run scripts/run-notebook.sh");
    assert!(out.status.success(), "{}", text(&out));
    let nb: serde_json::Value = read_json(&executed.join("eval-report.ipynb"));
    let outputs: Vec<&serde_json::Value> = nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["outputs"].as_array())
        .flatten()
        .collect();
    assert!(!outputs.is_empty(), "the executed notebook has outputs");
    assert!(
        outputs.iter().all(|o| o["output_type"] != "error"),
        "a cell failed: {nb}"
    );
    assert!(
        serde_json::to_string(&nb).unwrap().contains("image/png"),
        "plots are drawn"
    );
}

#[test]
fn scoring_reports_bad_lines_by_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    tiny_base_model(&base);
    let path = |p: &Path| p.to_str().unwrap().to_string();
    // A bundle from a quick fit on the small dataset's test split.
    let data = tmp.path().join("data");
    let out = Command::new(workspace_binary("datasets"))
        .args([
            "build",
            "--config",
            "datasets/config/small.toml",
            "--out",
            &path(&data),
        ])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let bundle = tmp.path().join("bundle");
    let out = train(&[
        "fit",
        "--train",
        &path(&data.join("validation.jsonl")),
        "--validation",
        &path(&data.join("validation.jsonl")),
        "--base-model",
        &path(&base),
        "--out",
        &path(&bundle),
        "--run-dir",
        &path(&tmp.path().join("run")),
        "--max-tokens",
        "32",
        "--epochs",
        "1",
        "--train-layers",
        "head",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let input = tmp.path().join("mixed.jsonl");
    let good = std::fs::read_to_string(data.join("test.jsonl")).unwrap();
    let first: Vec<&str> = good.lines().take(3).collect();
    let lines = format!(
        "{}\n{{\"session_id\": \"x\", \"account_id\": \"a\", \"events\": [{{\"ts\": \"yesterday\", \"prompt\": \"p\"}}]}}\n{}\n",
        first[..2].join("\n"),
        first[2]
    );
    std::fs::write(&input, lines).unwrap();
    let scores = tmp.path().join("scores.jsonl");
    let args = |policy: &str| {
        vec![
            "score".to_string(),
            "--bundle".into(),
            path(&bundle),
            "--input".into(),
            path(&input),
            "-o".into(),
            path(&scores),
            "--policy".into(),
            policy.into(),
        ]
    };
    let out = train(&args("skip").iter().map(String::as_str).collect::<Vec<_>>());
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("skipped 1 bad lines"), "{log}");
    assert!(log.contains("mixed.jsonl:3: field `events[0].ts`"), "{log}");
    assert_eq!(read_jsonl(&scores).len(), 3);

    // Strict: the run stops at the bad line and the previous scores stay.
    let before = std::fs::read(&scores).unwrap();
    let out = train(
        &args("strict")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("mixed.jsonl:3: field `events[0].ts`"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&scores).unwrap(), before);

    let out = train(&[
        "cluster",
        "--bundle",
        &path(&bundle),
        "--input",
        &path(&input),
        "--eps",
        "3",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("eps must be in (0, 2]"),
        "{}",
        text(&out)
    );
    let out = train(&[
        "cluster",
        "--bundle",
        &path(&bundle),
        "--input",
        &path(&input),
        "--blocks",
        "4",
        "--pca-dims",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("blocks (4) need pca_dims"),
        "{}",
        text(&out)
    );
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

    let out = train(&["eval", "--bundle", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("nope/config.json"), "{}", text(&out));

    // Propagation's FPR below the session target would put its threshold
    // above the session threshold.
    let out = train(&["fit", "--propagation-fpr", "0.0001"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--propagation-fpr must be in [--target-fpr, 1)"),
        "{}",
        text(&out)
    );

    let out = train(&["fit", "--device", "tpu"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown device"), "{}", text(&out));

    // The main job trains on the splits it builds: a training file given
    // to it is refused, not silently replaced.
    let data_dir = tmp.path().join("data");
    let out = train(&[
        "run",
        "--train",
        "mine.jsonl",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--train and --validation belong to `train fit`"),
        "{}",
        text(&out)
    );
    assert!(!data_dir.exists(), "refused before building the dataset");
}
