//! The `datasets` binary end to end: the default build, determinism,
//! sessionizing a raw log and reporting bad input.

use std::process::{Command, Output};

use e2e::{workspace_binary, workspace_root};

fn datasets(args: &[&str]) -> Output {
    Command::new(workspace_binary("datasets"))
        .args(args)
        .current_dir(workspace_root())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run datasets")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn default_build_is_large_valid_and_byte_identical_per_seed() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for d in &dirs {
        ok(datasets(&["build", "--out", d.path().to_str().unwrap()]));
    }
    let files = [
        "train.jsonl",
        "validation.jsonl",
        "test.jsonl",
        "card.json",
        "card.md",
    ];
    for f in files {
        let a = std::fs::read(dirs[0].path().join(f)).unwrap();
        let b = std::fs::read(dirs[1].path().join(f)).unwrap();
        assert!(a == b, "{f} differs between two builds with the same seed");
    }
    // The committed card describes exactly what the default build produces.
    let built_card = std::fs::read(dirs[0].path().join("card.json")).unwrap();
    let committed = std::fs::read(workspace_root().join("datasets/card/default.json")).unwrap();
    assert!(
        built_card == committed,
        "datasets/card/default.json is stale: rebuild and copy data/default/card.* to datasets/card/ (see README)"
    );
    let card: serde_json::Value = serde_json::from_slice(&built_card).unwrap();
    let total: u64 = ["train", "validation", "test"]
        .iter()
        .map(|s| card["splits"][s]["sessions"].as_u64().unwrap())
        .sum();
    assert!(total >= 10_000, "default dataset has {total} sessions");
    let paths: Vec<String> = files[..3]
        .iter()
        .map(|f| dirs[0].path().join(f).display().to_string())
        .collect();
    let mut args = vec!["validate", "--policy", "strict"];
    args.extend(paths.iter().map(String::as_str));
    let report = ok(datasets(&args));
    assert_eq!(report.matches(", 0 bad lines").count(), 3, "{report}");
}

#[test]
fn another_seed_gives_other_bytes_and_gzip_works() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let small = "datasets/config/small.toml";
    ok(datasets(&[
        "build",
        "--config",
        small,
        "--out",
        a.path().to_str().unwrap(),
        "--gzip",
    ]));
    ok(datasets(&[
        "build",
        "--config",
        small,
        "--out",
        b.path().to_str().unwrap(),
        "--gzip",
        "--seed",
        "7",
    ]));
    let read = |d: &tempfile::TempDir| std::fs::read(d.path().join("test.jsonl.gz")).unwrap();
    assert_ne!(read(&a), read(&b));
    ok(datasets(&[
        "validate",
        "--policy",
        "strict",
        a.path().join("test.jsonl.gz").to_str().unwrap(),
    ]));
}

#[test]
fn bad_config_fails_with_the_key_and_keeps_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    ok(datasets(&[
        "build",
        "--config",
        "datasets/config/small.toml",
        "--out",
        out.to_str().unwrap(),
    ]));
    let before = std::fs::read(out.join("train.jsonl")).unwrap();
    let cfg = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(workspace_root().join("datasets/config/small.toml"))
        .unwrap()
        .replace(
            "corpora_dir = \"../corpora\"",
            "corpora_dir = \"/nonexistent/corpora\"",
        );
    std::fs::write(&cfg, text).unwrap();
    let res = datasets(&[
        "build",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("/nonexistent/corpora/dolly.jsonl"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out.join("train.jsonl")).unwrap(), before);
}

#[test]
fn sessionize_and_validate_report_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.jsonl");
    std::fs::write(
        &raw,
        concat!(
            r#"{"account_id":"a","ts":"2026-02-10T12:00:00Z","prompt":"x"}"#,
            "\n",
            r#"{"account_id":"a","ts":"2026-02-10T13:00:00Z","prompt":"y"}"#,
            "\n",
            r#"{"account_id":"b","ts":"not a time","prompt":"z"}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = dir.path().join("sessions.jsonl");
    // Strict (default): the bad line stops the run with file:line:field.
    let res = datasets(&[
        "sessionize",
        raw.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("raw.jsonl:3: field `ts`: invalid RFC 3339"),
        "{stderr}"
    );
    assert!(!out.exists());
    // Skip: two sessions for account a (an hour apart), one bad line counted.
    let res = datasets(&[
        "sessionize",
        raw.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--policy",
        "skip",
    ]);
    let stdout = ok(res);
    assert!(stdout.contains("2 requests -> 2 sessions"), "{stdout}");
    // The default build has no DataFusion or Ballista engine: a clear
    // error, and an engine it does not know is a usage error.
    let elsewhere = dir.path().join("engine.jsonl");
    for (engine, says) in [
        ("ballista://localhost:50050", "--features ballista"),
        (
            "spark://localhost:7077",
            "expected `in-memory`, `datafusion` or `ballista://HOST:PORT`",
        ),
    ] {
        let res = datasets(&[
            "sessionize",
            raw.to_str().unwrap(),
            "-o",
            elsewhere.to_str().unwrap(),
            "--policy",
            "skip",
            "--engine",
            engine,
        ]);
        assert!(!res.status.success());
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert!(!elsewhere.exists());
    }
    // validate reports the bad line of a sessions file and fails.
    let mut text = std::fs::read_to_string(&out).unwrap();
    text.push_str("{\"session_id\":\"z\",\"account_id\":\"q\",\"events\":[]}\n");
    std::fs::write(&out, text).unwrap();
    let res = datasets(&["validate", out.to_str().unwrap()]);
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("sessions.jsonl:3: field `events`: must hold at least one event"),
        "{stderr}"
    );
}

#[test]
fn parquet_converts_sessionizes_and_validates_like_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    ok(datasets(&[
        "build",
        "--config",
        "datasets/config/small.toml",
        "--out",
        &p("data"),
    ]));
    // Sessions: JSONL -> Parquet -> JSONL gives back the same bytes.
    let jsonl = p("data/test.jsonl");
    let out = ok(datasets(&["convert", &jsonl, "-o", &p("test.parquet")]));
    assert!(out.contains("records -> "), "{out}");
    ok(datasets(&[
        "convert",
        &p("test.parquet"),
        "-o",
        &p("back.jsonl"),
    ]));
    assert!(std::fs::read(&jsonl).unwrap() == std::fs::read(p("back.jsonl")).unwrap());
    let report = ok(datasets(&[
        "validate",
        "--policy",
        "strict",
        &p("test.parquet"),
    ]));
    assert!(report.contains(", 0 bad lines"), "{report}");

    // A raw log sessionizes the same from JSONL and from Parquet.
    let mut raw = String::new();
    for line in std::fs::read_to_string(&jsonl).unwrap().lines().take(300) {
        let s: serde_json::Value = serde_json::from_str(line).unwrap();
        for e in s["events"].as_array().unwrap() {
            let mut r = e.clone();
            r["account_id"] = s["account_id"].clone();
            r["account"] = s["account"].clone();
            raw.push_str(&format!("{r}\n"));
        }
    }
    std::fs::write(p("raw.jsonl"), raw).unwrap();
    ok(datasets(&[
        "convert",
        "--raw-log",
        &p("raw.jsonl"),
        "-o",
        &p("raw.parquet"),
    ]));
    ok(datasets(&[
        "sessionize",
        &p("raw.jsonl"),
        "-o",
        &p("s.jsonl"),
    ]));
    ok(datasets(&[
        "sessionize",
        &p("raw.parquet"),
        "-o",
        &p("s.parquet"),
    ]));
    ok(datasets(&[
        "convert",
        &p("s.parquet"),
        "-o",
        &p("s2.jsonl"),
    ]));
    let a = std::fs::read_to_string(p("s.jsonl")).unwrap();
    assert!(a.lines().count() >= 100, "{}", a.lines().count());
    assert_eq!(a, std::fs::read_to_string(p("s2.jsonl")).unwrap());

    // A truncated Parquet file is a clear error naming it.
    let bytes = std::fs::read(p("test.parquet")).unwrap();
    std::fs::write(p("cut.parquet"), &bytes[..bytes.len() - 100]).unwrap();
    let res = datasets(&["validate", &p("cut.parquet")]);
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("cut.parquet: footer: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
