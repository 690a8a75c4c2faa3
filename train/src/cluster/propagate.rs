//! Account verdicts and cluster propagation.
//!
//! Rule: an account is flagged when one of its sessions passes the session
//! threshold ("by sessions"), or, failing that, when (1) at least one of
//! its sessions lies in a coordinated cluster (one spanning at least
//! `min_accounts` accounts) and (2) the mean score of all its sessions is
//! at least the propagation threshold ("by propagation"). In scores files a
//! session is flagged when it passes the session threshold itself, or when
//! its account was flagged by propagation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the detector concludes about one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountVerdict {
    /// The account.
    pub account_id: String,
    /// Its sessions in the input.
    pub sessions: usize,
    /// Mean session score.
    pub mean_score: f64,
    /// Highest session score.
    pub max_score: f32,
    /// A session passed the session threshold.
    pub flagged_by_sessions: bool,
    /// The coordinated cluster holding most of its sessions, if any.
    pub coordinated_cluster: Option<usize>,
    /// Flagged by propagation (and not by sessions).
    pub propagated: bool,
}

impl AccountVerdict {
    /// Flagged by either route.
    pub fn flagged(&self) -> bool {
        self.flagged_by_sessions || self.propagated
    }
}

/// The verdict of `account_id` among verdicts sorted by account id (as
/// [`account_verdicts`] returns them).
pub fn find_verdict<'a>(
    accounts: &'a [AccountVerdict],
    account_id: &str,
) -> Option<&'a AccountVerdict> {
    accounts
        .binary_search_by(|a| a.account_id.as_str().cmp(account_id))
        .ok()
        .map(|i| &accounts[i])
}

/// One session as propagation sees it.
#[derive(Debug, Clone, Copy)]
pub struct SessionView<'a> {
    /// Its account.
    pub account_id: &'a str,
    /// Its score.
    pub score: f32,
    /// Its cluster, if that cluster is coordinated.
    pub coordinated_cluster: Option<usize>,
}

/// Applies the rule above to every account, returned sorted by account id.
pub fn account_verdicts(
    sessions: &[SessionView],
    session_threshold: f32,
    propagation_threshold: f32,
) -> Vec<AccountVerdict> {
    struct Acc {
        n: usize,
        sum: f64,
        max: f32,
        clusters: BTreeMap<usize, usize>,
    }
    let mut by_account: BTreeMap<&str, Acc> = BTreeMap::new();
    for s in sessions {
        let a = by_account.entry(s.account_id).or_insert(Acc {
            n: 0,
            sum: 0.0,
            max: f32::NEG_INFINITY,
            clusters: BTreeMap::new(),
        });
        a.n += 1;
        a.sum += f64::from(s.score);
        a.max = a.max.max(s.score);
        if let Some(c) = s.coordinated_cluster {
            *a.clusters.entry(c).or_default() += 1;
        }
    }
    by_account
        .into_iter()
        .map(|(account_id, a)| {
            let mean_score = a.sum / a.n as f64;
            // Most sessions first; among equals, the lowest cluster id.
            let coordinated_cluster = a
                .clusters
                .iter()
                .max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0)))
                .map(|(&c, _)| c);
            let flagged_by_sessions = a.max >= session_threshold;
            AccountVerdict {
                account_id: account_id.to_string(),
                sessions: a.n,
                mean_score,
                max_score: a.max,
                flagged_by_sessions,
                coordinated_cluster,
                propagated: !flagged_by_sessions
                    && coordinated_cluster.is_some()
                    && mean_score >= f64::from(propagation_threshold),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(account_id: &str, score: f32, cluster: Option<usize>) -> SessionView<'_> {
        SessionView {
            account_id,
            score,
            coordinated_cluster: cluster,
        }
    }

    #[test]
    fn the_rule_case_by_case() {
        let sessions = [
            // a: one session over the session threshold.
            view("a", 0.95, None),
            view("a", 0.1, None),
            // b: coordinated, mean 0.6 >= 0.5: propagated.
            view("b", 0.7, Some(3)),
            view("b", 0.5, None),
            // c: coordinated but mean 0.3 < 0.5: not flagged.
            view("c", 0.3, Some(3)),
            // d: mean 0.8 but in no coordinated cluster: not flagged.
            view("d", 0.8, None),
            // e: in two clusters, most sessions in 5.
            view("e", 0.6, Some(3)),
            view("e", 0.6, Some(5)),
            view("e", 0.6, Some(5)),
        ];
        let v = account_verdicts(&sessions, 0.9, 0.5);
        let by: BTreeMap<_, _> = v.iter().map(|a| (a.account_id.as_str(), a)).collect();
        assert!(by["a"].flagged_by_sessions && !by["a"].propagated && by["a"].flagged());
        assert!(by["b"].propagated && by["b"].flagged());
        assert!((by["b"].mean_score - 0.6).abs() < 1e-6);
        assert_eq!(by["b"].sessions, 2);
        assert!(!by["c"].flagged());
        assert!(!by["d"].flagged());
        assert_eq!(by["e"].coordinated_cluster, Some(5));
        assert!(by["e"].propagated);
    }
}
