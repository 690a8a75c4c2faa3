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

use crate::campaigns::{largest_first, CampaignContext};

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
