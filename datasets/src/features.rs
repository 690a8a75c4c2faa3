//! Behavioural features of a session: a fixed-order vector of numbers that
//! depends only on the session itself (never on `label` or `campaign_id`).
//! `docs/features.md` documents each one; [`FEATURE_NAMES`] gives the order.

use std::collections::HashSet;

use chrono::{Timelike, Utc};

use crate::{
    asn,
    schema::Session,
    text_similarity::{self, words},
    user_agent::{self, UserAgentClass},
};

/// Names of the features, in vector order.
pub const FEATURE_NAMES: [&str; 36] = [
    "log_requests",
    "log_duration_min",
    "requests_per_minute",
    "log_interarrival_mean_s",
    "interarrival_cv",
    "burst_share",
    "night_share",
    "ips_per_request",
    "asns_per_request",
    "hosting_asn_share",
    "log_account_age_days",
    "account_age_known",
    "tier_free",
    "tier_pro",
    "tier_edu",
    "tier_research",
    "tier_startup",
    "tier_enterprise",
    "tier_other",
    "verified",
    "verified_known",
    "browser_ua_share",
    "sdk_ua_share",
    "scripted_ua_share",
    "ua_missing_share",
    "user_agents_per_request",
    "log_prompt_chars_mean",
    "prompt_chars_cv",
    "log_prompt_chars_max",
    "near_duplicate_share",
    "mean_pairwise_jaccard",
    "template_share",
    "reasoning_request_share",
    "tool_trace_share",
    "code_request_share",
    "log_response_tokens_mean",
];

/// Number of behavioural features.
pub const NUM_FEATURES: usize = FEATURE_NAMES.len();

/// A session's feature values, in [`FEATURE_NAMES`] order.
pub type FeatureVector = [f32; NUM_FEATURES];

/// Gaps shorter than this count as bursts (seconds).
pub const BURST_GAP_SECONDS: f64 = 2.0;
/// Estimated Jaccard at which two prompts are near-duplicates.
pub const NEAR_DUPLICATE_JACCARD: f32 = 0.5;
/// At most this many prompts (evenly spaced) enter the pairwise comparison.
pub const MAX_COMPARED_PROMPTS: usize = 64;

const TIERS: [&str; 6] = ["free", "pro", "edu", "research", "startup", "enterprise"];

const REASONING_MARKERS: &[&str] = &[
    "step by step",
    "step-by-step",
    "show your work",
    "show all work",
    "show your reasoning",
    "explain your reasoning",
    "reasoning",
    "chain of thought",
    "chain-of-thought",
    "think through",
    "walk me through",
    "walk through",
    "each step",
    "intermediate steps",
    "let's think",
    "lets think",
    "rationale",
    "justify",
    "derivation",
    "thought process",
];

const TOOL_MARKERS: &[&str] = &[
    "thought:",
    "action:",
    "observation:",
    "action input",
    "function call",
    "function_call",
    "tool call",
    "tool_call",
    "tool use",
    "available tools",
    "call the tool",
    "arguments",
    "json schema",
    "api call",
    "invoke",
    "functions:",
];

const CODE_MARKERS: &[&str] = &[
    "```",
    "def ",
    "function",
    "implement",
    "python",
    "code",
    "program",
    "script",
    "class ",
    "algorithm",
    "javascript",
    "typescript",
    "rust",
    "sql",
    "regex",
    "compile",
];

/// Standard-time UTC offset (hours) of a region, for local night time.
/// Unknown regions count as UTC.
pub fn region_utc_offset(region: &str) -> i32 {
    match region {
        "US" | "MX" => -6,
        "CA" => -5,
        "BR" | "AR" | "CL" => -3,
        "CO" | "PE" => -5,
        "GB" | "IE" | "PT" | "IS" | "GH" | "MA" => 0,
        "DE" | "FR" | "ES" | "IT" | "NL" | "BE" | "CH" | "AT" | "SE" | "NO" | "DK" | "PL"
        | "CZ" | "HU" | "NG" | "RS" => 1,
        "FI" | "UA" | "RO" | "GR" | "IL" | "EG" | "ZA" | "BG" => 2,
        "RU" | "TR" | "SA" | "KE" => 3,
        "AE" => 4,
        "PK" => 5,
        "IN" | "LK" => 5,
        "BD" => 6,
        "TH" | "VN" | "ID" => 7,
        "CN" | "HK" | "TW" | "SG" | "MY" | "PH" => 8,
        "JP" | "KR" => 9,
        "AU" => 10,
        "NZ" => 12,
        _ => 0,
    }
}

/// `part / whole`, 0 for an empty whole.
pub fn ratio(part: usize, whole: usize) -> f32 {
    if whole == 0 {
        0.0
    } else {
        part as f32 / whole as f32
    }
}

fn ln1p(x: f64) -> f32 {
    x.max(0.0).ln_1p() as f32
}

fn mean_cv(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let cv = if mean > 0.0 { var.sqrt() / mean } else { 0.0 };
    (mean, cv)
}

fn any_marker(text: &str, markers: &[&str]) -> bool {
    markers.iter().any(|m| text.contains(m))
}

/// Computes the feature vector of a validated session (events sorted).
pub fn session_features(session: &Session) -> FeatureVector {
    let events = &session.events;
    let n = events.len();
    let mut f = [0.0f32; NUM_FEATURES];
    let mut set = |name: &str, value: f32| {
        let i = FEATURE_NAMES
            .iter()
            .position(|&k| k == name)
            .expect("feature name is in FEATURE_NAMES");
        f[i] = value;
    };

    // Volume and cadence.
    let duration_min = (session.end() - session.start()).num_milliseconds() as f64 / 60_000.0;
    let gaps: Vec<f64> = events
        .windows(2)
        .map(|w| (w[1].ts - w[0].ts).num_milliseconds() as f64 / 1000.0)
        .collect();
    let (gap_mean, gap_cv) = mean_cv(&gaps);
    set("log_requests", ln1p(n as f64));
    set("log_duration_min", ln1p(duration_min));
    set(
        "requests_per_minute",
        (n as f64 / duration_min.max(1.0)) as f32,
    );
    set("log_interarrival_mean_s", ln1p(gap_mean));
    set(
        "interarrival_cv",
        if gaps.len() >= 2 { gap_cv as f32 } else { 0.0 },
    );
    set(
        "burst_share",
        ratio(
            gaps.iter().filter(|&&g| g < BURST_GAP_SECONDS).count(),
            gaps.len(),
        ),
    );

    // Time of day, in the account's region.
    let account = session.account.clone().unwrap_or_default();
    let offset = account.region.as_deref().map_or(0, region_utc_offset);
    let night = events
        .iter()
        .filter(|e| {
            let hour = (e.ts.with_timezone(&Utc).hour() as i32 + offset).rem_euclid(24);
            hour < 6
        })
        .count();
    set("night_share", ratio(night, n));

    // Network.
    let ips: HashSet<&str> = events.iter().filter_map(|e| e.ip.as_deref()).collect();
    let asns: HashSet<u32> = events.iter().filter_map(|e| e.asn).collect();
    set("ips_per_request", ratio(ips.len(), n));
    set("asns_per_request", ratio(asns.len(), n));
    set(
        "hosting_asn_share",
        ratio(
            events
                .iter()
                .filter(|e| e.asn.is_some_and(asn::is_hosting))
                .count(),
            n,
        ),
    );

    // Account.
    if let Some(created) = account.created_at {
        let days = (session.start() - created).num_seconds() as f64 / 86_400.0;
        set("log_account_age_days", ln1p(days));
        set("account_age_known", 1.0);
    }
    if let Some(tier) = account.tier.as_deref() {
        let tier = tier.to_ascii_lowercase();
        match TIERS.iter().position(|&t| t == tier) {
            Some(i) => set(&format!("tier_{}", TIERS[i]), 1.0),
            None => set("tier_other", 1.0),
        }
    }
    if let Some(verified) = account.verified {
        set("verified", if verified { 1.0 } else { 0.0 });
        set("verified_known", 1.0);
    }

    // Clients.
    let mut classes = [0usize; 4];
    let mut missing = 0;
    let mut agents = HashSet::new();
    for e in events {
        match e.user_agent.as_deref() {
            Some(ua) => {
                agents.insert(ua);
                classes[user_agent::classify(ua) as usize] += 1;
            }
            None => missing += 1,
        }
    }
    set(
        "browser_ua_share",
        ratio(classes[UserAgentClass::Browser as usize], n),
    );
    set(
        "sdk_ua_share",
        ratio(classes[UserAgentClass::Sdk as usize], n),
    );
    set(
        "scripted_ua_share",
        ratio(classes[UserAgentClass::Scripted as usize], n),
    );
    set("ua_missing_share", ratio(missing, n));
    set("user_agents_per_request", ratio(agents.len(), n));

    // Prompt text.
    let lengths: Vec<f64> = events
        .iter()
        .map(|e| e.prompt.chars().count() as f64)
        .collect();
    let (len_mean, len_cv) = mean_cv(&lengths);
    set("log_prompt_chars_mean", ln1p(len_mean));
    set("prompt_chars_cv", len_cv as f32);
    set(
        "log_prompt_chars_max",
        ln1p(lengths.iter().copied().fold(0.0, f64::max)),
    );
    let compared: Vec<Vec<String>> = evenly_spaced(n, MAX_COMPARED_PROMPTS)
        .map(|i| words(&events[i].prompt))
        .collect();
    let sim = text_similarity::summarise(&compared, NEAR_DUPLICATE_JACCARD);
    set("near_duplicate_share", sim.near_duplicate_share);
    set("mean_pairwise_jaccard", sim.mean_pairwise_jaccard);
    set("template_share", sim.template_share);
    let lower: Vec<String> = events.iter().map(|e| e.prompt.to_lowercase()).collect();
    let count = |markers: &[&str]| lower.iter().filter(|p| any_marker(p, markers)).count();
    set(
        "reasoning_request_share",
        ratio(count(REASONING_MARKERS), n),
    );
    set("tool_trace_share", ratio(count(TOOL_MARKERS), n));
    set("code_request_share", ratio(count(CODE_MARKERS), n));

    let tokens: Vec<f64> = events
        .iter()
        .filter_map(|e| e.response_tokens.map(f64::from))
        .collect();
    if !tokens.is_empty() {
        set(
            "log_response_tokens_mean",
            ln1p(tokens.iter().sum::<f64>() / tokens.len() as f64),
        );
    }
    f
}

/// Up to `max` indices in `0..n`, evenly spaced, first and last included.
pub fn evenly_spaced(n: usize, max: usize) -> impl Iterator<Item = usize> {
    let take = n.min(max);
    (0..take).map(move |k| {
        if take <= 1 {
            0
        } else {
            k * (n - 1) / (take - 1)
        }
    })
}
