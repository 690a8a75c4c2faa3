//! Load generator for `serve`, run side by side with Python servers on the
//! same bundle as baselines: PyTorch eager, one request at a time
//! (`serve/bench/torch_server.py`), and ONNX Runtime int8 with dynamic
//! quantisation behind a server that batches concurrent requests
//! (`serve/bench/ort_server.py`). It measures p50/p99 latency at 1 request
//! in flight and throughput at 32 in flight, for one-prompt and ten-prompt
//! sessions. All servers run in this process's lifetime, one measured at a
//! time.
//!
//! `cargo build --release -p serve && ./target/release/bench-serve --python .venv-baseline/bin/python`
#![forbid(unsafe_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::Parser;
use datasets::{read_sessions, BadLinePolicy, Event, Session};
use serde_json::json;

/// Load generator for serve vs. a Python PyTorch server.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// Bundle both servers load.
    #[arg(long, default_value = "models/distill-guard-minilm")]
    model_dir: PathBuf,
    /// Python with torch, transformers, safetensors, tokenizers and
    /// onnxruntime (the baseline venv); the baselines are skipped only if
    /// this is `none`.
    #[arg(long, default_value = ".venv-baseline/bin/python")]
    python: String,
    /// Baseline servers to run beside serve.
    #[arg(long, value_delimiter = ',', default_value = "torch,ort")]
    baselines: Vec<Baseline>,
    /// Sessions file whose prompts the requests carry.
    #[arg(long, default_value = "data/default/test.jsonl")]
    data: PathBuf,
    /// Prompts per session, one scenario each.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    prompts: Vec<usize>,
    /// Requests sent one after another for the 1-in-flight latency.
    #[arg(long, default_value_t = 100)]
    sequential: usize,
    /// Requests in flight for the throughput run.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of the throughput run.
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    /// Threads each server gives its model.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Extra flags for serve (repeat for several, e.g.
    /// `--serve-arg=--max-batch-size --serve-arg=8`).
    #[arg(long, allow_hyphen_values = true)]
    serve_arg: Vec<String>,
}

/// A Python baseline server.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Baseline {
    /// PyTorch eager fp32, one request at a time per thread.
    Torch,
    /// ONNX Runtime int8 (dynamic quantisation), concurrent requests batched.
    Ort,
}

impl Baseline {
    /// Its name in the tables.
    fn name(self) -> &'static str {
        match self {
            Baseline::Torch => "torch",
            Baseline::Ort => "ort-int8",
        }
    }

    /// Its script under `serve/bench`.
    fn script(self) -> &'static str {
        match self {
            Baseline::Torch => "torch_server.py",
            Baseline::Ort => "ort_server.py",
        }
    }
}

/// A server under test; killed when dropped.
struct Target {
    name: &'static str,
    url: String,
    child: Child,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command`, reads the URL it prints on its first stdout line and
/// waits for `/ready`.
fn start(name: &'static str, mut command: Command) -> Result<Target> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) else {
        bail!("{name} printed {line:?} instead of its address");
    };
    let target = Target {
        name,
        url: url.to_string(),
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while ureq::get(&format!("{}/ready", target.url)).call().is_err() {
        if Instant::now() > deadline {
            bail!("{name} never became ready");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(target)
}

/// Request bodies of one session with `k` prompts each, cycling through
/// the prompts of `data`.
fn bodies(data: &Path, k: usize, n: usize) -> Result<Vec<String>> {
    let mut prompts = Vec::new();
    for s in read_sessions(data, BadLinePolicy::Strict)? {
        prompts.extend(s?.events.into_iter().map(|e| e.prompt));
        if prompts.len() >= 4000 {
            break;
        }
    }
    let t0 = chrono::Utc::now();
    Ok((0..n)
        .map(|i| {
            let session = Session {
                session_id: format!("bench-{i}"),
                account_id: format!("acct-{}", i % 50),
                label: None,
                campaign_id: None,
                archetype: None,
                account: None,
                events: (0..k)
                    .map(|j| Event {
                        ts: t0 + chrono::Duration::seconds(20 * j as i64),
                        prompt: prompts[(i * k + j) % prompts.len()].clone(),
                        ip: Some("203.0.113.7".into()),
                        asn: Some(64500),
                        user_agent: Some("python-httpx/0.27.0".into()),
                        model: None,
                        response_tokens: Some(400),
                    })
                    .collect(),
            };
            json!({ "sessions": [session] }).to_string()
        })
        .collect())
}

/// One request; its latency.
fn send(agent: &ureq::Agent, url: &str, body: &str) -> Result<Duration> {
    let started = Instant::now();
    let response = agent
        .post(&format!("{url}/v1/score"))
        .set("content-type", "application/json")
        .send_string(body)
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    response.into_string()?;
    Ok(started.elapsed())
}

/// Latencies and throughput of one run.
struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn percentile_ms(&self, p: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort();
        let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e3
    }

    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn sequential(url: &str, bodies: &[String], n: usize) -> Result<Run> {
    let agent = ureq::Agent::new();
    for body in bodies.iter().take(5) {
        send(&agent, url, body)?;
    }
    let started = Instant::now();
    let latencies = bodies
        .iter()
        .cycle()
        .take(n)
        .map(|b| send(&agent, url, b))
        .collect::<Result<_>>()?;
    Ok(Run {
        latencies,
        elapsed: started.elapsed(),
    })
}

fn concurrent(url: &str, bodies: &[String], clients: usize, duration: Duration) -> Result<Run> {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let per_client: Vec<Result<Vec<Duration>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let stop = &stop;
                scope.spawn(move || {
                    let agent = ureq::Agent::new();
                    let mut latencies = Vec::new();
                    let mut i = c;
                    while !stop.load(Ordering::Relaxed) {
                        latencies.push(send(&agent, url, &bodies[i % bodies.len()])?);
                        i += clients;
                    }
                    Ok(latencies)
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    for l in per_client {
        latencies.extend(l?);
    }
    Ok(Run { latencies, elapsed })
}

/// Sums of serve's batch metrics: (batches, sessions, inference seconds);
/// `None` for a server without them.
fn batch_sums(url: &str) -> Option<(f64, f64, f64)> {
    let text = ureq::get(&format!("{url}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    let value = |name: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    Some((
        value("distill_guard_batch_size_count")?,
        value("distill_guard_batch_size_sum")?,
        value("distill_guard_inference_duration_seconds_sum")?,
    ))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[global_allocator]
static GLOBAL: models::allocator::MiMalloc = models::allocator::MiMalloc;

fn main() -> Result<()> {
    let args = Args::parse();
    let exe_dir = std::env::current_exe()?
        .parent()
        .context("bench binary has no directory")?
        .to_path_buf();
    let mut serve = Command::new(exe_dir.join("serve"));
    serve
        .arg("--model-dir")
        .arg(&args.model_dir)
        .args(["--addr", "127.0.0.1:0"])
        .args(["--model-threads", &args.threads.to_string()])
        .args(&args.serve_arg)
        .env("RUST_LOG", "warn");
    let mut targets = vec![start("serve", serve)?];
    if args.python != "none" {
        for &baseline in &args.baselines {
            let script = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("bench")
                .join(baseline.script());
            let mut python = Command::new(&args.python);
            python
                .arg(script)
                .arg(&args.model_dir)
                .args(["--port", &free_port()?.to_string()])
                .args(["--threads", &args.threads.to_string()])
                .env("PYTHONWARNINGS", "ignore");
            targets.push(start(baseline.name(), python)?);
        }
    }

    println!(
        "| prompts/session | server | p50 ms @1 | p99 ms @1 | sessions/s @{c} | p50 ms @{c} | p99 ms @{c} | p99 @{c} / p50 @1 |",
        c = args.concurrency
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut summary = Vec::new();
    let mut notes = Vec::new();
    for &k in &args.prompts {
        let bodies = bodies(&args.data, k, 512)?;
        let mut throughput = Vec::new();
        for t in &targets {
            let one = sequential(&t.url, &bodies, args.sequential)?;
            let before = batch_sums(&t.url);
            let many = concurrent(
                &t.url,
                &bodies,
                args.concurrency,
                Duration::from_secs(args.duration_s),
            )?;
            if let (Some(b), Some(a)) = (before, batch_sums(&t.url)) {
                notes.push(format!(
                    "{k} prompt(s)/session, {} at {} in flight: {:.1} sessions per batch on average, model busy {:.0}% of the run",
                    t.name,
                    args.concurrency,
                    (a.1 - b.1) / (a.0 - b.0).max(1.0),
                    100.0 * (a.2 - b.2) / many.elapsed.as_secs_f64()
                ));
            }
            println!(
                "| {k} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
                t.name,
                one.percentile_ms(0.5),
                one.percentile_ms(0.99),
                many.per_second(),
                many.percentile_ms(0.5),
                many.percentile_ms(0.99),
                many.percentile_ms(0.99) / one.percentile_ms(0.5),
            );
            throughput.push(many.per_second());
        }
        if let Some((ours, baselines)) = throughput.split_first() {
            for (t, theirs) in targets[1..].iter().zip(baselines) {
                summary.push(format!(
                    "{k} prompt(s)/session: serve / {} throughput at {} in flight = {:.2}x",
                    t.name,
                    args.concurrency,
                    ours / theirs
                ));
            }
        }
    }
    println!();
    for line in notes.into_iter().chain(summary) {
        println!("{line}");
    }
    Ok(())
}
