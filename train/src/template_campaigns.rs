//! Template campaigns: accounts that no operator group holds, grouped by
//! the wording they share (first those at the link threshold, whose
//! campaigns corroborate their verdicts; after the corroboration rule, the
//! acted accounts left). Two joins feed it
//! (`datasets::coordination::templates`): prompt *frames* (one wording
//! used whole by every account) and *wrapper sentences* (an operator that
//! paraphrases its wrapper for every account, drawing an opener, a
//! chain-of-thought demand and an answer format for each, shares no frame
//! across accounts but repeats whole sentences).
//!
//! Only *characteristic* keys link: at least [`TEMPLATE_LINK_ACCOUNTS`]
//! such accounts used the key and they are at least half of every account
//! that used it in the window (a wording most of whose users score low is
//! people's, not an operator's). A characteristic frame links all its
//! users. A sentence is weaker, since a public task's own boilerplate
//! ("express your answer as a common fraction") is a sentence every asker
//! of that task repeats: as with operator groups, one shared attribute is
//! not enough, so sentences link accounts through *pairs* of
//! characteristic sentences that one prompt carries together, and an
//! account that carries a single one joins the group that holds at least
//! half of that sentence's users, never bridging two groups.

use std::collections::{BTreeMap, BTreeSet};

use datasets::coordination::{groups::UnionFind, templates::sampled_prompts, Templates};

use crate::campaigns::{largest_first, CampaignBasis, CampaignContext};

/// Acted accounts a template must hold to link them into a template
/// campaign: enough that one task asked by a few accounts (the same
/// public benchmark question reaching two operators) joins nothing. Chosen
/// on the validation split: campaign ARI 0.438 at 5, 0.402 at 10, 0.360 at
/// 20.
pub const TEMPLATE_LINK_ACCOUNTS: usize = 5;

/// The accounts `eligible` accepts, grouped by characteristic frames and
/// wrapper sentences (module docs). Groups are the connected components
/// of at least [`crate::campaigns::MIN_CAMPAIGN_ACCOUNTS`], largest first.
/// This finds operators who left no shared infrastructure (aged accounts
/// on residential exits) but reuse a wording.
pub fn template_campaigns(
    ctx: &CampaignContext,
    eligible: impl Fn(usize) -> bool,
) -> Vec<Vec<usize>> {
    let mut sets = UnionFind::new(ctx.decisions.len());
    let mut linked = BTreeSet::new();
    let frame_users = users_of(ctx, ctx.templates, &eligible);
    for members in characteristic(&frame_users, ctx.templates).values() {
        join(&mut sets, &mut linked, members.iter().copied());
    }
    let sentence_users = users_of(ctx, ctx.sentences, &eligible);
    let wrapper = characteristic(&sentence_users, ctx.sentences);
    for members in sentence_pair_users(ctx, &wrapper, &eligible).values() {
        join(&mut sets, &mut linked, members.iter().copied());
    }
    attach_single_sentence_users(&mut sets, &mut linked, &wrapper);
    let mut by_root: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for a in linked {
        by_root.entry(sets.find(a as u32)).or_default().push(a);
    }
    largest_first(by_root.into_values())
}

/// Users of a key, among the eligible accounts.
type KeyUsers = BTreeMap<u64, BTreeSet<usize>>;

/// The template keys of `join` each account accepted by `eligible` used.
fn users_of(
    ctx: &CampaignContext,
    join: &Templates,
    eligible: &impl Fn(usize) -> bool,
) -> KeyUsers {
    let mut users = KeyUsers::new();
    for (s, &a) in ctx.sessions.iter().zip(ctx.account_of_session) {
        let a = a as usize;
        if !eligible(a) {
            continue;
        }
        for prompt in sampled_prompts(s, ctx.params) {
            for (key, _) in join.keys_of(prompt, ctx.params) {
                if join.is_template(key) {
                    users.entry(key).or_default().insert(a);
                }
            }
        }
    }
    users
}

/// The characteristic keys of `users` and their users: at least
/// [`TEMPLATE_LINK_ACCOUNTS`] of them, and at least half of the key's
/// users in the window.
fn characteristic(users: &KeyUsers, join: &Templates) -> KeyUsers {
    users
        .iter()
        .filter(|(&key, members)| {
            members.len() >= TEMPLATE_LINK_ACCOUNTS
                && 2 * members.len() >= join.accounts_of(key) as usize
        })
        .map(|(&key, members)| (key, members.clone()))
        .collect()
}

/// Users of each pair of characteristic sentences that one prompt carries
/// together (a combined key: no pair of accounts is formed).
fn sentence_pair_users(
    ctx: &CampaignContext,
    wrapper: &KeyUsers,
    eligible: &impl Fn(usize) -> bool,
) -> BTreeMap<(u64, u64), BTreeSet<usize>> {
    let mut users: BTreeMap<(u64, u64), BTreeSet<usize>> = BTreeMap::new();
    for (s, &a) in ctx.sessions.iter().zip(ctx.account_of_session) {
        let a = a as usize;
        if !eligible(a) {
            continue;
        }
        for prompt in sampled_prompts(s, ctx.params) {
            let mut keys: Vec<u64> = ctx
                .sentences
                .keys_of(prompt, ctx.params)
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| wrapper.contains_key(k))
                .collect();
            keys.sort_unstable();
            for (i, &x) in keys.iter().enumerate() {
                for &y in &keys[i + 1..] {
                    users.entry((x, y)).or_default().insert(a);
                }
            }
        }
    }
    users
}

/// Joins `members` into one set and marks them linked.
fn join(sets: &mut UnionFind, linked: &mut BTreeSet<usize>, members: impl Iterator<Item = usize>) {
    let mut first = None;
    for m in members {
        let f = *first.get_or_insert(m);
        sets.union(f as u32, m as u32);
        linked.insert(m);
    }
}

/// Links each unlinked user of a characteristic sentence to the group
/// holding at least half of that sentence's users, when all its sentences
/// that do so name the same group.
fn attach_single_sentence_users(
    sets: &mut UnionFind,
    linked: &mut BTreeSet<usize>,
    wrapper: &KeyUsers,
) {
    let mut roots: BTreeMap<usize, BTreeSet<u32>> = BTreeMap::new();
    for members in wrapper.values() {
        let mut votes: BTreeMap<u32, usize> = BTreeMap::new();
        for &m in members.iter().filter(|m| linked.contains(m)) {
            *votes.entry(sets.find(m as u32)).or_default() += 1;
        }
        let Some((&root, &n)) = votes.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0))) else {
            continue;
        };
        if 2 * n >= members.len() {
            for &m in members.iter().filter(|m| !linked.contains(m)) {
                roots.entry(m).or_default().insert(root);
            }
        }
    }
    for (account, candidates) in roots {
        if let [root] = candidates.into_iter().collect::<Vec<_>>()[..] {
            sets.union(root, account as u32);
            linked.insert(account);
        }
    }
}

/// `groups` with those whose accounts mostly carry the same characteristic
/// frame merged into one (an operator campaign if any of them is one),
/// operator campaigns first, then by size. An operator that spreads its
/// accounts over days and exits forms one operator group per shared day or
/// exit, and each of them uses the operator's prompt frame; a frame that
/// characterises two groups is the same evidence that links accounts into
/// a template campaign. Frames count as characteristic over the accounts
/// `eligible` accepts; with `attach`, each of those accounts that no group
/// holds joins the one group whose dominant frame it carries.
pub fn merge_by_dominant_frame(
    ctx: &CampaignContext,
    groups: Vec<(CampaignBasis, Vec<usize>)>,
    eligible: impl Fn(usize) -> bool,
    attach: bool,
) -> Vec<(CampaignBasis, Vec<usize>)> {
    let frames = characteristic(&users_of(ctx, ctx.templates, &eligible), ctx.templates);
    let mut frames_of: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for (&key, users) in &frames {
        for &a in users {
            frames_of.entry(a).or_default().push(key);
        }
    }
    let mut sets = UnionFind::new(groups.len());
    let mut group_of_frame: BTreeMap<u64, usize> = BTreeMap::new();
    for (g, (_, members)) in groups.iter().enumerate() {
        if let Some(frame) = dominant_frame(&frames_of, members) {
            let first = *group_of_frame.entry(frame).or_insert(g);
            sets.union(first as u32, g as u32);
        }
    }
    let mut merged: BTreeMap<u32, (CampaignBasis, Vec<usize>)> = BTreeMap::new();
    let grouped: BTreeSet<usize> = groups.iter().flat_map(|g| g.1.iter().copied()).collect();
    for (g, (basis, members)) in groups.into_iter().enumerate() {
        let entry = merged
            .entry(sets.find(g as u32))
            .or_insert((basis, Vec::new()));
        if basis == CampaignBasis::Operator {
            entry.0 = basis;
        }
        entry.1.extend(members);
    }
    if attach {
        for (account, keys) in frames_of.iter().filter(|(a, _)| !grouped.contains(a)) {
            let roots: BTreeSet<u32> = keys
                .iter()
                .filter_map(|k| group_of_frame.get(k))
                .map(|&g| sets.find(g as u32))
                .collect();
            if let [root] = roots.into_iter().collect::<Vec<_>>()[..] {
                if let Some(entry) = merged.get_mut(&root) {
                    entry.1.push(*account);
                }
            }
        }
    }
    let mut out: Vec<(CampaignBasis, Vec<usize>)> = merged
        .into_values()
        .map(|(basis, mut members)| {
            members.sort_unstable();
            (basis, members)
        })
        .collect();
    out.sort_by(|a, b| {
        (a.0.cmp(&b.0))
            .then(b.1.len().cmp(&a.1.len()))
            .then(a.1[0].cmp(&b.1[0]))
    });
    out
}

/// The frame (of `frames_of` each account) that at least half of
/// `members` carry, the most carried first (ties by key).
fn dominant_frame(frames_of: &BTreeMap<usize, Vec<u64>>, members: &[usize]) -> Option<u64> {
    let mut carried: BTreeMap<u64, usize> = BTreeMap::new();
    for m in members {
        for &key in frames_of.get(m).into_iter().flatten() {
            *carried.entry(key).or_default() += 1;
        }
    }
    carried
        .into_iter()
        .filter(|&(_, n)| 2 * n >= members.len())
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(key, _)| key)
}
