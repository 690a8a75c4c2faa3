//! `datasets`: build the simulated default dataset, write scaled raw logs
//! for benchmarks, turn raw request logs into sessions, and check data
//! files against the contract.
#![forbid(unsafe_code)]

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use datasets::{
    build::build_dataset,
    reader::BadLinePolicy,
    scaled_log::write_scaled_log,
    sessionize::{sessionize_file, RawRequest, SessionizeArgs, SessionizeConfig},
    simulator::{
        config::{SimConfig, SplitMode},
        simulate,
    },
    ArrowRecord, RecordSink, RecordSource, Session,
};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// distill-guard datasets: simulate, sessionize and validate session data.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate the labeled dataset (train / validation / test + card).
    Build {
        /// Simulator config (TOML).
        #[arg(long, default_value = "datasets/config/default.toml")]
        config: PathBuf,
        /// Output directory.
        #[arg(long, default_value = "data/default")]
        out: PathBuf,
        /// Override the config's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the config's split mode.
        #[arg(long, value_enum)]
        split_mode: Option<SplitMode>,
        /// Write `.jsonl.gz` instead of `.jsonl`.
        #[arg(long)]
        gzip: bool,
    },
    /// Turn a raw request log into sessions.
    Sessionize {
        /// Raw request log (JSONL, optionally gzip, or `.parquet`).
        input: PathBuf,
        /// Sessions file to write (`.gz` for gzip, `.parquet` for Parquet).
        #[arg(long, short)]
        output: PathBuf,
        #[command(flatten)]
        limits: SessionizeArgs,
        /// What to do with a bad line.
        #[arg(long, value_enum, default_value_t = BadLinePolicy::Strict)]
        policy: BadLinePolicy,
        /// `in-memory` holds the whole log; `datafusion` runs
        /// datasets/sql/sessionize.sql out of core (build with
        /// `--features datafusion`); `ballista://HOST:PORT` runs it on that
        /// Ballista scheduler's cluster (build with `--features ballista`;
        /// the executors must read `--spill-dir`).
        #[arg(long, default_value = "in-memory")]
        engine: Engine,
        /// DataFusion: memory the query may hold before spilling, in MiB.
        #[arg(long, default_value_t = 2048)]
        memory_limit_mb: usize,
        /// DataFusion: directory for the input copy and spill files
        /// [default: the system's temporary directory]; on Ballista, a
        /// directory the executors can read.
        #[arg(long)]
        spill_dir: Option<PathBuf>,
        /// DataFusion: threads and partitions [default: the cores].
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Copy a sessions file or a raw request log into another format
    /// (JSONL, gzip JSONL or Parquet, each chosen by extension).
    Convert {
        /// File to read.
        input: PathBuf,
        /// File to write.
        #[arg(long, short)]
        output: PathBuf,
        /// The files are raw request logs rather than sessions.
        #[arg(long)]
        raw_log: bool,
        /// What to do with a bad line or row.
        #[arg(long, value_enum, default_value_t = BadLinePolicy::Strict)]
        policy: BadLinePolicy,
    },
    /// Write a raw request log of any size for scale benchmarks: the
    /// simulated world's requests (all splits), tiled with renamed
    /// accounts and shifted times until `--requests` rows
    /// (docs/scale-out.md).
    ScaledLog {
        /// Simulator config (TOML) of the world to tile.
        #[arg(long, default_value = "datasets/config/default.toml")]
        config: PathBuf,
        /// Rows to write.
        #[arg(long, default_value_t = 1_000_000)]
        requests: u64,
        /// Raw log to write (`.parquet` for Parquet, else JSONL; `.gz` for
        /// gzip).
        #[arg(long, short, default_value = "raw-1m.parquet")]
        output: PathBuf,
    },
    /// Check sessions files (JSONL or Parquet) against the data contract
    /// and print counts.
    Validate {
        /// Sessions files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Stop at the first bad line, or skip and count bad lines.
        #[arg(long, value_enum, default_value_t = BadLinePolicy::Skip)]
        policy: BadLinePolicy,
    },
}

/// Where `sessionize` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Engine {
    /// In this process, holding every request in memory.
    InMemory,
    /// DataFusion, out of core within `--memory-limit-mb`.
    Datafusion,
    /// DataFusion's plan on the Ballista cluster of this scheduler URL.
    Ballista(String),
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "in-memory" => Ok(Engine::InMemory),
            "datafusion" => Ok(Engine::Datafusion),
            _ => match s.strip_prefix("ballista://") {
                Some(address) if !address.is_empty() => Ok(Engine::Ballista(s.to_string())),
                _ => Err(format!(
                    "`{s}`: expected `in-memory`, `datafusion` or `ballista://HOST:PORT`"
                )),
            },
        }
    }
}

/// DataFusion settings from the `sessionize` flags.
#[cfg_attr(not(feature = "datafusion"), allow(dead_code))]
struct EngineFlags {
    memory_limit_mb: usize,
    spill_dir: Option<PathBuf>,
    threads: Option<usize>,
    /// The Ballista scheduler, when the query runs there.
    scheduler: Option<String>,
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
            .expect("valid progress template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar.set_message(message.to_string());
    bar
}

fn run_build(
    config: &Path,
    out: &Path,
    seed: Option<u64>,
    split_mode: Option<SplitMode>,
    gzip: bool,
) -> Result<()> {
    let started = Instant::now();
    let mut cfg = SimConfig::load(config)?;
    if let Some(seed) = seed {
        cfg.seed = seed;
    }
    if let Some(mode) = split_mode {
        cfg.split.mode = mode;
    }
    let bar = spinner("loading corpora");
    let built = build_dataset(&cfg, out, gzip, |stage| {
        info!(stage, "dataset build");
        bar.set_message(stage.to_string());
    })?;
    bar.finish_and_clear();
    for (name, split) in &built.card.splits {
        println!(
            "{name:>10}: {:>6} sessions, {:>6} accounts, {:>7} events",
            split.sessions, split.accounts, split.events
        );
    }
    for f in &built.split_files {
        println!("wrote {}", f.display());
    }
    println!("wrote {}", built.card_json.display());
    println!("wrote {}", built.card_markdown.display());
    println!("done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn run_scaled_log(config: &Path, requests: u64, output: &Path) -> Result<()> {
    let started = Instant::now();
    let cfg = SimConfig::load(config)?;
    let bar = spinner("simulating the world to tile");
    let splits = simulate(&cfg)?;
    let world: Vec<Session> = [&splits.train, &splits.validation, &splits.test]
        .into_iter()
        .flatten()
        .map(|g| g.session.clone())
        .collect();
    bar.finish_and_clear();
    let bar = ProgressBar::new(requests).with_style(
        ProgressStyle::with_template("[{elapsed}] {bar:40} {pos}/{len} requests ({eta} left)")
            .expect("valid progress template"),
    );
    let mut sink = RecordSink::create(output)?;
    let written = write_scaled_log(&world, requests, &mut sink, |n| bar.set_position(n))?;
    anyhow::ensure!(
        written == requests,
        "{}: the world has no requests to tile",
        config.display()
    );
    let path = sink.finish()?;
    bar.finish_and_clear();
    let accounts: std::collections::HashSet<&str> =
        world.iter().map(|s| s.account_id.as_str()).collect();
    let world_requests: usize = world.iter().map(|s| s.events.len()).sum();
    println!(
        "wrote {}: {written} requests, tiles of {world_requests} requests from {} accounts ({} tiles) in {:.1}s",
        path.display(),
        accounts.len(),
        written.div_ceil(world_requests as u64),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_sessionize(
    input: &Path,
    output: &Path,
    config: SessionizeConfig,
    policy: BadLinePolicy,
) -> Result<()> {
    let (sessions, stats) = sessionize_file(input, &config, policy)?;
    report_skipped(&stats);
    let mut writer = RecordSink::create(output)?;
    for s in &sessions {
        writer.write(s)?;
    }
    let n = writer.records();
    writer.finish()?;
    println!(
        "{} requests -> {n} sessions in {}",
        stats.records,
        output.display()
    );
    Ok(())
}

#[cfg(feature = "datafusion")]
fn run_sessionize_datafusion(
    input: &Path,
    output: &Path,
    config: SessionizeConfig,
    policy: BadLinePolicy,
    flags: EngineFlags,
) -> Result<()> {
    let engine = datasets::engine::EngineConfig {
        memory_limit: flags.memory_limit_mb << 20,
        spill_dir: flags.spill_dir,
        threads: flags
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        scheduler: flags.scheduler,
    };
    let on = match &engine.scheduler {
        Some(url) => format!("Ballista at {url}"),
        None => "DataFusion".to_string(),
    };
    let bar = spinner(&format!("sessionizing on {on}"));
    let run =
        datasets::engine::sessionize_with_datafusion(input, output, &config, &engine, policy)?;
    bar.finish_and_clear();
    report_skipped(&run.read);
    let spilled = match run.spilled_bytes {
        Some(bytes) => format!("spilled {:.1} MiB", bytes as f64 / (1 << 20) as f64),
        None => "spills in the executors' logs".to_string(),
    };
    println!(
        "{} requests -> {} sessions in {} ({on}, memory limit {} MiB, {spilled})",
        run.read.records,
        run.sessions,
        output.display(),
        flags.memory_limit_mb,
    );
    Ok(())
}

#[cfg(not(feature = "datafusion"))]
fn run_sessionize_datafusion(
    _input: &Path,
    _output: &Path,
    _config: SessionizeConfig,
    _policy: BadLinePolicy,
    _flags: EngineFlags,
) -> Result<()> {
    bail!(
        "--engine datafusion or ballista://: this binary was built without DataFusion; \
         rebuild with `cargo build --release -p datasets --features datafusion` \
         (`--features ballista` for Ballista)"
    )
}

/// Streams `input`'s records of type `T` into `output`.
fn convert<T>(input: &Path, output: &Path, policy: BadLinePolicy) -> Result<()>
where
    T: datasets::reader::Record + ArrowRecord + serde::Serialize + Clone,
{
    let mut reader = RecordSource::<T>::open(input, policy)?;
    let mut writer = RecordSink::create(output)?;
    for record in reader.by_ref() {
        writer.write(&record?)?;
    }
    report_skipped(reader.stats());
    let n = writer.records();
    writer.finish()?;
    println!("{n} records -> {}", output.display());
    Ok(())
}

fn report_skipped(stats: &datasets::ReadStats) {
    if stats.skipped > 0 {
        eprintln!("skipped {} bad lines; first errors:", stats.skipped);
        for e in &stats.first_errors {
            eprintln!("  {e}");
        }
    }
}

fn run_validate(files: &[PathBuf], policy: BadLinePolicy) -> Result<()> {
    let mut bad = 0;
    for path in files {
        let mut reader = datasets::read_sessions(path, policy)?;
        let mut events = 0usize;
        for s in reader.by_ref() {
            events += s
                .with_context(|| format!("validating {}", path.display()))?
                .events
                .len();
        }
        let stats = reader.stats();
        println!(
            "{}: {} sessions, {events} events, {} bad lines",
            path.display(),
            stats.records,
            stats.skipped
        );
        report_skipped(stats);
        bad += stats.skipped;
    }
    if bad > 0 {
        bail!("{bad} bad lines in total");
    }
    Ok(())
}

fn main() -> Result<()> {
    datasets::logging::init();
    match Cli::parse().command {
        Command::Build {
            config,
            out,
            seed,
            split_mode,
            gzip,
        } => run_build(&config, &out, seed, split_mode, gzip),
        Command::Sessionize {
            input,
            output,
            limits,
            policy,
            engine,
            memory_limit_mb,
            spill_dir,
            threads,
        } => {
            let config = limits.config().map_err(anyhow::Error::msg)?;
            let mut flags = EngineFlags {
                memory_limit_mb,
                spill_dir,
                threads,
                scheduler: None,
            };
            match engine {
                Engine::InMemory => run_sessionize(&input, &output, config, policy),
                Engine::Datafusion => {
                    run_sessionize_datafusion(&input, &output, config, policy, flags)
                }
                Engine::Ballista(url) => {
                    flags.scheduler = Some(url);
                    run_sessionize_datafusion(&input, &output, config, policy, flags)
                }
            }
        }
        Command::Convert {
            input,
            output,
            raw_log,
            policy,
        } => match raw_log {
            true => convert::<RawRequest>(&input, &output, policy),
            false => convert::<Session>(&input, &output, policy),
        },
        Command::ScaledLog {
            config,
            requests,
            output,
        } => run_scaled_log(&config, requests, &output),
        Command::Validate { files, policy } => run_validate(&files, policy),
    }
}
