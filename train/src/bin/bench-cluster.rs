//! Benchmark of coordination discovery at campaign-network scale: seconds
//! and quality of each clustering choice (PCA dimensions, neighbour index)
//! on the same synthetic 384-dimensional session embeddings, with plain
//! linfa DBSCAN on the full embeddings (KdTree) as the baseline.
//!
//! Points: campaign accounts sit around one random direction per campaign
//! (templated prompts embed close together); benign accounts spread around
//! many broad topics. Quality is measured against the campaign labels.
#![forbid(unsafe_code)]

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use train::cluster::{
    blocks::{blocked_dbscan, FALLBACK_EPS},
    dbscan,
    eps::suggest_eps,
    points::reduce,
    quality::cluster_quality,
    NeighbourIndex, EPS_SAMPLE,
};

/// Clustering benchmark at 24k / 100k accounts.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// Accounts (one session each) per run.
    #[arg(long, value_delimiter = ',', default_value = "24000,100000")]
    sizes: Vec<usize>,
    /// Embedding dimensions.
    #[arg(long, default_value_t = 384)]
    dims: usize,
    /// Share of accounts that belong to campaigns.
    #[arg(long, default_value_t = 0.3)]
    campaign_share: f64,
    /// Accounts per campaign.
    #[arg(long, default_value_t = 200)]
    campaign_accounts: usize,
    /// Benign topics.
    #[arg(long, default_value_t = 300)]
    topics: usize,
    /// Noise of a campaign account around its campaign direction (per dimension, times sqrt(dims)).
    #[arg(long, default_value_t = 0.35)]
    campaign_spread: f64,
    /// Noise of a benign account around its topic.
    #[arg(long, default_value_t = 1.2)]
    benign_spread: f64,
    /// DBSCAN min_points.
    #[arg(long, default_value_t = 4)]
    min_points: usize,
    /// Run plain DBSCAN on the full embeddings up to this many points
    /// (it grows super-linearly: ~37 s at 24k here).
    #[arg(long, default_value_t = 24000)]
    plain_up_to: usize,
    /// Fixed DBSCAN eps for every choice (default: suggested per choice by
    /// the k-distance curve, as `train cluster` does without `--eps`).
    #[arg(long)]
    eps: Option<f64>,
    /// Only the choices whose name contains one of these (comma-separated,
    /// e.g. `PCA 16`); default: all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// k-means blocks of the blocked choice.
    #[arg(long, default_value_t = 32)]
    blocks: usize,
    /// Seed.
    #[arg(long, default_value_t = 5)]
    seed: u64,
}

/// How a choice clusters: one DBSCAN over (optionally PCA-reduced) points,
/// or blocked DBSCAN.
#[derive(Clone, Copy)]
enum Method {
    Single(Option<usize>),
    Blocked(usize),
}

fn unit_rows(mut m: Array2<f32>) -> Array2<f32> {
    for mut row in m.rows_mut() {
        let n = row.dot(&row).sqrt().max(1e-12);
        row /= n;
    }
    m
}

/// Synthetic embeddings and their campaign label (`None` = benign).
fn synthesise(args: &Args, n: usize) -> (Array2<f32>, Vec<Option<usize>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ n as u64);
    let normal = Normal::new(0.0f32, 1.0).expect("valid normal");
    let d = args.dims;
    let campaigns = ((n as f64 * args.campaign_share) as usize / args.campaign_accounts).max(1);
    let centre =
        |rng: &mut ChaCha8Rng| -> Vec<f32> { (0..d).map(|_| normal.sample(rng)).collect() };
    let campaign_centres: Vec<Vec<f32>> = (0..campaigns).map(|_| centre(&mut rng)).collect();
    let topic_centres: Vec<Vec<f32>> = (0..args.topics).map(|_| centre(&mut rng)).collect();
    let mut points = Array2::<f32>::zeros((n, d));
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let (c, spread, label) = if i < campaigns * args.campaign_accounts {
            let k = i / args.campaign_accounts;
            (&campaign_centres[k], args.campaign_spread, Some(k))
        } else {
            let k = rng.random_range(0..args.topics);
            (&topic_centres[k], args.benign_spread, None)
        };
        for j in 0..d {
            points[[i, j]] = c[j] + spread as f32 * normal.sample(&mut rng);
        }
        labels.push(label);
    }
    (unit_rows(points), labels)
}

struct Outcome {
    seconds: f64,
    eps: f64,
    ari: f64,
    campaign_clustered: f64,
    benign_clustered: f64,
    clusters: usize,
}

fn run(
    points: &Array2<f32>,
    labels: &[Option<usize>],
    method: Method,
    index: NeighbourIndex,
    args: &Args,
) -> Result<Outcome> {
    let (min_points, fixed_eps) = (args.min_points, args.eps);
    let started = Instant::now();
    let (found, eps) = match method {
        Method::Single(pca) => {
            let reduced = match pca {
                Some(d) => reduce(points.clone(), d, 17)?,
                None => points.clone(),
            };
            let eps = match fixed_eps {
                Some(eps) => eps,
                None => {
                    suggest_eps(&reduced, min_points, EPS_SAMPLE, index)?.unwrap_or(FALLBACK_EPS)
                }
            };
            (dbscan(&reduced, eps, min_points, index)?, eps)
        }
        Method::Blocked(dims) => {
            let b = blocked_dbscan(points, args.blocks, dims, min_points, index, fixed_eps, 17)?;
            (b.labels, b.eps)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let truth: Vec<i64> = labels.iter().map(|l| l.map_or(-1, |k| k as i64)).collect();
    let q = cluster_quality(&truth, &found);
    let (mut camp, mut camp_in, mut ben, mut ben_in) = (0usize, 0usize, 0usize, 0usize);
    for (l, f) in labels.iter().zip(&found) {
        if l.is_some() {
            camp += 1;
            camp_in += usize::from(f.is_some());
        } else {
            ben += 1;
            ben_in += usize::from(f.is_some());
        }
    }
    Ok(Outcome {
        seconds,
        eps,
        ari: q.adjusted_rand_index,
        campaign_clustered: camp_in as f64 / camp.max(1) as f64,
        benign_clustered: ben_in as f64 / ben.max(1) as f64,
        clusters: found
            .iter()
            .flatten()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    })
}

#[global_allocator]
static GLOBAL: models::allocator::MiMalloc = models::allocator::MiMalloc;

fn main() -> Result<()> {
    datasets::logging::init();
    let args = Args::parse();
    println!(
        "points: {} dims, {:.0}% campaign accounts in campaigns of {}, {} benign topics; min_points {}; threads: linfa DBSCAN is single-threaded",
        args.dims,
        100.0 * args.campaign_share,
        args.campaign_accounts,
        args.topics,
        args.min_points
    );
    println!("\n| accounts | choice | seconds | vs plain 384-d KdTree | eps | clusters | ARI | campaign accounts clustered | benign accounts clustered |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let blocked = format!(
        "blocked: {} k-means blocks, PCA 16 each, KdTree",
        args.blocks
    );
    let choices: [(&str, Method, NeighbourIndex); 6] = [
        (
            "plain: 384-d, KdTree",
            Method::Single(None),
            NeighbourIndex::KdTree,
        ),
        (
            "PCA 32, KdTree",
            Method::Single(Some(32)),
            NeighbourIndex::KdTree,
        ),
        (
            "PCA 16, KdTree (default)",
            Method::Single(Some(16)),
            NeighbourIndex::KdTree,
        ),
        (
            "PCA 32, BallTree",
            Method::Single(Some(32)),
            NeighbourIndex::BallTree,
        ),
        (
            "PCA 8, KdTree",
            Method::Single(Some(8)),
            NeighbourIndex::KdTree,
        ),
        (&blocked, Method::Blocked(16), NeighbourIndex::KdTree),
    ];
    for &n in &args.sizes {
        let (points, labels) = synthesise(&args, n);
        let mut plain_seconds = None;
        for (name, method, index) in choices {
            if !args.only.is_empty() && !args.only.iter().any(|o| name.contains(o.as_str())) {
                continue;
            }
            let plain = matches!(method, Method::Single(None));
            if plain && n > args.plain_up_to {
                println!(
                    "| {n} | {name} | not run (> --plain-up-to {}) | | | | | | |",
                    args.plain_up_to
                );
                continue;
            }
            let o = run(&points, &labels, method, index, &args)?;
            if plain {
                plain_seconds = Some(o.seconds);
            }
            let ratio =
                plain_seconds.map_or(String::new(), |p| format!("{:.1}x faster", p / o.seconds));
            println!(
                "| {n} | {name} | {:.2} | {ratio} | {:.3} | {} | {:.3} | {:.3} | {:.3} |",
                o.seconds, o.eps, o.clusters, o.ari, o.campaign_clustered, o.benign_clustered
            );
        }
    }
    Ok(())
}
