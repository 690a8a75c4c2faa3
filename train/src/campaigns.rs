//! Campaigns as operators. An operator group (accounts linked by combined
//! cross-account keys, `datasets::coordination::groups`) becomes a
//! campaign when it holds at least [`MIN_CAMPAIGN_ACCOUNTS`] accounts and
//! at least half of them score at least the link threshold (the account
//! scorer's own `review` threshold). Accounts at that threshold that no
//! such group holds (per-account paraphrase, residential exits and aged
//! accounts leave little shared infrastructure) are then grouped by the
//! characteristic templates they share (a wording used mostly by such
//! accounts, `template_campaigns`), and the acted accounts left after the
//! corroboration rule by the same templates; campaigns whose accounts
//! mostly carry one characteristic frame merge (an operator's groups of
//! different days and exits); the acted accounts left go by content: one DBSCAN
//! over their sessions alone, whose k-distance eps adapts to their
//! density rather than to the whole window's. A group of people who merely share
//! a network, a topic or a template, whose accounts the scorer clears, is
//! never called a campaign. Each campaign states its evidence.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use datasets::{
    coordination::{templates::sampled_prompts, Templates, ValidEvidenceParams},
    schema::timestamp,
    Session,
};
use models::account_model::AccountVerdict;
use serde::{Deserialize, Serialize};

use crate::{
    accounts::{AccountDecision, AccountWindow},
    template_campaigns::{merge_by_dominant_frame, template_campaigns},
};

/// Groups smaller than this are never campaigns.
pub const MIN_CAMPAIGN_ACCOUNTS: usize = 3;
/// Templates listed per campaign.
const TOP_TEMPLATES: usize = 3;

/// A template a campaign's accounts share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedTemplate {
    /// The frame's words (`starts: ...` or `ends: ...`) or the wrapper
    /// sentence's (`sentence: ...`).
    pub frame: String,
    /// The campaign's accounts that used it.
    pub accounts: usize,
    /// Accounts in the whole window that used it.
    #[serde(default)]
    pub window_accounts: usize,
    /// One prompt that carried it.
    pub example: String,
}

/// What holds a campaign's accounts together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignBasis {
    /// An operator group: shared infrastructure, templates, timing or
    /// creation waves.
    Operator,
    /// Flagged accounts that share a characteristic template.
    Template,
    /// Flagged accounts whose sessions cluster together by content.
    Content,
}

/// One campaign and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// `op-1`, `op-2`, ...: operator campaigns by accounts, largest first,
    /// then content campaigns the same way.
    pub campaign_id: String,
    /// What holds it together.
    pub basis: CampaignBasis,
    /// Accounts in the operator group.
    pub accounts: usize,
    /// Of which flagged.
    pub flagged: usize,
    /// Of which sent to review.
    pub review: usize,
    /// Sessions of its accounts.
    pub sessions: usize,
    /// First request (RFC 3339).
    pub first_seen: String,
    /// Last request (RFC 3339).
    pub last_seen: String,
    /// The kinds of combined key that linked it.
    pub links: Vec<String>,
    /// IP addresses used by at least two of its accounts.
    pub shared_ips: usize,
    /// Prefixes used by at least two of its accounts.
    pub shared_prefixes: usize,
    /// Share of its accounts that are fresh.
    pub fresh_share: f64,
    /// Hours between its first and last account creation (none when no
    /// creation time is known).
    pub creation_span_hours: Option<f64>,
    /// The busiest hour: its start and how many accounts were active in it.
    pub busiest_hour: (String, usize),
    /// Mean account score.
    pub mean_account_score: f64,
    /// Templates most of its accounts share.
    pub templates: Vec<SharedTemplate>,
    /// Its accounts.
    pub account_ids: Vec<String>,
}

/// Account indices per operator group that qualifies as a campaign (at
/// least half its accounts scored `link_threshold` or more), largest
/// first (ties by group name).
pub fn operator_campaigns(decisions: &[AccountDecision], link_threshold: f32) -> Vec<Vec<usize>> {
    let mut by_group: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, d) in decisions.iter().enumerate() {
        if let Some(g) = &d.evidence.group {
            by_group.entry(g.as_str()).or_default().push(i);
        }
    }
    let mut groups: Vec<Vec<usize>> = by_group
        .into_values()
        .filter(|m| {
            let linking = m
                .iter()
                .filter(|&&i| decisions[i].score >= link_threshold)
                .count();
            m.len() >= MIN_CAMPAIGN_ACCOUNTS && 2 * linking >= m.len()
        })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    groups
}

/// Groups of at least [`MIN_CAMPAIGN_ACCOUNTS`] (each sorted), largest
/// first, ties by first account.
pub(crate) fn largest_first(groups: impl Iterator<Item = Vec<usize>>) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = groups
        .filter(|m| m.len() >= MIN_CAMPAIGN_ACCOUNTS)
        .map(|mut m| {
            m.sort_unstable();
            m
        })
        .collect();
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    groups
}

/// Accounts in any of `groups`.
pub fn accounts_in(groups: &[(CampaignBasis, Vec<usize>)]) -> HashSet<usize> {
    groups.iter().flat_map(|g| g.1.iter().copied()).collect()
}

/// The campaigns found without content: operator groups, then the
/// template campaigns of the accounts at the link threshold they leave,
/// merged where they share a dominant frame.
pub fn operator_and_template_campaigns(ctx: &CampaignContext) -> Vec<(CampaignBasis, Vec<usize>)> {
    let mut groups: Vec<(CampaignBasis, Vec<usize>)> =
        operator_campaigns(ctx.decisions, ctx.link_threshold)
            .into_iter()
            .map(|m| (CampaignBasis::Operator, m))
            .collect();
    let linking = |a: usize| ctx.decisions[a].score >= ctx.link_threshold;
    let taken = accounts_in(&groups);
    let template = template_campaigns(ctx, |a| !taken.contains(&a) && linking(a));
    groups.extend(template.into_iter().map(|m| (CampaignBasis::Template, m)));
    merge_by_dominant_frame(ctx, groups, linking, false)
}

/// Flagged or reviewed accounts outside `taken`, grouped by the content
/// cluster of most of their sessions (`cluster_of_account`), groups of at
/// least [`MIN_CAMPAIGN_ACCOUNTS`], largest first.
pub fn content_campaigns(
    decisions: &[AccountDecision],
    cluster_of_account: &HashMap<usize, usize>,
) -> Vec<Vec<usize>> {
    let mut by_cluster: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (&account, &cluster) in cluster_of_account {
        if decisions[account].verdict != AccountVerdict::Clear {
            by_cluster.entry(cluster).or_default().push(account);
        }
    }
    largest_first(by_cluster.into_values())
}

/// Everything [`describe_campaigns`] reads besides the groups.
pub struct CampaignContext<'a> {
    /// The window's sessions.
    pub sessions: &'a [&'a Session],
    /// Account index of each session.
    pub account_of_session: &'a [u32],
    /// One decision per account.
    pub decisions: &'a [AccountDecision],
    /// The window's templates.
    pub templates: &'a Templates,
    /// The window's wrapper sentences.
    pub sentences: &'a Templates,
    /// Evidence settings.
    pub params: &'a ValidEvidenceParams,
    /// The score an account must reach to count towards an operator or
    /// template campaign (the account scorer's own `review` threshold):
    /// the saved thresholds may sit far lower, where the corroboration
    /// rule alone keeps benign accounts clear, and a classroom on one
    /// network, or people who happen to share an operator's wording, would
    /// link at them.
    pub link_threshold: f32,
}

impl<'a> CampaignContext<'a> {
    /// The context of a window's accounts and their decisions.
    pub fn new(
        sessions: &'a [&'a Session],
        window: &'a AccountWindow,
        decisions: &'a [AccountDecision],
        params: &'a ValidEvidenceParams,
        link_threshold: f32,
    ) -> Self {
        CampaignContext {
            sessions,
            account_of_session: &window.account_of_session,
            decisions,
            templates: &window.templates,
            sentences: &window.sentences,
            params,
            link_threshold,
        }
    }
}

/// The campaigns of `groups` (operator groups first, then content ones),
/// numbered in that order.
pub fn describe_campaigns(
    ctx: &CampaignContext,
    groups: Vec<(CampaignBasis, Vec<usize>)>,
) -> Vec<Campaign> {
    let mut sessions_of: HashMap<usize, Vec<&Session>> = HashMap::new();
    for (s, &a) in ctx.sessions.iter().zip(ctx.account_of_session) {
        sessions_of.entry(a as usize).or_default().push(s);
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(rank, (basis, members))| {
            let mut c = describe(rank, &members, ctx, &sessions_of);
            c.basis = basis;
            match basis {
                CampaignBasis::Operator => {}
                CampaignBasis::Template => c.links = vec!["shared-template".into()],
                CampaignBasis::Content => c.links = vec!["content-cluster".into()],
            }
            c
        })
        .collect()
}

fn describe(
    rank: usize,
    members: &[usize],
    ctx: &CampaignContext,
    sessions_of: &HashMap<usize, Vec<&Session>>,
) -> Campaign {
    let (decisions, params) = (ctx.decisions, ctx.params);
    let ds: Vec<&AccountDecision> = members.iter().map(|&i| &decisions[i]).collect();
    let member_sessions: Vec<(usize, &Session)> = members
        .iter()
        .flat_map(|&i| sessions_of[&i].iter().map(move |s| (i, *s)))
        .collect();
    let count = |v: AccountVerdict| ds.iter().filter(|d| d.verdict == v).count();
    let first = member_sessions
        .iter()
        .map(|(_, s)| s.start())
        .min()
        .expect("members have sessions");
    let last = member_sessions
        .iter()
        .map(|(_, s)| s.end())
        .max()
        .expect("members have sessions");
    let (shared_ips, shared_prefixes) = shared_infrastructure(&member_sessions, params);
    Campaign {
        campaign_id: format!("op-{}", rank + 1),
        basis: CampaignBasis::Operator,
        accounts: members.len(),
        flagged: count(AccountVerdict::Flag),
        review: count(AccountVerdict::Review),
        sessions: member_sessions.len(),
        first_seen: timestamp::format(&first),
        last_seen: timestamp::format(&last),
        links: ds[0].evidence.group_links.clone(),
        shared_ips,
        shared_prefixes,
        fresh_share: ds.iter().filter(|d| d.evidence.fresh).count() as f64 / ds.len() as f64,
        creation_span_hours: creation_span_hours(&member_sessions),
        busiest_hour: busiest_hour(&member_sessions),
        mean_account_score: ds.iter().map(|d| f64::from(d.score)).sum::<f64>() / ds.len() as f64,
        templates: shared_templates(&member_sessions, &[ctx.templates, ctx.sentences], params),
        account_ids: ds.iter().map(|d| d.account_id.clone()).collect(),
    }
}

/// Values used by at least two distinct accounts.
fn shared_values(pairs: impl Iterator<Item = (String, usize)>) -> usize {
    let mut accounts: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for (v, a) in pairs {
        accounts.entry(v).or_default().insert(a);
    }
    accounts.values().filter(|a| a.len() >= 2).count()
}

fn shared_infrastructure(
    sessions: &[(usize, &Session)],
    params: &ValidEvidenceParams,
) -> (usize, usize) {
    let ips = || {
        sessions.iter().flat_map(|(a, s)| {
            s.events
                .iter()
                .filter_map(move |e| e.ip.clone().map(|ip| (ip, *a)))
        })
    };
    let prefixes = ips().map(|(ip, a)| {
        (
            datasets::coordination::infra::prefix_of(&ip, params.ipv4_prefix, params.ipv6_prefix),
            a,
        )
    });
    (shared_values(ips()), shared_values(prefixes))
}

fn creation_span_hours(sessions: &[(usize, &Session)]) -> Option<f64> {
    let created: Vec<_> = sessions
        .iter()
        .filter_map(|(_, s)| s.account.as_ref().and_then(|a| a.created_at))
        .collect();
    let (min, max) = (created.iter().min()?, created.iter().max()?);
    Some((*max - *min).num_seconds() as f64 / 3600.0)
}

fn busiest_hour(sessions: &[(usize, &Session)]) -> (String, usize) {
    let mut hours: BTreeMap<i64, BTreeSet<usize>> = BTreeMap::new();
    for (a, s) in sessions {
        for e in &s.events {
            hours
                .entry(e.ts.timestamp().div_euclid(3600))
                .or_default()
                .insert(*a);
        }
    }
    let (hour, accounts) = hours
        .iter()
        .max_by(|x, y| x.1.len().cmp(&y.1.len()).then(y.0.cmp(x.0)))
        .map(|(h, a)| (*h, a.len()))
        .unwrap_or_default();
    let start = chrono::DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default();
    (timestamp::format(&start), accounts)
}

/// The templates (frames and wrapper sentences of `joins`) most of the
/// campaign's accounts share, with an example prompt each. Templates that
/// are mostly the campaign's (at least half of their users in the window
/// are its accounts) come first: a public task's boilerplate that many
/// others also repeat says little about the operator.
fn shared_templates(
    sessions: &[(usize, &Session)],
    joins: &[&Templates],
    params: &ValidEvidenceParams,
) -> Vec<SharedTemplate> {
    let mut seen: HashMap<u64, (&Templates, BTreeSet<usize>, String, String)> = HashMap::new();
    for (a, s) in sessions {
        for prompt in sampled_prompts(s, params) {
            for &join in joins {
                for (key, text) in join.keys_of(prompt, params) {
                    if join.is_template(key) {
                        let e = seen
                            .entry(key)
                            .or_insert_with(|| (join, BTreeSet::new(), text, prompt.to_string()));
                        e.1.insert(*a);
                    }
                }
            }
        }
    }
    let mut shared: Vec<SharedTemplate> = seen
        .into_iter()
        .filter(|(_, (_, accounts, _, _))| accounts.len() >= 2)
        .map(|(key, (join, accounts, text, example))| SharedTemplate {
            frame: text,
            accounts: accounts.len(),
            window_accounts: join.accounts_of(key) as usize,
            example: example.chars().take(240).collect(),
        })
        .collect();
    let mostly_others = |t: &SharedTemplate| 2 * t.accounts < t.window_accounts;
    shared.sort_by(|a, b| {
        mostly_others(a)
            .cmp(&mostly_others(b))
            .then(b.accounts.cmp(&a.accounts))
            .then(a.frame.cmp(&b.frame))
    });
    shared.truncate(TOP_TEMPLATES);
    shared
}

/// Writes each campaign's id into the decisions of its accounts.
pub fn assign_campaigns(decisions: &mut [AccountDecision], campaigns: &[Campaign]) {
    let of: HashMap<&str, &str> = campaigns
        .iter()
        .flat_map(|c| {
            c.account_ids
                .iter()
                .map(|a| (a.as_str(), c.campaign_id.as_str()))
        })
        .collect();
    for d in decisions {
        d.campaign_id = of.get(d.account_id.as_str()).map(|c| c.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{accounts::account_rows, template_campaigns::template_campaigns};
    use chrono::{Duration, TimeZone, Utc};
    use datasets::{coordination::EvidenceParams, Account, Event, Label};

    /// `n` accounts created at `created(i)`, each sending `prompt(i)` from
    /// `ip(i)` at `start(i)`.
    fn accounts(
        prefix: &str,
        n: usize,
        ip: impl Fn(usize) -> String,
        prompt: impl Fn(usize) -> String,
        created_days_before: i64,
    ) -> Vec<Session> {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        (0..n)
            .map(|i| {
                let start = t0 + Duration::minutes(11 * i as i64);
                Session {
                    session_id: format!("{prefix}-s{i}"),
                    account_id: format!("{prefix}-{i}"),
                    label: Some(Label::Benign),
                    campaign_id: None,
                    archetype: None,
                    account: Some(Account {
                        created_at: Some(
                            start - Duration::days(created_days_before) - Duration::hours(2),
                        ),
                        ..Account::default()
                    }),
                    events: (0..3)
                        .map(|k| Event {
                            ts: start + Duration::minutes(k),
                            prompt: format!("{} item {k}", prompt(i)),
                            ip: Some(ip(i)),
                            asn: Some(14061),
                            user_agent: Some("python-httpx/0.27.2".into()),
                            model: None,
                            response_tokens: None,
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Operator `opa` (`n` accounts) and operator `opb` (8), each on
    /// residential exits of its own and aged, and `n` people, each group
    /// with its own prompt.
    fn two_operators_and_people(
        n: usize,
        opa: impl Fn(usize) -> String,
        opb: impl Fn(usize) -> String,
        people: impl Fn(usize) -> String,
    ) -> Vec<Session> {
        let mut sessions = accounts(
            "opa",
            n,
            |i| format!("100.{}.{}.7", 64 + i, 3 * i),
            opa,
            300,
        );
        sessions.extend(accounts(
            "opb",
            8,
            |i| format!("101.{}.{}.9", 64 + i, 5 * i),
            opb,
            300,
        ));
        sessions.extend(accounts(
            "people",
            n,
            |i| format!("102.{}.{}.1", 64 + i, 7 * i),
            people,
            300,
        ));
        sessions
    }

    /// The link threshold of the tests: flagged accounts score 0.9, others 0.1.
    const LINK_AT: f32 = 0.5;

    /// Decisions for `rows`: accounts whose id starts with one of
    /// `flagged` are flagged (score 0.9), the rest cleared (score 0.1).
    fn decisions_for(
        rows: &[crate::accounts::AccountRow],
        flagged: &[&str],
    ) -> Vec<AccountDecision> {
        rows.iter()
            .map(|r| {
                let flag = flagged.iter().any(|p| r.evidence.account_id.starts_with(p));
                AccountDecision {
                    account_id: r.evidence.account_id.clone(),
                    score: if flag { 0.9 } else { 0.1 },
                    verdict: if flag {
                        AccountVerdict::Flag
                    } else {
                        AccountVerdict::Clear
                    },
                    reasons: Vec::new(),
                    campaign_id: None,
                    evidence: r.evidence.clone(),
                }
            })
            .collect()
    }

    #[test]
    fn groups_that_one_frame_characterises_merge_and_attach_its_users() {
        // One operator's accounts in two operator groups (two days or
        // exits), a second operator with its own frame, and people.
        let sessions = two_operators_and_people(
            20,
            |i| format!("explain like I'm twelve please: question {}", 7 * i),
            |i| format!("give the full derivation for this one: sum {}", 3 * i),
            |i| format!("hey quick question for you: number {}", 11 * i),
        );
        let refs: Vec<&Session> = sessions.iter().collect();
        let params = EvidenceParams::default().check().unwrap();
        let window = account_rows(&refs, &vec![0.5; refs.len()], 0.9, &params);
        let decisions = decisions_for(&window.rows, &["opa-", "opb-"]);
        let ctx = CampaignContext::new(&refs, &window, &decisions, &params, LINK_AT);
        let groups = || -> Vec<(CampaignBasis, Vec<usize>)> {
            vec![
                (CampaignBasis::Template, (10..20).collect()),
                (CampaignBasis::Operator, (0..10).collect()),
                (CampaignBasis::Template, (20..28).collect()),
            ]
        };
        let linking = |a: usize| decisions[a].score >= LINK_AT;
        let merged = merge_by_dominant_frame(&ctx, groups(), linking, false);
        assert_eq!(
            merged,
            vec![
                (CampaignBasis::Operator, (0..20).collect()),
                (CampaignBasis::Template, (20..28).collect()),
            ]
        );
        // Without its frame characterising them (too few accounts at the
        // link threshold use it), the operator's groups stay apart.
        let few = |a: usize| !(4..20).contains(&a);
        let apart = merge_by_dominant_frame(&ctx, groups(), few, false);
        assert_eq!(apart.len(), 3);
        // Attached: the operator's accounts that no group holds join it.
        let partial = vec![
            (CampaignBasis::Operator, (0..6).collect()),
            (CampaignBasis::Template, (6..12).collect()),
            (CampaignBasis::Template, (20..28).collect()),
        ];
        let attached = merge_by_dominant_frame(&ctx, partial.clone(), linking, true);
        assert_eq!(attached[0], (CampaignBasis::Operator, (0..20).collect()));
        let kept = merge_by_dominant_frame(&ctx, partial, linking, false);
        assert_eq!(kept[0], (CampaignBasis::Operator, (0..12).collect()));
    }

    #[test]
    fn a_shared_wording_groups_flagged_accounts_but_a_shared_task_does_not() {
        // Two operators on residential exits (no shared infrastructure),
        // each with its own wrapper; two accounts of each ask the same
        // public question. People use a wording too, but are cleared.
        let task = |i: usize| {
            if i < 2 {
                "what is the integral of x squared over the unit interval".to_string()
            } else {
                format!("how many apples are left if {i} of {} are eaten", 7 * i)
            }
        };
        let sessions = two_operators_and_people(
            30,
            |i| format!("explain like I'm twelve please: {}", task(i)),
            |i| format!("give the full derivation for this one: {}", task(i)),
            |i| format!("hey quick question for you: {}", task(i + 40)),
        );
        let refs: Vec<&Session> = sessions.iter().collect();
        let params = EvidenceParams::default().check().unwrap();
        let window = account_rows(&refs, &vec![0.5; refs.len()], 0.9, &params);
        let decisions = decisions_for(&window.rows, &["opa-", "opb-"]);
        let ctx = CampaignContext::new(&refs, &window, &decisions, &params, LINK_AT);
        let groups = template_campaigns(&ctx, |a| decisions[a].score >= LINK_AT);
        let ids = |g: &[usize]| -> BTreeSet<&str> {
            g.iter()
                .map(|&a| decisions[a].account_id.split('-').next().unwrap())
                .collect()
        };
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!((groups[0].len(), groups[1].len()), (30, 8));
        assert_eq!(ids(&groups[0]), BTreeSet::from(["opa"]));
        assert_eq!(ids(&groups[1]), BTreeSet::from(["opb"]));
        // Accounts already in an operator campaign are left out.
        let taken: HashSet<usize> = groups[1].iter().copied().collect();
        let left = template_campaigns(&ctx, |a| {
            !taken.contains(&a) && decisions[a].score >= LINK_AT
        });
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn paraphrased_wrappers_link_through_sentence_pairs_but_task_boilerplate_does_not() {
        // One operator draws an opener, a reasoning demand and an answer
        // format for each of its 30 accounts (no two accounts share a frame:
        // each prompt starts and ends with its own task); another uses one
        // wording on 8 accounts. Both ask tasks that end with the same
        // public boilerplate sentence.
        const OPENERS: [&str; 3] = [
            "Act as an expert tutor for this one.",
            "Here is a question from our dataset.",
            "Consider the problem stated below carefully.",
        ];
        const DEMANDS: [&str; 3] = [
            "Think step by step and write out every step.",
            "Explain your full reasoning in detail first.",
            "Break the solution into numbered steps please.",
        ];
        const FORMATS: [&str; 3] = [
            "End with the final answer in a box.",
            "Put the final answer after the words final answer.",
            "Return the answer inside answer tags at the end.",
        ];
        const BOILERPLATE: &str = "Express your answer as a common fraction.";
        let task = |i: usize| format!("Task {i} asks about {} pears and plums.", 3 * i);
        let tail = |i: usize| format!("Then solve for {} apples of {i} trees", 5 * i + 1);
        let mut sessions = accounts(
            "opa",
            30,
            |i| format!("100.{}.{}.7", 64 + i, 3 * i),
            |i| {
                format!(
                    "{} {} {} {} {} {}",
                    task(i),
                    OPENERS[i % 3],
                    DEMANDS[(i / 3) % 3],
                    FORMATS[(i / 9) % 3],
                    if i < 4 { BOILERPLATE } else { "" },
                    tail(i)
                )
            },
            300,
        );
        sessions.extend(accounts(
            "opb",
            8,
            |i| format!("101.{}.{}.9", 64 + i, 5 * i),
            |i| {
                format!(
                    "{} Give the full derivation for this one please. {BOILERPLATE} {}",
                    task(i + 50),
                    tail(i + 50)
                )
            },
            300,
        ));
        let refs: Vec<&Session> = sessions.iter().collect();
        let params = EvidenceParams::default().check().unwrap();
        let window = account_rows(&refs, &vec![0.5; refs.len()], 0.9, &params);
        let decisions = decisions_for(&window.rows, &["opa-", "opb-"]);
        let ctx = CampaignContext::new(&refs, &window, &decisions, &params, LINK_AT);
        let groups = template_campaigns(&ctx, |a| decisions[a].score >= LINK_AT);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![30, 8], "{groups:?}");
        assert!(groups[0]
            .iter()
            .all(|&a| decisions[a].account_id.starts_with("opa-")));
        let campaigns =
            describe_campaigns(&ctx, vec![(CampaignBasis::Template, groups[0].clone())]);
        let shared = &campaigns[0].templates;
        assert!(
            shared.len() == 3 && shared.iter().all(|t| t.frame.starts_with("sentence: ")),
            "{shared:?}"
        );
    }

    #[test]
    fn a_flagged_operator_group_is_one_campaign_and_a_cleared_class_is_none() {
        let mut sessions = accounts(
            "op",
            60,
            |i| format!("198.51.{}.{}", 100 + i % 2, 10 + i % 5),
            |i| {
                format!("Reason with full rigour and show each intermediate step first. task {i} asks about {} apples", 3 * i)
            },
            0,
        );
        sessions.extend(accounts(
            "class",
            40,
            |i| format!("128.32.14.{}", 1 + i % 3),
            |i| {
                format!(
                    "hey can you help me with this homework question number {} please",
                    i % 5
                )
            },
            200,
        ));
        let refs: Vec<&Session> = sessions.iter().collect();
        let scores = vec![0.5; refs.len()];
        let params = EvidenceParams::default().check().unwrap();
        let window = account_rows(&refs, &scores, 0.9, &params);
        let decisions = decisions_for(&window.rows, &["op-"]);
        let groups = operator_campaigns(&decisions, LINK_AT);
        assert_eq!(groups.len(), 1, "{groups:?}");
        let ctx = CampaignContext::new(&refs, &window, &decisions, &params, LINK_AT);
        let campaigns =
            describe_campaigns(&ctx, vec![(CampaignBasis::Operator, groups[0].clone())]);
        let c = &campaigns[0];
        assert_eq!((c.accounts, c.flagged), (60, 60));
        assert!(c.account_ids.iter().all(|a| a.starts_with("op-")));
        assert_eq!(c.fresh_share, 1.0);
        assert!(c.shared_ips >= 10 && c.shared_prefixes == 2, "{c:?}");
        assert!(c.links.iter().any(|l| l == "prefix+template"), "{c:?}");
        // The wrapper as a sentence and as a frame.
        let wrapper = [
            "sentence: reason with full rigour",
            "starts: reason with full rigour",
        ];
        for (shared, text) in c.templates.iter().zip(wrapper) {
            assert!(shared.frame.starts_with(text), "{c:?}");
            assert_eq!(shared.accounts, 60);
        }
        // The class is linked too (campus prefix and homework), but its
        // accounts were cleared, so it is no campaign.
        let class_group = decisions
            .iter()
            .find(|d| d.account_id == "class-0")
            .unwrap();
        assert!(
            class_group.evidence.group_accounts >= 30,
            "{:?}",
            class_group.evidence
        );
    }
}
