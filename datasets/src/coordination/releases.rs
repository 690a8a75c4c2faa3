//! Model releases: a model whose first request in the window comes well
//! after the window's start was released inside it. Public reports
//! describe operators who start harvesting a model within days of its
//! release, while people already on the service keep their rhythm. Per
//! account: how long after the latest release before it its first request
//! came. Only the `model` field of requests is read; sorted lists, no
//! pairs.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{activity::Accounts, keys::AccountIndex};
use crate::schema::Session;

/// Accounts that must use a model for its first request to count as its
/// release (one stray early request of a rarely used model is not one).
pub const MIN_RELEASE_ACCOUNTS: usize = 3;

/// Release times in the window, ascending: the first request of every
/// model used by at least [`MIN_RELEASE_ACCOUNTS`] accounts whose first
/// request came at least `gap_hours` after the window's first request.
pub fn releases(sessions: &[&Session], accounts: &Accounts, gap_hours: i64) -> Vec<DateTime<Utc>> {
    let Some(window_start) = sessions.iter().map(|s| s.start()).min() else {
        return Vec::new();
    };
    let mut models: HashMap<&str, (DateTime<Utc>, HashSet<AccountIndex>)> = HashMap::new();
    for (s, &a) in sessions.iter().zip(&accounts.of_session) {
        for e in &s.events {
            let Some(model) = e.model.as_deref() else {
                continue;
            };
            let entry = models
                .entry(model)
                .or_insert_with(|| (e.ts, HashSet::new()));
            entry.0 = entry.0.min(e.ts);
            entry.1.insert(a);
        }
    }
    let mut out: Vec<DateTime<Utc>> = models
        .into_values()
        .filter(|(first, users)| {
            users.len() >= MIN_RELEASE_ACCOUNTS && (*first - window_start).num_hours() >= gap_hours
        })
        .map(|(first, _)| first)
        .collect();
    out.sort_unstable();
    out
}

/// For every account (index order of `accounts`), the hours from the
/// latest release at or before its first request to that request; `None`
/// when no release precedes it or none of its requests named a model.
pub fn hours_after_release(accounts: &Accounts, releases: &[DateTime<Utc>]) -> Vec<Option<f32>> {
    accounts
        .activity
        .iter()
        .map(|a| {
            if !a.has_model {
                return None;
            }
            let before = releases.partition_point(|r| *r <= a.first_seen);
            let latest = releases.get(before.checked_sub(1)?)?;
            Some((a.first_seen - *latest).num_seconds() as f32 / 3600.0)
        })
        .collect()
}
