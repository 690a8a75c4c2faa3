//! Model throughput benchmark: candle training steps (forward + backward +
//! AdamW) and inference of the MiniLM-size classifier on this machine, in
//! every inference precision the CPU runs (f32, bf16, int8; bf16 and int8
//! on AMX tiles and on AVX-512 where the CPU has AMX), optionally side
//! by side in the same run with the peers: PyTorch fp32 and bf16 autocast,
//! ONNX Runtime fp32 and int8 dynamic quantisation. Results go to stdout as
//! JSON lines and a Markdown table, after the CPU model and the kernels.
//!
//! `cargo run --release -p train --bin bench-model -- --torch-python .venv-baseline/bin/python --ort`
#![forbid(unsafe_code)]

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use clap::Parser;
use datasets::NUM_FEATURES;
use models::{
    base_model, checkpoint::load_into, classifier::HEAD_PREFIX, optim::FusedAdamW, BertConfig,
    CpuFeatures, HeadConfig, Mode, Precision, SessionClassifier,
};
use serde_json::json;

/// Benchmarks candle training and inference throughput of the classifier.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Base model: a directory or a hub id (see scripts/fetch-base-model.sh).
    #[arg(long, default_value = "sentence-transformers/all-MiniLM-L6-v2")]
    base_model: String,
    /// Timed steps per configuration.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed warm-up steps per configuration.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Python with torch + transformers (shared/baselines requirements): runs
    /// the PyTorch baseline on the same model and shapes in the same run.
    #[arg(long)]
    torch_python: Option<PathBuf>,
    /// Also run ONNX Runtime fp32 and int8 (dynamic quantisation) with
    /// --torch-python's interpreter (exports the model once per run).
    #[arg(long, requires = "torch_python")]
    ort: bool,
    /// Directory of the baseline scripts.
    #[arg(long, default_value = "bench/baselines")]
    baselines: PathBuf,
    /// Where the ONNX exports go.
    #[arg(long, default_value = "target/bench-onnx")]
    onnx_dir: PathBuf,
    /// candle inference precisions (comma-separated; default: every one
    /// this CPU runs).
    #[arg(long, value_delimiter = ',')]
    precisions: Vec<Precision>,
    /// Timed calls of the batch-1 latency benchmarks.
    #[arg(long, default_value_t = 100)]
    latency_iters: usize,
    /// Only these benchmarks (comma-separated: infer_b32_s64, infer_b32_s128,
    /// infer_b1_s64, infer_b1_s128, train_b16_s128, train_b16_s256).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Let the allocator return freed memory to the kernel, as before
    /// `models::allocator::retain_freed_memory` (to measure what it buys).
    #[arg(long)]
    return_freed_memory: bool,
    /// Train with candle's own AdamW instead of the fused one (to measure
    /// what the fused optimizer step buys).
    #[arg(long)]
    candle_adamw: bool,
    /// Where the CPU has AMX, run bf16 and int8 on AMX tiles only, not also
    /// on AVX-512 (`DG_AMX=off`).
    #[arg(long)]
    no_avx512_runs: bool,
    /// Device of the candle runs and of the PyTorch baselines: `cpu`,
    /// `cuda` or `cuda:N` (CUDA needs the `cuda` feature; there candle runs
    /// f32 only and ONNX Runtime, a CPU build here, is skipped).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// One candle inference configuration: a precision, and whether AMX
/// tiles are kept off.
#[derive(Debug, Clone, Copy)]
struct CandleKernels {
    precision: Precision,
    amx_off: bool,
}

impl CandleKernels {
    /// `candle-int8`, or `candle-int8-avx512` with AMX kept off.
    fn engine(self) -> String {
        let suffix = if self.amx_off { "-avx512" } else { "" };
        format!("candle-{}{suffix}", self.precision)
    }

    /// Sets `DG_AMX` so that layers packed from now on use these kernels.
    fn select(self) {
        if self.amx_off {
            std::env::set_var(models::AMX_ENV, "off");
        } else {
            std::env::remove_var(models::AMX_ENV);
        }
    }
}

struct Shape {
    name: &'static str,
    train: bool,
    batch: usize,
    seq: usize,
}

const SHAPES: [Shape; 6] = [
    Shape {
        name: "infer_b32_s64",
        train: false,
        batch: 32,
        seq: 64,
    },
    Shape {
        name: "infer_b32_s128",
        train: false,
        batch: 32,
        seq: 128,
    },
    Shape {
        name: "infer_b1_s64",
        train: false,
        batch: 1,
        seq: 64,
    },
    Shape {
        name: "infer_b1_s128",
        train: false,
        batch: 1,
        seq: 128,
    },
    Shape {
        name: "train_b16_s128",
        train: true,
        batch: 16,
        seq: 128,
    },
    Shape {
        name: "train_b16_s256",
        train: true,
        batch: 16,
        seq: 256,
    },
];

/// Throughput and per-call latency of one engine on one shape.
#[derive(Debug, Clone, Copy)]
struct Measured {
    seqs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Measured {
    /// From per-call seconds of `batch` sequences (throughput from the
    /// median call).
    fn of(batch: usize, mut times: Vec<f64>) -> Self {
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        Measured {
            seqs_per_s: batch as f64 / at(0.5),
            p50_ms: at(0.5) * 1e3,
            p99_ms: at(0.99) * 1e3,
        }
    }
}

fn candle_run(
    args: &Args,
    bert: &BertConfig,
    weights: &std::path::Path,
    shape: &Shape,
    (precision, device): (Precision, &Device),
) -> Result<Measured> {
    if args.candle_adamw {
        candle_run_with::<AdamW>(args, bert, weights, shape, (precision, device))
    } else {
        candle_run_with::<FusedAdamW>(args, bert, weights, shape, (precision, device))
    }
}

/// Timed calls of `shape`: the latency benchmarks take more.
fn iterations(args: &Args, shape: &Shape) -> usize {
    if shape.batch == 1 {
        args.latency_iters
    } else {
        args.steps
    }
}

/// `shape` in candle, inference in `precision`, training with the
/// optimizer `O`.
fn candle_run_with<O: Optimizer<Config = ParamsAdamW>>(
    args: &Args,
    bert: &BertConfig,
    weights: &std::path::Path,
    shape: &Shape,
    (precision, device): (Precision, &Device),
) -> Result<Measured> {
    let head = HeadConfig {
        num_features: NUM_FEATURES,
        hidden_dim: 128,
        dropout: 0.1,
        max_tokens: shape.seq,
        max_prompts: 4,
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let mut model = SessionClassifier::load(vb, bert, &head)?;
    load_into(&varmap, weights, |n| n.starts_with(HEAD_PREFIX))?;
    model.encoder.set_precision(precision)?;
    let ids =
        Tensor::rand(1000f32, 29000f32, (shape.batch, shape.seq), device)?.to_dtype(DType::U32)?;
    let mask = Tensor::ones((shape.batch, shape.seq), DType::U32, device)?;
    let features = Tensor::randn(0f32, 1.0, (shape.batch, NUM_FEATURES), device)?;
    let labels = Tensor::rand(0f32, 1f32, shape.batch, device)?
        .ge(0.5)?
        .to_dtype(DType::F32)?;
    let mut opt = O::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 2e-5,
            weight_decay: 0.01,
            ..Default::default()
        },
    )?;
    let mut times = Vec::new();
    for step in 0..args.warmup + iterations(args, shape) {
        let start = Instant::now();
        if shape.train {
            let out = model.forward(&ids, &mask, &features, Mode::Train)?;
            let loss = candle_nn::loss::binary_cross_entropy_with_logit(&out.logits, &labels)?;
            opt.backward_step(&loss)?;
            // A GPU runs the step asynchronously: wait for it.
            device.synchronize()?;
        } else {
            let out = model.forward(&ids, &mask, &features, Mode::Eval)?;
            out.logits.to_vec1::<f32>()?;
        }
        if step >= args.warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(Measured::of(shape.batch, times))
}

/// Runs a baseline script and reads its last JSON line.
fn python_run(
    python: &PathBuf,
    script: &std::path::Path,
    script_args: &[String],
) -> Result<Measured> {
    let out = Command::new(python)
        .arg(script)
        .args(script_args)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON line from baseline")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let field = |name: &str| {
        v[name]
            .as_f64()
            .with_context(|| format!("baseline JSON lacks {name}"))
    };
    Ok(Measured {
        seqs_per_s: field("seqs_per_s")?,
        p50_ms: field("median_ms")?,
        p99_ms: field("p99_ms")?,
    })
}

/// Arguments every baseline script takes for `shape`.
fn shape_args(args: &Args, shape: &Shape) -> Vec<String> {
    let count = if shape.train { "--steps" } else { "--iters" };
    [
        "--device",
        &args.device,
        "--batch",
        &shape.batch.to_string(),
        "--seq",
        &shape.seq.to_string(),
        "--threads",
        "2",
        count,
        &iterations(args, shape).to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// The ONNX exports: fp32 (torch.onnx) and its int8 dynamic quantisation.
struct OnnxModels {
    fp32: PathBuf,
    int8: PathBuf,
}

fn export_onnx(python: &PathBuf, args: &Args, model_dir: &std::path::Path) -> Result<OnnxModels> {
    std::fs::create_dir_all(&args.onnx_dir)
        .with_context(|| format!("creating {}", args.onnx_dir.display()))?;
    let models = OnnxModels {
        fp32: args.onnx_dir.join("minilm.onnx"),
        int8: args.onnx_dir.join("minilm.int8.onnx"),
    };
    for (script, from, to) in [
        ("export_onnx.py", model_dir, &models.fp32),
        ("quantize_onnx.py", models.fp32.as_path(), &models.int8),
    ] {
        let status = Command::new(python)
            .arg(args.baselines.join(script))
            .arg(from)
            .arg(to)
            .status()
            .with_context(|| format!("running {script}"))?;
        if !status.success() {
            bail!("{script} failed ({status})");
        }
    }
    Ok(models)
}

/// The peers' measurements of `shape`, by engine name.
fn peer_runs(
    args: &Args,
    model_dir: &std::path::Path,
    onnx: Option<&OnnxModels>,
    shape: &Shape,
) -> Result<Vec<(String, Measured)>> {
    let Some(py) = &args.torch_python else {
        return Ok(Vec::new());
    };
    let base = shape_args(args, shape);
    let dir = model_dir.display().to_string();
    let with = |extra: &[&str]| -> Vec<String> {
        std::iter::once(dir.clone())
            .chain(extra.iter().map(|s| s.to_string()))
            .chain(base.iter().cloned())
            .collect()
    };
    let mut runs = Vec::new();
    if shape.train {
        let script = args.baselines.join("torch_train.py");
        runs.push(("torch-fp32".into(), python_run(py, &script, &with(&[]))?));
        runs.push((
            "torch-bf16".into(),
            python_run(py, &script, &with(&["--bf16"]))?,
        ));
        return Ok(runs);
    }
    let script = args.baselines.join("torch_infer.py");
    runs.push(("torch-fp32".into(), python_run(py, &script, &with(&[]))?));
    runs.push((
        "torch-bf16".into(),
        python_run(py, &script, &with(&["--bf16"]))?,
    ));
    if let Some(onnx) = onnx {
        let script = args.baselines.join("ort_infer.py");
        for (name, file) in [("ort-fp32", &onnx.fp32), ("ort-int8", &onnx.int8)] {
            let file = file.display().to_string();
            runs.push((name.into(), python_run(py, &script, &with(&[&file]))?));
        }
    }
    Ok(runs)
}

/// The CPU model name, as `lscpu` prints it.
fn cpu_model() -> String {
    let out = Command::new("lscpu").output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    text.ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Model name:"))
                .map(|l| l["Model name:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The candle configurations to run: the precisions asked for, or every
/// one this CPU runs (the others are reported as skipped), each also on
/// AVX-512 where it runs on AMX tiles (unless `--no-avx512-runs`).
fn candle_kernels(args: &Args, cpu: &CpuFeatures) -> Result<Vec<CandleKernels>> {
    let asked = if args.precisions.is_empty() {
        Precision::ALL.to_vec()
    } else {
        args.precisions.clone()
    };
    let mut runs = Vec::new();
    for precision in asked {
        match cpu.kernels(precision) {
            Ok(words) => println!("candle {precision}: {words}"),
            Err(e) => {
                println!("candle {precision}: skipped: {e}");
                continue;
            }
        }
        runs.push(CandleKernels {
            precision,
            amx_off: false,
        });
        if cpu.tiles(precision) && !args.no_avx512_runs {
            let off = CpuFeatures {
                amx_refused: Some("turned off by DG_AMX"),
                ..*cpu
            };
            println!("candle {precision}-avx512: {}", off.kernels(precision)?);
            runs.push(CandleKernels {
                precision,
                amx_off: true,
            });
        }
    }
    Ok(runs)
}

#[global_allocator]
static GLOBAL: models::allocator::MiMalloc = models::allocator::MiMalloc;

fn main() -> Result<()> {
    datasets::logging::init();
    let args = Args::parse();
    if !args.return_freed_memory {
        models::allocator::retain_freed_memory();
    }
    let cpu = CpuFeatures::detect();
    println!("cpu: {} ({cpu:?})", cpu_model());
    println!(
        "allocator: mimalloc, purge delay {} ms (-1: freed memory is kept)",
        models::allocator::purge_delay_ms()
    );
    let device = models::device::parse_device(&args.device)?;
    let kernels = match device.is_cpu() {
        true => candle_kernels(&args, &cpu)?,
        false => {
            println!("candle f32 on {}: candle's CUDA kernels", args.device);
            vec![CandleKernels {
                precision: Precision::F32,
                amx_off: false,
            }]
        }
    };
    let (files, _) = base_model::resolve(&args.base_model)?;
    let bert = BertConfig::from_file(&files.config)?;
    let model_dir = files
        .weights
        .parent()
        .context("weights have a directory")?
        .to_path_buf();
    if args.ort && !device.is_cpu() {
        println!(
            "ONNX Runtime: skipped on {} (a CPU build here)",
            args.device
        );
    }
    let onnx = match (&args.torch_python, args.ort && device.is_cpu()) {
        (Some(py), true) => Some(export_onnx(py, &args, &model_dir)?),
        _ => None,
    };
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    let mut rows = Vec::new();
    for shape in SHAPES
        .iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name))
    {
        let mut runs = Vec::new();
        let f32_only = [CandleKernels {
            precision: Precision::F32,
            amx_off: false,
        }];
        let candle_configs = if shape.train { &f32_only[..] } else { &kernels };
        for &config in candle_configs {
            config.select();
            let on = (config.precision, &device);
            let m = candle_run(&args, &bert, &files.weights, shape, on)?;
            runs.push((config.engine(), m));
        }
        runs.extend(peer_runs(&args, &model_dir, onnx.as_ref(), shape)?);
        for (engine, m) in &runs {
            println!(
                "{}",
                json!({"bench": shape.name, "engine": engine, "seqs_per_s": m.seqs_per_s,
                       "p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "rayon_threads": threads})
            );
        }
        rows.push((shape.name, runs));
    }
    print_table(&rows);
    Ok(())
}

/// The Markdown table: sequences/s (and p50 / p99 ms for batch 1) per
/// engine, the best candle over the best peer, and candle f32 over
/// PyTorch fp32 (the training target).
fn print_table(rows: &[(&str, Vec<(String, Measured)>)]) {
    for (shape, runs) in rows {
        println!("\n{shape}:\n\n| engine | seq/s | p50 ms | p99 ms |\n|---|---:|---:|---:|");
        for (engine, m) in runs {
            println!(
                "| {engine} | {:.1} | {:.2} | {:.2} |",
                m.seqs_per_s, m.p50_ms, m.p99_ms
            );
        }
        let best = |candle: bool| {
            runs.iter()
                .filter(|(e, _)| e.starts_with("candle") == candle)
                .max_by(|a, b| a.1.seqs_per_s.total_cmp(&b.1.seqs_per_s))
        };
        if let (Some((c, cm)), Some((p, pm))) = (best(true), best(false)) {
            println!(
                "\nbest candle ({c}) / best peer ({p}): {:.2}x",
                cm.seqs_per_s / pm.seqs_per_s
            );
        }
        let engine = |name: &str| runs.iter().find(|(e, _)| e == name).map(|(_, m)| m);
        if let (Some(f32), Some(fp32)) = (engine("candle-f32"), engine("torch-fp32")) {
            println!(
                "candle f32 / PyTorch fp32: {:.2}x",
                f32.seqs_per_s / fp32.seqs_per_s
            );
        }
    }
}
