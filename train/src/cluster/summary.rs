//! The cluster table: per DBSCAN cluster, who is in it, when, from where,
//! how the model scored it, which prompt templates repeat, and a verdict.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use datasets::{asn::is_hosting, Session};
use serde::{Deserialize, Serialize};

use super::propagate::{find_verdict, AccountVerdict};

/// Words of a prompt that make up its template key.
pub const TEMPLATE_WORDS: usize = 8;
/// Templates listed per cluster.
pub const TOP_TEMPLATES: usize = 3;
/// Characters of an example prompt kept in the table.
pub const EXAMPLE_CHARS: usize = 200;

/// What a cluster looks like to a reviewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// At least `min_accounts` accounts and a mean score at or above the
    /// propagation threshold.
    CoordinatedExtraction,
    /// At least `min_accounts` accounts, but scored low: review (an eval
    /// harness or labeling pipeline looks like this too).
    CoordinatedReview,
    /// Fewer accounts than `min_accounts`: one heavy user's repeated work.
    NotCoordinated,
}

impl Verdict {
    /// Whether the cluster spans enough accounts to count as coordinated.
    pub fn is_coordinated(self) -> bool {
        !matches!(self, Verdict::NotCoordinated)
    }
}

/// A prompt template repeated inside a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateCount {
    /// Template key: first words, lowercased, digits masked as `#`.
    pub template: String,
    /// Prompts in the cluster with this key.
    pub prompts: usize,
    /// Distinct accounts that sent it.
    pub accounts: usize,
    /// One example prompt (truncated).
    pub example: String,
}

/// One row of the cluster table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// Cluster id (0 = most accounts).
    pub cluster_id: usize,
    /// Distinct accounts.
    pub accounts: usize,
    /// Sessions.
    pub sessions: usize,
    /// Requests (events) in its sessions.
    pub requests: usize,
    /// First request.
    pub first_seen: String,
    /// Last request.
    pub last_seen: String,
    /// Hours from first to last request.
    pub span_hours: f64,
    /// Distinct client IPs.
    pub distinct_ips: usize,
    /// Distinct ASNs.
    pub distinct_asns: usize,
    /// Share of requests (with an ASN) from hosting / proxy ASNs.
    pub hosting_asn_share: f64,
    /// Mean session score.
    pub mean_score: f64,
    /// Highest session score.
    pub max_score: f32,
    /// The most repeated prompt templates.
    pub top_templates: Vec<TemplateCount>,
    /// Verdict.
    pub verdict: Verdict,
    /// Its accounts with a session over the session threshold.
    #[serde(default)]
    pub accounts_flagged_by_sessions: usize,
    /// Accounts flagged by propagation from this cluster (their
    /// coordinated cluster): how much of the cluster the session
    /// threshold missed and the cluster's evidence added.
    #[serde(default)]
    pub accounts_propagated: usize,
    /// Accounts in the cluster (sorted).
    pub account_ids: Vec<String>,
}

/// The template key of a prompt: its first [`TEMPLATE_WORDS`] words,
/// lowercased, with every digit replaced by `#`.
pub fn prompt_template(prompt: &str) -> String {
    prompt
        .split_whitespace()
        .take(TEMPLATE_WORDS)
        .map(|w| {
            w.chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn top_templates(members: &[(&Session, f32)]) -> Vec<TemplateCount> {
    let mut counts: HashMap<String, (usize, BTreeSet<&str>, &str)> = HashMap::new();
    for (s, _) in members {
        for e in &s.events {
            let entry = counts
                .entry(prompt_template(&e.prompt))
                .or_insert_with(|| (0, BTreeSet::new(), e.prompt.as_str()));
            entry.0 += 1;
            entry.1.insert(s.account_id.as_str());
        }
    }
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
    rows.into_iter()
        .take(TOP_TEMPLATES)
        .map(|(template, (prompts, accounts, example))| TemplateCount {
            template,
            prompts,
            accounts: accounts.len(),
            example: truncate_chars(example, EXAMPLE_CHARS),
        })
        .collect()
}

/// Summarises one cluster's member sessions (with their scores).
pub fn summarise(
    cluster_id: usize,
    members: &[(&Session, f32)],
    min_accounts: usize,
    propagation_threshold: f32,
) -> ClusterSummary {
    let accounts: BTreeSet<&str> = members.iter().map(|(s, _)| s.account_id.as_str()).collect();
    let mut ips = BTreeSet::new();
    let mut asns = BTreeSet::new();
    let (mut with_asn, mut hosting, mut requests) = (0usize, 0usize, 0usize);
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    for (s, _) in members {
        first = Some(first.map_or(s.start(), |f| f.min(s.start())));
        last = Some(last.map_or(s.end(), |l| l.max(s.end())));
        for e in &s.events {
            requests += 1;
            if let Some(ip) = &e.ip {
                ips.insert(ip.as_str());
            }
            if let Some(asn) = e.asn {
                asns.insert(asn);
                with_asn += 1;
                hosting += usize::from(is_hosting(asn));
            }
        }
    }
    let mean_score =
        members.iter().map(|(_, p)| f64::from(*p)).sum::<f64>() / members.len().max(1) as f64;
    let verdict = if accounts.len() < min_accounts {
        Verdict::NotCoordinated
    } else if mean_score >= f64::from(propagation_threshold) {
        Verdict::CoordinatedExtraction
    } else {
        Verdict::CoordinatedReview
    };
    let fmt = |t: Option<DateTime<Utc>>| t.map(|t| datasets::schema::timestamp::format(&t));
    ClusterSummary {
        cluster_id,
        accounts: accounts.len(),
        sessions: members.len(),
        requests,
        first_seen: fmt(first).unwrap_or_default(),
        last_seen: fmt(last).unwrap_or_default(),
        span_hours: match (first, last) {
            (Some(f), Some(l)) => (l - f).num_seconds() as f64 / 3600.0,
            _ => 0.0,
        },
        distinct_ips: ips.len(),
        distinct_asns: asns.len(),
        hosting_asn_share: if with_asn == 0 {
            0.0
        } else {
            hosting as f64 / with_asn as f64
        },
        mean_score,
        max_score: members.iter().map(|(_, p)| *p).fold(0.0, f32::max),
        top_templates: top_templates(members),
        verdict,
        accounts_flagged_by_sessions: 0,
        accounts_propagated: 0,
        account_ids: accounts.into_iter().map(String::from).collect(),
    }
}

impl ClusterSummary {
    /// Counts the cluster's accounts flagged by sessions and those
    /// propagated from it, from the account verdicts (sorted by account
    /// id, as `account_verdicts` returns them).
    pub fn tally_accounts(&mut self, accounts: &[AccountVerdict]) {
        let verdicts = || {
            self.account_ids
                .iter()
                .filter_map(|id| find_verdict(accounts, id))
        };
        self.accounts_flagged_by_sessions = verdicts().filter(|a| a.flagged_by_sessions).count();
        self.accounts_propagated = verdicts()
            .filter(|a| a.propagated && a.coordinated_cluster == Some(self.cluster_id))
            .count();
    }
}

/// Groups sessions by cluster label: `clusters[c]` lists member indices.
pub fn members_by_cluster(labels: &[Option<usize>]) -> BTreeMap<usize, Vec<usize>> {
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.iter().enumerate() {
        if let Some(c) = l {
            out.entry(*c).or_default().push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_masks_digits_and_keeps_the_first_words() {
        assert_eq!(
            prompt_template("Solve  Problem 12: what is 3+4? Show every step please now"),
            "solve problem ##: what is #+#? show every"
        );
        assert_eq!(prompt_template("É 1"), "é #");
        assert_eq!(truncate_chars("héllo", 2), "hé…");
        assert_eq!(truncate_chars("hé", 2), "hé");
    }

    #[test]
    fn tally_counts_flagged_members_and_accounts_propagated_from_the_cluster() {
        use crate::cluster::propagate::{account_verdicts, SessionView};
        let view = |account_id, score, coordinated_cluster| SessionView {
            account_id,
            score,
            coordinated_cluster,
        };
        let accounts = account_verdicts(
            &[
                view("a", 0.95, Some(3)), // by sessions
                view("b", 0.6, Some(3)),  // propagated from 3
                view("c", 0.6, Some(3)),  // propagated from 5 (most sessions)
                view("c", 0.6, Some(5)),
                view("c", 0.6, Some(5)),
                view("d", 0.1, Some(3)), // not flagged
                view("e", 0.95, None),   // by sessions, not in the cluster
            ],
            0.9,
            0.5,
        );
        let mut cluster = summarise(3, &[], 3, 0.5);
        cluster.account_ids = ["a", "b", "c", "d"].map(String::from).to_vec();
        cluster.tally_accounts(&accounts);
        assert_eq!(cluster.accounts_flagged_by_sessions, 1);
        assert_eq!(cluster.accounts_propagated, 1);
    }
}
