//! Operator groups: accounts linked by *combined* keys, each of which
//! pairs two kinds of shared target (a template on the same day, a prefix
//! around a template, a fingerprint or a template in one creation day).
//! CopyCatch's lesson is that one shared attribute, such as a VPN exit or
//! a common opening, is weak: two accounts are linked only when they share
//! keys of at least two kinds, and a group is a connected component of the
//! links (union-find). Pairs are formed only between neighbours in time on
//! the same key, so the work grows with the requests, not with the square
//! of the accounts.

use std::collections::HashMap;

use super::{
    activity::Accounts,
    infra::prefix_key,
    keys::{key_of, AccountIndex, KeyAccounts},
    templates::{frames_of, Templates},
    ValidEvidenceParams,
};
use crate::{features::evenly_spaced, schema::Session};

/// The kinds of combined key, in the order of [`LinkKinds`] bits.
pub const LINK_KINDS: [&str; 6] = [
    "template+day",
    "prefix+template",
    "prefix+text-group",
    "fingerprint+creation-day",
    "template+creation-day",
    "text-group+creation-day",
];

/// A set of [`LINK_KINDS`] as bits.
pub type LinkKinds = u8;

/// Names of the kinds in `kinds`.
pub fn kind_names(kinds: LinkKinds) -> Vec<&'static str> {
    LINK_KINDS
        .iter()
        .enumerate()
        .filter(|(i, _)| kinds & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// Disjoint sets over `0..n` with path halving.
pub struct UnionFind(Vec<u32>);

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> Self {
        UnionFind((0..n as u32).collect())
    }

    /// The representative of `x`'s set (the smallest member joined so far).
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.0[x as usize] != x {
            let parent = self.0[self.0[x as usize] as usize];
            self.0[x as usize] = parent;
            x = parent;
        }
        x
    }

    /// Joins the sets of `a` and `b`.
    pub fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb) as usize] = ra.min(rb);
        }
    }
}

const DAY_S: i64 = 86_400;
/// Accounts after each account on a key (by first request) it is paired
/// with.
const NEIGHBOURS: usize = 8;

/// Adds every combined key of one sampled request.
#[allow(clippy::too_many_arguments)]
fn request_keys(
    out: &mut Vec<(u64, u8)>,
    session: &Session,
    event: usize,
    creation_day: Option<i64>,
    fresh: bool,
    text_group: Option<u64>,
    templates: &Templates,
    params: &ValidEvidenceParams,
) {
    let e = &session.events[event];
    let day = e.ts.timestamp().div_euclid(DAY_S);
    let prefix = e.ip.as_deref().map(|ip| prefix_key(ip, params));
    let group = text_group.map(|g| key_of(&[b"group", &g.to_le_bytes()]));
    for (t, _) in frames_of(&e.prompt, params.frame_words) {
        if !templates.is_template(t) {
            continue;
        }
        out.push((key_of(&[&t.to_le_bytes(), &day.to_le_bytes()]), 0));
        if let Some(p) = prefix {
            out.push((key_of(&[&p.to_le_bytes(), &t.to_le_bytes()]), 1));
        }
        if let Some(c) = creation_day {
            out.push((key_of(&[b"wave", &t.to_le_bytes(), &c.to_le_bytes()]), 4));
        }
    }
    if let (Some(p), Some(g)) = (prefix, group) {
        out.push((key_of(&[&p.to_le_bytes(), &g.to_le_bytes()]), 2));
    }
    if let (true, Some(c)) = (fresh, creation_day) {
        if let (Some(asn), Some(ua)) = (e.asn, &e.user_agent) {
            out.push((
                key_of(&[b"fp", &asn.to_le_bytes(), ua.as_bytes(), &c.to_le_bytes()]),
                3,
            ));
        }
        if let Some(g) = group {
            out.push((key_of(&[b"wave", &g.to_le_bytes(), &c.to_le_bytes()]), 5));
        }
    }
}

/// Operator group of every account (index order of `accounts`): the
/// group id (the smallest account index in it) and the kinds of key that
/// linked it; accounts no key linked get `None`.
pub fn operator_groups(
    sessions: &[&Session],
    accounts: &Accounts,
    text_groups: Option<&[Option<u64>]>,
    templates: &Templates,
    params: &ValidEvidenceParams,
) -> Vec<Option<(u32, LinkKinds)>> {
    let mut join = KeyAccounts::default();
    let mut kind_of: HashMap<u64, u8> = HashMap::new();
    let mut keys = Vec::new();
    for (i, (s, &a)) in sessions.iter().zip(&accounts.of_session).enumerate() {
        let activity = &accounts.activity[a as usize];
        let creation_day = activity.created_at.map(|c| c.timestamp().div_euclid(DAY_S));
        let fresh = activity.is_fresh(params.fresh_days);
        let group = text_groups.and_then(|g| g[i]);
        for ev in evenly_spaced(s.events.len(), params.max_prompts_per_session) {
            keys.clear();
            request_keys(
                &mut keys,
                s,
                ev,
                creation_day,
                fresh,
                group,
                templates,
                params,
            );
            for &(k, kind) in &keys {
                join.add(k, a);
                kind_of.insert(k, kind);
            }
        }
    }
    join.finish();
    link(&join, &kind_of, accounts, params.min_template_accounts)
}

/// Accounts of each key shared by at least `min_accounts` accounts, in
/// the order of their first request.
fn key_members(
    join: &KeyAccounts,
    accounts: &Accounts,
    min_accounts: u32,
) -> Vec<(u64, Vec<AccountIndex>)> {
    let mut out = Vec::new();
    for chunk in join.pairs().chunk_by(|a, b| a.0 == b.0) {
        if (chunk.len() as u32) < min_accounts {
            continue;
        }
        let mut members: Vec<AccountIndex> = chunk.iter().map(|p| p.1).collect();
        members.sort_by_key(|&a| (accounts.activity[a as usize].first_seen, a));
        out.push((chunk[0].0, members));
    }
    out
}

/// Links pairs of accounts that share keys of at least two kinds. Pairs
/// are only formed between an account and its next `NEIGHBOURS` accounts
/// (by first request) on the same key, so the work per key is linear in
/// its accounts; a campaign stays connected through its chain of
/// neighbours.
fn link(
    join: &KeyAccounts,
    kind_of: &HashMap<u64, u8>,
    accounts: &Accounts,
    min_accounts: u32,
) -> Vec<Option<(u32, LinkKinds)>> {
    let mut pair_kinds: HashMap<(AccountIndex, AccountIndex), LinkKinds> = HashMap::new();
    for (key, members) in key_members(join, accounts, min_accounts) {
        let bit = 1 << kind_of[&key];
        for (i, &a) in members.iter().enumerate() {
            for &b in members.iter().skip(i + 1).take(NEIGHBOURS) {
                *pair_kinds.entry((a.min(b), a.max(b))).or_default() |= bit;
            }
        }
    }
    let n = accounts.len();
    let mut uf = UnionFind::new(n);
    let mut linked = vec![false; n];
    let strong: Vec<_> = pair_kinds
        .into_iter()
        .filter(|(_, kinds)| kinds.count_ones() >= 2)
        .collect();
    for &((a, b), _) in &strong {
        uf.union(a, b);
        linked[a as usize] = true;
        linked[b as usize] = true;
    }
    let mut kinds = vec![0 as LinkKinds; n];
    for &((a, _), k) in &strong {
        let root = uf.find(a);
        kinds[root as usize] |= k;
    }
    (0..n as u32)
        .map(|a| {
            linked[a as usize].then(|| {
                let root = uf.find(a);
                (root, kinds[root as usize])
            })
        })
        .collect()
}
