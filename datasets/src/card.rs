//! The dataset card: counts per archetype and campaign, events-per-session
//! distributions and feature summaries, as JSON and Markdown.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::{
    features::{session_features, FEATURE_NAMES, NUM_FEATURES},
    schema::Session,
};

/// Quantiles of a distribution.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Quantiles {
    /// Smallest value.
    pub min: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Quantiles {
    /// Quantiles of `values` (nearest-rank); zeros when empty.
    pub fn of(values: &mut [f64]) -> Self {
        if values.is_empty() {
            return Quantiles {
                min: 0.0,
                p25: 0.0,
                p50: 0.0,
                p75: 0.0,
                p95: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Quantiles {
            min: values[0],
            p25: at(0.25),
            p50: at(0.5),
            p75: at(0.75),
            p95: at(0.95),
            max: values[values.len() - 1],
            mean: values.iter().sum::<f64>() / values.len() as f64,
        }
    }
}

/// Counts for one group of sessions (an archetype or a campaign).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupStats {
    /// `benign` or `extraction`.
    pub label: String,
    /// Sessions.
    pub sessions: usize,
    /// Distinct accounts.
    pub accounts: usize,
    /// Requests.
    pub events: usize,
    /// Requests per session.
    pub events_per_session: Quantiles,
}

/// One split's statistics.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SplitCard {
    /// Sessions.
    pub sessions: usize,
    /// Distinct accounts.
    pub accounts: usize,
    /// Requests.
    pub events: usize,
    /// Sessions per label.
    pub sessions_by_label: BTreeMap<String, usize>,
    /// Per archetype.
    pub archetypes: BTreeMap<String, GroupStats>,
    /// Per campaign.
    pub campaigns: BTreeMap<String, GroupStats>,
    /// Requests per session, all sessions.
    pub events_per_session: Quantiles,
    /// Feature name -> label -> quantiles.
    pub features: BTreeMap<String, BTreeMap<String, Quantiles>>,
}

fn group_stats<'s>(sessions: impl Iterator<Item = &'s Session>) -> GroupStats {
    let mut accounts = BTreeSet::new();
    let mut lengths = Vec::new();
    let mut label = String::new();
    for s in sessions {
        accounts.insert(s.account_id.as_str());
        lengths.push(s.events.len() as f64);
        label = s.label.map_or("unlabeled", |l| l.as_str()).to_string();
    }
    GroupStats {
        label,
        sessions: lengths.len(),
        accounts: accounts.len(),
        events: lengths.iter().sum::<f64>() as usize,
        events_per_session: Quantiles::of(&mut lengths),
    }
}

impl SplitCard {
    /// Statistics of one split's sessions.
    pub fn of(sessions: &[Session]) -> Self {
        let label_of = |s: &Session| s.label.map_or("unlabeled", |l| l.as_str()).to_string();
        let mut by_archetype: BTreeMap<String, Vec<&Session>> = BTreeMap::new();
        let mut by_campaign: BTreeMap<String, Vec<&Session>> = BTreeMap::new();
        let mut sessions_by_label = BTreeMap::new();
        let mut feature_values: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        for s in sessions {
            let archetype = s.archetype.clone().unwrap_or_else(|| "unknown".into());
            by_archetype.entry(archetype).or_default().push(s);
            if let Some(c) = &s.campaign_id {
                by_campaign.entry(c.clone()).or_default().push(s);
            }
            *sessions_by_label.entry(label_of(s)).or_insert(0) += 1;
            let f = session_features(s);
            let columns = feature_values
                .entry(label_of(s))
                .or_insert_with(|| vec![Vec::new(); NUM_FEATURES]);
            for (col, v) in columns.iter_mut().zip(f) {
                col.push(f64::from(v));
            }
        }
        let mut features: BTreeMap<String, BTreeMap<String, Quantiles>> = BTreeMap::new();
        for (label, mut columns) in feature_values {
            for (name, col) in FEATURE_NAMES.iter().zip(columns.iter_mut()) {
                features
                    .entry(name.to_string())
                    .or_default()
                    .insert(label.clone(), Quantiles::of(col));
            }
        }
        let all = group_stats(sessions.iter());
        SplitCard {
            sessions: all.sessions,
            accounts: all.accounts,
            events: all.events,
            sessions_by_label,
            archetypes: by_archetype
                .into_iter()
                .map(|(k, v)| (k, group_stats(v.into_iter())))
                .collect(),
            campaigns: by_campaign
                .into_iter()
                .map(|(k, v)| (k, group_stats(v.into_iter())))
                .collect(),
            events_per_session: all.events_per_session,
            features,
        }
    }
}

/// The dataset card.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatasetCard {
    /// Seed used.
    pub seed: u64,
    /// `source` or `random`.
    pub split_mode: String,
    /// Split name -> statistics.
    pub splits: BTreeMap<String, SplitCard>,
}

fn fmt_q(q: &Quantiles) -> String {
    format!(
        "{:.0} / {:.0} / {:.0} / {:.0} / {:.0}",
        q.min, q.p25, q.p50, q.p95, q.max
    )
}

impl DatasetCard {
    /// Renders the card as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        md.push_str("# distill-guard simulated dataset: card\n\n");
        md.push_str(&format!(
            "Seed `{}`, split mode `{}`. Regenerate with `cargo run --release -p datasets -- build` \
             (see README). Labels: `benign` vs `extraction`; `archetype` says which simulated \
             population produced a session; `campaign_id` groups the sessions of one operator.\n\n",
            self.seed, self.split_mode
        ));
        md.push_str("| split | sessions | accounts | events | benign | extraction |\n|---|---:|---:|---:|---:|---:|\n");
        for (name, s) in &self.splits {
            let get = |l: &str| s.sessions_by_label.get(l).copied().unwrap_or(0);
            md.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} |\n",
                s.sessions,
                s.accounts,
                s.events,
                get("benign"),
                get("extraction")
            ));
        }
        for (name, s) in &self.splits {
            md.push_str(&format!("\n## {name}\n\n### Archetypes\n\n"));
            md.push_str("| archetype | label | sessions | accounts | events | events/session min / p25 / p50 / p95 / max |\n|---|---|---:|---:|---:|---|\n");
            for (a, g) in &s.archetypes {
                md.push_str(&format!(
                    "| {a} | {} | {} | {} | {} | {} |\n",
                    g.label,
                    g.sessions,
                    g.accounts,
                    g.events,
                    fmt_q(&g.events_per_session)
                ));
            }
            if !s.campaigns.is_empty() {
                md.push_str("\n### Campaigns\n\n| campaign | sessions | accounts | events | events/session min / p25 / p50 / p95 / max |\n|---|---:|---:|---:|---|\n");
                for (c, g) in &s.campaigns {
                    md.push_str(&format!(
                        "| {c} | {} | {} | {} | {} |\n",
                        g.sessions,
                        g.accounts,
                        g.events,
                        fmt_q(&g.events_per_session)
                    ));
                }
            }
            md.push_str("\n### Features (median [p25, p75])\n\n| feature | benign | extraction |\n|---|---|---|\n");
            for (f, by_label) in &s.features {
                let cell = |l: &str| {
                    by_label.get(l).map_or("-".to_string(), |q| {
                        format!("{:.3} [{:.3}, {:.3}]", q.p50, q.p25, q.p75)
                    })
                };
                md.push_str(&format!(
                    "| {f} | {} | {} |\n",
                    cell("benign"),
                    cell("extraction")
                ));
            }
        }
        md
    }
}
