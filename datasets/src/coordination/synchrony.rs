//! Synchronized activity in the manner of SynchroTrap (Cao et al., CCS
//! 2014): an *action* is a target hit in a time bucket, where the target is
//! a template, an IP prefix or (when the caller supplies one) a text group
//! such as an embedding cluster. An action is *matched* when another
//! account hit the same target in the same or an adjacent bucket. Counts
//! come from hash joins on `(target, bucket)`; no pair of accounts is
//! formed.

use super::{
    activity::Accounts,
    infra::prefix_key,
    keys::{key_of, AccountIndex, KeyAccounts},
    templates::{frames_of, Templates},
    ValidEvidenceParams,
};
use crate::{
    features::{evenly_spaced, ratio},
    schema::Session,
};

/// Synchrony evidence of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SyncEvidence {
    /// Most other accounts matching one of its actions.
    pub sync_peers: u32,
    /// Share of its distinct actions that another account matched.
    pub sync_share: f32,
}

/// One distinct action of one account.
type Action = (u64, i64, AccountIndex);

fn bucket_key(target: u64, bucket: i64) -> u64 {
    key_of(&[&target.to_le_bytes(), &bucket.to_le_bytes()])
}

/// The targets one sampled request hits.
fn targets(
    session: &Session,
    event: usize,
    text_group: Option<u64>,
    templates: &Templates,
    params: &ValidEvidenceParams,
) -> Vec<u64> {
    let e = &session.events[event];
    let mut out: Vec<u64> = frames_of(&e.prompt, params.frame_words)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|&k| templates.is_template(k))
        .collect();
    if let Some(ip) = &e.ip {
        out.push(prefix_key(ip, params));
    }
    if let Some(g) = text_group {
        out.push(key_of(&[b"group", &g.to_le_bytes()]));
    }
    out
}

fn actions(
    sessions: &[&Session],
    accounts: &Accounts,
    text_groups: Option<&[Option<u64>]>,
    templates: &Templates,
    params: &ValidEvidenceParams,
) -> Vec<Action> {
    let bucket_s = params.sync_bucket_minutes * 60;
    let mut out = Vec::new();
    for (i, (s, &a)) in sessions.iter().zip(&accounts.of_session).enumerate() {
        let group = text_groups.and_then(|g| g[i]);
        for ev in evenly_spaced(s.events.len(), params.max_prompts_per_session) {
            let bucket = s.events[ev].ts.timestamp().div_euclid(bucket_s);
            for t in targets(s, ev, group, templates, params) {
                out.push((t, bucket, a));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Synchrony evidence of every account (index order of `accounts`).
/// `text_groups`, when given, holds one optional group per session.
pub fn sync_evidence(
    sessions: &[&Session],
    accounts: &Accounts,
    text_groups: Option<&[Option<u64>]>,
    templates: &Templates,
    params: &ValidEvidenceParams,
) -> Vec<SyncEvidence> {
    let actions = actions(sessions, accounts, text_groups, templates, params);
    let mut join = KeyAccounts::default();
    for &(t, b, a) in &actions {
        join.add(bucket_key(t, b), a);
    }
    join.finish();
    let mut tally = vec![(0u32, 0u32, 0u32); accounts.len()]; // (peers, matched, total)
    for &(t, b, a) in &actions {
        let peers = (b - 1..=b + 1)
            .map(|x| {
                let k = bucket_key(t, x);
                join.accounts(k) - u32::from(join.contains(k, a))
            })
            .max()
            .unwrap_or(0);
        let e = &mut tally[a as usize];
        e.0 = e.0.max(peers);
        e.1 += u32::from(peers > 0);
        e.2 += 1;
    }
    tally
        .into_iter()
        .map(|(peers, matched, total)| SyncEvidence {
            sync_peers: peers,
            sync_share: ratio(matched as usize, total as usize),
        })
        .collect()
}
