//! The sharded-scoring harness: `train score --shard K/N` run as N
//! concurrent processes over one Parquet sessions file, then
//! `merge-scores`, gives the scores of the unsharded run.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::{Command, Output},
};

use e2e::{workspace_binary, workspace_root};

fn run(binary: &str, args: &[&str]) -> Output {
    let out = Command::new(workspace_binary(binary))
        .args(args)
        .current_dir(workspace_root())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run binary");
    assert!(
        out.status.success(),
        "{binary} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn shards_scored_by_separate_processes_merge_to_the_unsharded_scores() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let corpus =
        std::fs::read_to_string(workspace_root().join("datasets/corpora/dolly.jsonl")).unwrap();
    let bundle =
        models::tiny::write_tiny_bundle(&dir.path().join("tiny"), [corpus.as_str()], 0.5, 0)
            .unwrap();
    let bundle = bundle.display().to_string();
    run(
        "datasets",
        &[
            "build",
            "--config",
            "datasets/config/small.toml",
            "--out",
            &p("data"),
        ],
    );
    run(
        "datasets",
        &["convert", &p("data/test.jsonl"), "-o", &p("test.parquet")],
    );

    let input = p("test.parquet");
    let score = |out: &str, shard: Option<&str>| {
        let mut args = vec!["score", "--bundle", &bundle, "-i", &input, "-o", out];
        args.extend(shard.map(|s| ["--shard", s]).into_iter().flatten());
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Command::new(workspace_binary("train"))
            .args(args)
            .current_dir(workspace_root())
            .spawn()
            .expect("spawn train score")
    };
    // Three shard processes at once; shard files in both formats.
    let outputs = [
        p("shard-0.parquet"),
        p("shard-1.jsonl"),
        p("shard-2.parquet"),
    ];
    let shards = ["0/3", "1/3", "2/3"];
    let children: Vec<_> = outputs
        .iter()
        .zip(shards)
        .map(|(out, s)| score(out, Some(s)))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert!(score(&p("all.parquet"), None).wait().unwrap().success());

    let mut merge = vec!["merge-scores"];
    merge.extend(outputs.iter().map(String::as_str));
    let merged_path = p("merged.jsonl");
    merge.extend(["-o", &merged_path]);
    run("train", &merge);
    run(
        "train",
        &["merge-scores", &p("all.parquet"), "-o", &p("all.jsonl")],
    );

    let merged = read_jsonl(Path::new(&p("merged.jsonl")));
    let all = read_jsonl(Path::new(&p("all.jsonl")));
    let sessions = std::fs::read_to_string(p("data/test.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(all.len(), sessions);
    assert_eq!(merged.len(), all.len());
    for (m, a) in merged.iter().zip(&all) {
        assert_eq!(m["session_id"], a["session_id"]);
        assert_eq!(m["account_id"], a["account_id"]);
        let (ms, asc) = (m["score"].as_f64().unwrap(), a["score"].as_f64().unwrap());
        assert!((ms - asc).abs() < 1e-5, "{m} vs {a}");
        assert_eq!(m["flagged"], a["flagged"], "{m} vs {a}");
    }
    // Every shard holds whole accounts, and every shard holds some.
    let shard_jsonl = p("shard-1.jsonl");
    let one = read_jsonl(Path::new(&shard_jsonl));
    assert!(!one.is_empty() && one.len() < all.len());
    let in_shard: BTreeSet<&str> = one
        .iter()
        .map(|r| r["account_id"].as_str().unwrap())
        .collect();
    let mut sessions_of: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &all {
        *sessions_of
            .entry(r["account_id"].as_str().unwrap())
            .or_default() += 1;
    }
    let expected: usize = in_shard.iter().map(|a| sessions_of[a]).sum();
    assert_eq!(one.len(), expected);

    // A shard file given twice is refused, naming the account and files.
    let res = Command::new(workspace_binary("train"))
        .args([
            "merge-scores",
            &shard_jsonl,
            &shard_jsonl,
            "-o",
            &p("bad.jsonl"),
        ])
        .output()
        .unwrap();
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("is in two shards"));
}
