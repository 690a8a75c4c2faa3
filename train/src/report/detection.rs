//! Account-level detection per campaign and per benign archetype: the
//! share of accounts flagged by their sessions alone, and after cluster
//! propagation.

use std::collections::BTreeMap;

use datasets::{Label, Session};
use serde::{Deserialize, Serialize};

use crate::{
    cluster::propagate::{find_verdict, AccountVerdict},
    metrics::ratio,
};

/// A campaign is "low-and-slow" when its accounts send a median of at most
/// this many requests in the evaluated file.
pub const LOW_AND_SLOW_REQUESTS: f64 = 5.0;

/// Detection of one group of accounts (a campaign, or a benign archetype).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupDetection {
    /// Campaign id, or benign archetype.
    pub group: String,
    /// Distinct accounts.
    pub accounts: usize,
    /// Sessions.
    pub sessions: usize,
    /// Median requests per account.
    pub median_requests_per_account: f64,
    /// Accounts flagged by a session over the session threshold.
    pub flagged_by_sessions: usize,
    /// Accounts flagged by sessions or by propagation.
    pub flagged_after_propagation: usize,
    /// flagged_by_sessions / accounts.
    pub share_by_sessions: f64,
    /// flagged_after_propagation / accounts.
    pub share_after_propagation: f64,
}

/// Totals over several groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionTotal {
    /// Groups counted.
    pub groups: Vec<String>,
    /// Accounts.
    pub accounts: usize,
    /// Flagged by sessions.
    pub flagged_by_sessions: usize,
    /// Flagged after propagation.
    pub flagged_after_propagation: usize,
    /// flagged_by_sessions / accounts.
    pub share_by_sessions: f64,
    /// flagged_after_propagation / accounts.
    pub share_after_propagation: f64,
}

/// Account-level detection of a labeled file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Per campaign (extraction accounts; `unknown` without `campaign_id`).
    pub campaigns: Vec<GroupDetection>,
    /// Per benign archetype (`unknown` without one): flagged shares are
    /// false-positive rates over accounts.
    pub benign: Vec<GroupDetection>,
    /// All extraction accounts.
    pub extraction_total: DetectionTotal,
    /// Low-and-slow campaigns (see [`LOW_AND_SLOW_REQUESTS`]), if any.
    pub low_and_slow: Option<DetectionTotal>,
    /// All benign accounts.
    pub benign_total: DetectionTotal,
}

fn median(mut values: Vec<usize>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0
    }
}

#[derive(Default)]
struct GroupAcc<'a> {
    sessions: usize,
    requests: BTreeMap<&'a str, usize>,
}

fn total<'a>(groups: impl Iterator<Item = &'a GroupDetection>) -> DetectionTotal {
    let mut t = DetectionTotal {
        groups: Vec::new(),
        accounts: 0,
        flagged_by_sessions: 0,
        flagged_after_propagation: 0,
        share_by_sessions: 0.0,
        share_after_propagation: 0.0,
    };
    for g in groups {
        t.groups.push(g.group.clone());
        t.accounts += g.accounts;
        t.flagged_by_sessions += g.flagged_by_sessions;
        t.flagged_after_propagation += g.flagged_after_propagation;
    }
    t.share_by_sessions = ratio(t.flagged_by_sessions, t.accounts);
    t.share_after_propagation = ratio(t.flagged_after_propagation, t.accounts);
    t
}

/// Groups accounts by campaign (extraction) or archetype (benign) and
/// counts how many each route flags. `accounts` are the verdicts of every
/// account of `sessions`, sorted by account id.
pub fn detection(sessions: &[&Session], accounts: &[AccountVerdict]) -> Detection {
    let mut campaigns: BTreeMap<&str, GroupAcc> = BTreeMap::new();
    let mut benign: BTreeMap<&str, GroupAcc> = BTreeMap::new();
    for s in sessions {
        let (map, key) = if s.label == Some(Label::Extraction) {
            (
                &mut campaigns,
                s.campaign_id.as_deref().unwrap_or("unknown"),
            )
        } else {
            (&mut benign, s.archetype.as_deref().unwrap_or("unknown"))
        };
        let g = map.entry(key).or_default();
        g.sessions += 1;
        *g.requests.entry(s.account_id.as_str()).or_default() += s.events.len();
    }
    let summarise = |map: BTreeMap<&str, GroupAcc>| -> Vec<GroupDetection> {
        map.into_iter()
            .map(|(group, g)| {
                let (mut by_sessions, mut after) = (0, 0);
                for id in g.requests.keys() {
                    if let Some(v) = find_verdict(accounts, id) {
                        by_sessions += usize::from(v.flagged_by_sessions);
                        after += usize::from(v.flagged());
                    }
                }
                let n = g.requests.len();
                GroupDetection {
                    group: group.to_string(),
                    accounts: n,
                    sessions: g.sessions,
                    median_requests_per_account: median(g.requests.values().copied().collect()),
                    flagged_by_sessions: by_sessions,
                    flagged_after_propagation: after,
                    share_by_sessions: ratio(by_sessions, n),
                    share_after_propagation: ratio(after, n),
                }
            })
            .collect()
    };
    let campaigns = summarise(campaigns);
    let benign = summarise(benign);
    let low: Vec<&GroupDetection> = campaigns
        .iter()
        .filter(|g| g.median_requests_per_account <= LOW_AND_SLOW_REQUESTS)
        .collect();
    Detection {
        extraction_total: total(campaigns.iter()),
        low_and_slow: (!low.is_empty()).then(|| total(low.into_iter())),
        benign_total: total(benign.iter()),
        campaigns,
        benign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, account: &str, label: Label, group: &str, events: usize) -> Session {
        let events: Vec<_> = (0..events)
            .map(|i| serde_json::json!({"ts": format!("2026-02-10T12:00:0{i}Z"), "prompt": "p"}))
            .collect();
        let mut json = serde_json::json!({
            "session_id": id, "account_id": account, "label": label.as_str(), "events": events,
        });
        if label == Label::Extraction {
            json["campaign_id"] = group.into();
        } else {
            json["archetype"] = group.into();
        }
        serde_json::from_value(json).unwrap()
    }

    fn verdict(id: &str, by_sessions: bool, propagated: bool) -> AccountVerdict {
        AccountVerdict {
            account_id: id.into(),
            sessions: 1,
            mean_score: 0.0,
            max_score: 0.0,
            flagged_by_sessions: by_sessions,
            coordinated_cluster: None,
            propagated,
        }
    }

    #[test]
    fn counts_each_route_per_group_and_finds_low_and_slow_campaigns() {
        let sessions = [
            session("1", "a1", Label::Extraction, "camp-slow", 2),
            session("2", "a2", Label::Extraction, "camp-slow", 1),
            session("3", "a3", Label::Extraction, "camp-slow", 3),
            session("4", "a4", Label::Extraction, "camp-bulk", 9),
            session("5", "a4", Label::Extraction, "camp-bulk", 9),
            session("6", "b1", Label::Benign, "student", 1),
            session("7", "b2", Label::Benign, "student", 1),
        ];
        let accounts = vec![
            verdict("a1", true, false),
            verdict("a2", false, true),
            verdict("a3", false, false),
            verdict("a4", true, false),
            verdict("b1", false, true),
            verdict("b2", false, false),
        ];
        let refs: Vec<&Session> = sessions.iter().collect();
        let d = detection(&refs, &accounts);
        let slow = &d.campaigns[1];
        assert_eq!(slow.group, "camp-slow");
        assert_eq!((slow.accounts, slow.sessions), (3, 3));
        assert_eq!(slow.median_requests_per_account, 2.0);
        assert_eq!(
            (slow.flagged_by_sessions, slow.flagged_after_propagation),
            (1, 2)
        );
        let bulk = &d.campaigns[0];
        assert_eq!((bulk.accounts, bulk.median_requests_per_account), (1, 18.0));
        let low = d.low_and_slow.unwrap();
        assert_eq!(low.groups, vec!["camp-slow".to_string()]);
        assert!((low.share_after_propagation - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.extraction_total.accounts, 4);
        assert_eq!(d.extraction_total.flagged_after_propagation, 3);
        assert_eq!(d.benign_total.flagged_by_sessions, 0);
        assert_eq!(d.benign_total.flagged_after_propagation, 1);
        assert_eq!(d.benign[0].share_after_propagation, 0.5);
    }
}
