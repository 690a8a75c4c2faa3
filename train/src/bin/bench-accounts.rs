//! Benchmark of the account layer at provider scale: cross-account
//! evidence, operator groups, account verdicts and campaign discovery over
//! synthetic sessions (session scores given, as `train cluster` has them
//! after the model). Prints seconds per stage and peak resident memory.
//!
//! World: benign accounts on their own addresses, asking varied questions
//! at random times, created over years; campaign accounts created in
//! waves, rotating through their operator's exit pool, sending one
//! template around changing tasks.
#![forbid(unsafe_code)]

use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Duration, TimeZone, Utc};
use clap::Parser;
use datasets::{coordination::EvidenceParams, Account, Event, Label, Session};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use train::{
    accounts::{account_rows, fit_account_model, AccountFitConfig},
    campaigns::{describe_campaigns, CampaignContext},
    corroboration::{link_and_corroborate, SessionCorroboration},
};

/// Account-layer benchmark.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// `accounts:sessions` per run.
    #[arg(long, value_delimiter = ',', default_value = "24000:1000000")]
    sizes: Vec<String>,
    /// Share of accounts that belong to campaigns.
    #[arg(long, default_value_t = 0.2)]
    campaign_share: f64,
    /// Accounts per campaign.
    #[arg(long, default_value_t = 300)]
    campaign_accounts: usize,
    /// Requests per session (1 to this).
    #[arg(long, default_value_t = 3)]
    max_requests: usize,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Session threshold of the synthetic scores.
const SESSION_THRESHOLD: f32 = 0.9;
/// Session scores that corroborate an account verdict (the roles of a
/// bundle's session and propagation thresholds).
const CORROBORATING_SESSION_SCORES: SessionCorroboration = SessionCorroboration {
    flag: SESSION_THRESHOLD,
    review: 0.5,
};

const WORDS: &[&str] = &[
    "garden", "invoice", "python", "river", "matrix", "recipe", "history", "engine", "poem",
    "budget", "planet", "contract", "violin", "theorem", "marathon", "kernel", "harbor", "glacier",
    "sonnet", "ledger", "compiler", "orbit", "canvas", "protein", "tariff", "lattice", "meadow",
];

fn question(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(6..18);
    let mut words: Vec<String> = (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())].to_string())
        .collect();
    words.push(rng.random_range(0..1_000_000u32).to_string());
    words.join(" ")
}

struct World {
    sessions: Vec<Session>,
    scores: Vec<f32>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn event(ts: DateTime<Utc>, prompt: String, ip: String, asn: u32, ua: &str) -> Event {
    Event {
        ts,
        prompt,
        ip: Some(ip),
        asn: Some(asn),
        user_agent: Some(ua.to_string()),
        model: None,
        response_tokens: Some(300),
    }
}

fn session(
    id: usize,
    account: usize,
    campaign: Option<usize>,
    created: DateTime<Utc>,
    events: Vec<Event>,
) -> Session {
    Session {
        session_id: format!("s{id}"),
        account_id: format!("a{account}"),
        label: Some(if campaign.is_some() {
            Label::Extraction
        } else {
            Label::Benign
        }),
        campaign_id: campaign.map(|c| format!("camp-{c}")),
        archetype: None,
        account: Some(Account {
            created_at: Some(created),
            ..Account::default()
        }),
        events,
    }
}

/// One session of `account` (campaign accounts use their operator's
/// template and exit pool).
fn one_session(
    rng: &mut ChaCha8Rng,
    args: &Args,
    id: usize,
    account: usize,
    campaigns: usize,
) -> (Session, f32) {
    let campaign_accounts = campaigns * args.campaign_accounts;
    let days = 28 * 86_400;
    let start = t0() + Duration::seconds(rng.random_range(0..days));
    let requests = rng.random_range(1..=args.max_requests);
    if account < campaign_accounts {
        let c = account / args.campaign_accounts;
        let created = t0()
            + Duration::hours((c as i64 * 37) % 600)
            + Duration::minutes((account % 600) as i64);
        let events = (0..requests)
            .map(|k| {
                // Each operator owns its /24s and words its own template.
                let ip = format!(
                    "45.{}.{}.{}",
                    c % 250,
                    4 * (c / 250) + rng.random_range(0..4),
                    rng.random_range(1..40)
                );
                let prompt = format!(
                    "Operator {c} asks: you are an expert solver, show all reasoning before the answer. {}",
                    question(rng)
                );
                event(
                    start + Duration::seconds(3 * k as i64),
                    prompt,
                    ip,
                    14061,
                    "python-httpx/0.27.2",
                )
            })
            .collect();
        (
            session(id, account, Some(c), created, events),
            rng.random_range(0.3..1.0),
        )
    } else {
        let created = t0() - Duration::days(30 + (account as i64 * 7919) % 1500);
        let ip = format!(
            "{}.{}.{}.{}",
            11 + account % 200,
            (account / 200) % 250,
            (account / 50_000) % 250,
            1 + account % 250
        );
        let events = (0..requests)
            .map(|k| {
                event(
                    start + Duration::seconds(40 * k as i64),
                    question(rng),
                    ip.clone(),
                    7922,
                    "Mozilla/5.0",
                )
            })
            .collect();
        (
            session(id, account, None, created, events),
            rng.random_range(0.0..0.6),
        )
    }
}

/// Campaigns of a world of `accounts` accounts.
fn campaigns_in(args: &Args, accounts: usize) -> usize {
    ((accounts as f64 * args.campaign_share) as usize / args.campaign_accounts).max(1)
}

fn synthesise(args: &Args, accounts: usize, sessions: usize) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let campaigns =
        ((accounts as f64 * args.campaign_share) as usize / args.campaign_accounts).max(1);
    let (sessions, scores) = (0..sessions)
        .map(|id| {
            let account = if id < accounts {
                id
            } else {
                rng.random_range(0..accounts)
            };
            one_session(&mut rng, args, id, account, campaigns)
        })
        .unzip();
    World { sessions, scores }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn run(args: &Args, accounts: usize, sessions: usize) -> Result<()> {
    let started = Instant::now();
    let world = synthesise(args, accounts, sessions);
    let synth_s = started.elapsed().as_secs_f64();
    let refs: Vec<&Session> = world.sessions.iter().collect();
    let params = EvidenceParams::default().check()?;

    let started = Instant::now();
    let window = account_rows(&refs, &world.scores, SESSION_THRESHOLD, &params);
    let evidence_s = started.elapsed().as_secs_f64();

    // The scorer is fitted on the first half of the accounts and its
    // thresholds set on the second (the timing of interest is applying it).
    let half = window.rows.len() / 2;
    let model = fit_account_model(
        &window.rows[..half],
        &window.rows[half..],
        &AccountFitConfig::default(),
    )?;
    let started = Instant::now();
    let verdicts = link_and_corroborate(
        &model,
        &refs,
        &window,
        &params,
        CORROBORATING_SESSION_SCORES,
    );
    let ctx = CampaignContext::new(
        &refs,
        &window,
        &verdicts.decisions,
        &params,
        model.link_threshold(),
    );
    let campaigns = describe_campaigns(&ctx, verdicts.linked);
    let verdict_s = started.elapsed().as_secs_f64();
    let largest_group = window
        .rows
        .iter()
        .map(|r| r.evidence.group_accounts)
        .max()
        .unwrap_or(0);
    println!(
        "| {accounts} | {sessions} | {synth_s:.1} | {evidence_s:.1} | {verdict_s:.1} | {:.1} | {} of {} | {largest_group} | {:.0} |",
        evidence_s + verdict_s,
        campaigns.len(),
        campaigns_in(args, accounts),
        peak_rss_mib()
    );
    Ok(())
}

#[global_allocator]
static GLOBAL: models::allocator::MiMalloc = models::allocator::MiMalloc;

fn main() -> Result<()> {
    datasets::logging::init();
    let args = Args::parse();
    println!(
        "CPU: {}; {} threads available; evidence, groups and verdicts are single-threaded; operator and template campaigns (the content DBSCAN of the flagged accounts left is measured by bench-cluster)",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("\n| accounts | sessions | synthesis s | evidence + groups s | verdicts + campaigns s | account layer s | campaigns found of simulated | largest operator group (accounts) | peak RSS MiB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for size in &args.sizes {
        let (a, s) = size
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--sizes takes accounts:sessions, got {size:?}"))?;
        run(&args, a.parse()?, s.parse()?)?;
    }
    Ok(())
}
