//! Model throughput benchmark: candle training steps (forward + backward +
//! AdamW) and inference of the MiniLM-size classifier on this machine,
//! optionally side by side with the PyTorch baseline scripts in the same
//! run. Results go to stdout as JSON lines and a Markdown table.
//!
//! `cargo run --release -p train --bin bench-model -- --torch-python .venv-baseline/bin/python`

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use clap::Parser;
use datasets::NUM_FEATURES;
use models::{
    base_model, checkpoint::load_into, classifier::HEAD_PREFIX, optim::FusedAdamW, BertConfig,
    HeadConfig, Mode, SessionClassifier,
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
    /// Directory of the baseline scripts.
    #[arg(long, default_value = "bench/baselines")]
    baselines: PathBuf,
    /// Only these benchmarks (comma-separated: infer_b32_s64, infer_b32_s128,
    /// train_b16_s128, train_b16_s256).
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
}

struct Shape {
    name: &'static str,
    train: bool,
    batch: usize,
    seq: usize,
}

const SHAPES: [Shape; 4] = [
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn candle_run(
    args: &Args,
    bert: &BertConfig,
    weights: &std::path::Path,
    shape: &Shape,
) -> Result<f64> {
    if args.candle_adamw {
        candle_run_with::<AdamW>(args, bert, weights, shape)
    } else {
        candle_run_with::<FusedAdamW>(args, bert, weights, shape)
    }
}

/// Sequences per second of `shape` with the optimizer `O` for training.
fn candle_run_with<O: Optimizer<Config = ParamsAdamW>>(
    args: &Args,
    bert: &BertConfig,
    weights: &std::path::Path,
    shape: &Shape,
) -> Result<f64> {
    let device = Device::Cpu;
    let head = HeadConfig {
        num_features: NUM_FEATURES,
        hidden_dim: 128,
        dropout: 0.1,
        max_tokens: shape.seq,
        max_prompts: 4,
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = SessionClassifier::load(vb, bert, &head)?;
    load_into(&varmap, weights, |n| n.starts_with(HEAD_PREFIX))?;
    let ids =
        Tensor::rand(1000f32, 29000f32, (shape.batch, shape.seq), &device)?.to_dtype(DType::U32)?;
    let mask = Tensor::ones((shape.batch, shape.seq), DType::U32, &device)?;
    let features = Tensor::randn(0f32, 1.0, (shape.batch, NUM_FEATURES), &device)?;
    let labels = Tensor::rand(0f32, 1f32, shape.batch, &device)?
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
    for step in 0..args.warmup + args.steps {
        let start = Instant::now();
        if shape.train {
            let out = model.forward(&ids, &mask, &features, Mode::Train)?;
            let loss = candle_nn::loss::binary_cross_entropy_with_logit(&out.logits, &labels)?;
            opt.backward_step(&loss)?;
        } else {
            let out = model.forward(&ids, &mask, &features, Mode::Eval)?;
            out.logits.to_vec1::<f32>()?;
        }
        if step >= args.warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(shape.batch as f64 / median(&mut times))
}

fn torch_run(
    python: &PathBuf,
    args: &Args,
    model_dir: &std::path::Path,
    shape: &Shape,
) -> Result<f64> {
    let script = if shape.train {
        "torch_train.py"
    } else {
        "torch_infer.py"
    };
    let out = Command::new(python)
        .arg(args.baselines.join(script))
        .arg(model_dir)
        .args([
            "--batch",
            &shape.batch.to_string(),
            "--seq",
            &shape.seq.to_string(),
            "--threads",
            "2",
        ])
        .args([
            if shape.train { "--steps" } else { "--iters" },
            &args.steps.to_string(),
        ])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!("{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON line from baseline")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    v["seqs_per_s"]
        .as_f64()
        .context("baseline JSON lacks seqs_per_s")
}

fn main() -> Result<()> {
    datasets::logging::init();
    let args = Args::parse();
    if !args.return_freed_memory {
        models::allocator::retain_freed_memory();
    }
    println!(
        "allocator: mimalloc, purge delay {} ms (-1: freed memory is kept)",
        models::allocator::purge_delay_ms()
    );
    let (files, _) = base_model::resolve(&args.base_model)?;
    let bert = BertConfig::from_file(&files.config)?;
    let model_dir = files
        .weights
        .parent()
        .context("weights have a directory")?
        .to_path_buf();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    let mut rows = Vec::new();
    for shape in SHAPES
        .iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name))
    {
        let candle = candle_run(&args, &bert, &files.weights, shape)?;
        let torch = match &args.torch_python {
            Some(py) => Some(torch_run(py, &args, &model_dir, shape)?),
            None => None,
        };
        let ratio = torch.map(|t| candle / t);
        println!(
            "{}",
            json!({"bench": shape.name, "candle_seqs_per_s": candle, "torch_seqs_per_s": torch, "ratio": ratio, "rayon_threads": threads})
        );
        rows.push((shape.name, candle, torch, ratio));
    }
    println!(
        "\n| benchmark | candle seq/s | PyTorch seq/s | candle / PyTorch |\n|---|---:|---:|---:|"
    );
    for (name, c, t, r) in rows {
        let fmt = |x: Option<f64>, d: usize| x.map_or("-".into(), |x| format!("{x:.d$}"));
        println!("| {name} | {c:.1} | {} | {} |", fmt(t, 1), fmt(r, 2));
    }
    Ok(())
}
