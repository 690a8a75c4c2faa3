//! Cross-account evidence over a scoring window: shared infrastructure,
//! shared templates, synchronized activity, account-creation waves and
//! first use after a model release, per account. `docs/coordination.md` documents every value and the rule for
//! missing fields. Everything is computed with hash joins and sorted
//! windows; no two accounts are ever compared directly.

pub mod activity;
pub mod groups;
pub mod infra;
pub mod keys;
pub mod releases;
pub mod synchrony;
pub mod templates;
pub mod waves;

use serde::{Deserialize, Serialize};

use crate::schema::Session;
use activity::Accounts;
pub use templates::{TemplateUnit, Templates};

/// Settings of the evidence computation (see [`EvidenceParams::check`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceParams {
    /// IPv4 prefix length that groups addresses (default 24).
    pub ipv4_prefix: u8,
    /// IPv6 prefix length (default 48).
    pub ipv6_prefix: u8,
    /// An account is fresh when created at most this many days before its
    /// first request in the window (default 30).
    pub fresh_days: f64,
    /// Words in a template frame (default 6).
    pub frame_words: usize,
    /// Accounts that must share a frame for it to be a template (default 3).
    pub min_template_accounts: u32,
    /// Prompts per session that enter the template and synchrony joins,
    /// evenly spaced (default 16).
    pub max_prompts_per_session: usize,
    /// Width of a synchrony time bucket, in minutes (default 60).
    pub sync_bucket_minutes: i64,
    /// Width of a creation wave, in hours (default 24).
    pub wave_hours: i64,
    /// A model first seen at least this many hours after the window's
    /// first request was released inside the window (default 24).
    #[serde(default = "default_release_gap_hours")]
    pub release_gap_hours: i64,
}

fn default_release_gap_hours() -> i64 {
    24
}

impl Default for EvidenceParams {
    fn default() -> Self {
        EvidenceParams {
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            fresh_days: 30.0,
            frame_words: 6,
            min_template_accounts: 3,
            max_prompts_per_session: 16,
            sync_bucket_minutes: 60,
            wave_hours: 24,
            release_gap_hours: default_release_gap_hours(),
        }
    }
}

/// Why evidence settings are unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvidenceParamsError {
    /// A value is out of its range.
    #[error("evidence parameter `{name}` = {value}: {expected}")]
    OutOfRange {
        /// The parameter.
        name: &'static str,
        /// Its value, as text.
        value: String,
        /// The range it must lie in.
        expected: &'static str,
    },
}

/// Settings that passed [`EvidenceParams::check`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidEvidenceParams(EvidenceParams);

impl std::ops::Deref for ValidEvidenceParams {
    type Target = EvidenceParams;
    fn deref(&self) -> &EvidenceParams {
        &self.0
    }
}

fn require(
    ok: bool,
    name: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> Result<(), EvidenceParamsError> {
    if ok {
        Ok(())
    } else {
        Err(EvidenceParamsError::OutOfRange {
            name,
            value: value.to_string(),
            expected,
        })
    }
}

impl EvidenceParams {
    /// Checks every range.
    pub fn check(self) -> Result<ValidEvidenceParams, EvidenceParamsError> {
        let p = &self;
        require(
            (8..=32).contains(&p.ipv4_prefix),
            "ipv4_prefix",
            p.ipv4_prefix,
            "8..=32",
        )?;
        require(
            (16..=128).contains(&p.ipv6_prefix),
            "ipv6_prefix",
            p.ipv6_prefix,
            "16..=128",
        )?;
        require(p.fresh_days > 0.0, "fresh_days", p.fresh_days, "> 0")?;
        require(p.frame_words >= 2, "frame_words", p.frame_words, ">= 2")?;
        require(
            p.min_template_accounts >= 2,
            "min_template_accounts",
            p.min_template_accounts,
            ">= 2",
        )?;
        require(
            p.max_prompts_per_session >= 1,
            "max_prompts_per_session",
            p.max_prompts_per_session,
            ">= 1",
        )?;
        require(
            p.sync_bucket_minutes >= 1,
            "sync_bucket_minutes",
            p.sync_bucket_minutes,
            ">= 1",
        )?;
        require(p.wave_hours >= 1, "wave_hours", p.wave_hours, ">= 1")?;
        require(
            p.release_gap_hours >= 1,
            "release_gap_hours",
            p.release_gap_hours,
            ">= 1",
        )?;
        Ok(ValidEvidenceParams(self))
    }
}

/// Everything the window shows about one account's ties to others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountEvidence {
    /// The account.
    pub account_id: String,
    /// Its sessions in the window.
    pub sessions: u32,
    /// Its requests in the window.
    pub requests: u32,
    /// Created at most `fresh_days` before its first request.
    pub fresh: bool,
    /// Identity verification (unknown: none).
    pub verified: Option<bool>,
    /// Account tier (unknown: none).
    pub tier: Option<String>,
    /// Distinct ASNs its requests came from.
    pub distinct_asns: u32,
    /// Share of its requests from hosting ASNs.
    pub hosting_share: f32,
    /// Hours from creation to its first request (unknown creation: none).
    pub hours_to_first_use: Option<f32>,
    /// Most other accounts seen on one of its IP addresses.
    pub ip_peers: u32,
    /// Most other accounts seen in one of its IP prefixes.
    pub prefix_peers: u32,
    /// Share of its requests from prefixes other accounts also used.
    pub shared_prefix_share: f32,
    /// Hosting-ASN share of the requests on those shared prefixes.
    pub shared_prefix_hosting_share: f32,
    /// Most other fresh accounts sharing one of its ASN + user-agent
    /// fingerprints (0 unless it is fresh).
    pub fingerprint_peers: u32,
    /// Most other accounts sharing one of its templates.
    pub template_peers: u32,
    /// Share of its sampled prompts that carry a template.
    pub template_share: f32,
    /// Most other accounts matching one of its timed actions.
    pub sync_peers: u32,
    /// Share of its timed actions another account matched.
    pub sync_share: f32,
    /// Other accounts created within half a wave of it.
    pub wave_peers: u32,
    /// Its creation wave against a steady creation rate.
    pub wave_ratio: f32,
    /// Hours from the latest model release in the window before its first
    /// request to that request (none without such a release or without a
    /// `model` on its requests). Reported, not scored: see
    /// docs/coordination.md.
    pub hours_after_release: Option<f32>,
    /// Its operator group (named by the group's first account), when a
    /// combined key linked it to others.
    pub group: Option<String>,
    /// Accounts in its group (0 without one).
    pub group_accounts: u32,
    /// The kinds of combined key that linked its group.
    pub group_links: Vec<String>,
    /// Share of fresh accounts in its group.
    pub group_fresh_share: f32,
    /// Mean hosting share of its group's accounts.
    pub group_hosting_share: f32,
    /// Mean ASN changes per request of its group's accounts.
    pub group_asn_changes_per_request: f32,
    /// Fields none of its requests (or sessions) carried: `ip`, `asn`,
    /// `user_agent`, `created_at`. Evidence that needs them is zero.
    pub missing: Vec<String>,
}

/// Names of [`AccountEvidence::values`], in order.
pub const EVIDENCE_NAMES: [&str; 24] = [
    "fresh",
    "log_hours_to_first_use",
    "created_at_known",
    "verified",
    "verified_known",
    "log_distinct_asns",
    "asn_changes_per_request",
    "hosting_share",
    "log_ip_peers",
    "log_prefix_peers",
    "shared_prefix_share",
    "shared_prefix_hosting_share",
    "log_fingerprint_peers",
    "log_template_peers",
    "template_share",
    "log_sync_peers",
    "sync_share",
    "log_wave_peers",
    "log_wave_ratio",
    "log_group_accounts",
    "group_link_kinds",
    "group_fresh_share",
    "group_hosting_share",
    "group_asn_changes_per_request",
];

impl AccountEvidence {
    /// New ASNs per request after the first: 0 for one request or one
    /// network, 1 when every request came from another network (a proxy
    /// pool), whatever the account's volume.
    pub fn asn_changes_per_request(&self) -> f32 {
        self.distinct_asns.saturating_sub(1) as f32 / self.requests.saturating_sub(1).max(1) as f32
    }

    /// The evidence as numbers, in [`EVIDENCE_NAMES`] order (counts as
    /// `ln(1 + x)`; an unknown creation time or verification gives 0 for
    /// its values and 0 in its `_known` indicator).
    pub fn values(&self) -> [f32; EVIDENCE_NAMES.len()] {
        let log = |x: u32| (x as f32).ln_1p();
        let flag = |b: bool| f32::from(u8::from(b));
        [
            flag(self.fresh),
            self.hours_to_first_use.map_or(0.0, f32::ln_1p),
            flag(self.hours_to_first_use.is_some()),
            flag(self.verified == Some(true)),
            flag(self.verified.is_some()),
            log(self.distinct_asns),
            self.asn_changes_per_request(),
            self.hosting_share,
            log(self.ip_peers),
            log(self.prefix_peers),
            self.shared_prefix_share,
            self.shared_prefix_hosting_share,
            log(self.fingerprint_peers),
            log(self.template_peers),
            self.template_share,
            log(self.sync_peers),
            self.sync_share,
            log(self.wave_peers),
            self.wave_ratio.ln_1p(),
            log(self.group_accounts),
            self.group_links.len() as f32,
            self.group_fresh_share,
            self.group_hosting_share,
            self.group_asn_changes_per_request,
        ]
    }
}

/// Fills the group fields of every account from its operator group.
fn add_group_evidence(
    evidence: &mut [AccountEvidence],
    groups: &[Option<(u32, groups::LinkKinds)>],
) {
    #[derive(Default)]
    struct Sums {
        n: u32,
        fresh: u32,
        hosting: f32,
        asns: f32,
    }
    let mut sums: std::collections::HashMap<u32, Sums> = std::collections::HashMap::new();
    for (e, g) in evidence.iter().zip(groups) {
        if let Some((root, _)) = g {
            let s = sums.entry(*root).or_default();
            s.n += 1;
            s.fresh += u32::from(e.fresh);
            s.hosting += e.hosting_share;
            s.asns += e.asn_changes_per_request();
        }
    }
    let names: Vec<String> = evidence.iter().map(|e| e.account_id.clone()).collect();
    for (e, g) in evidence.iter_mut().zip(groups) {
        let Some((root, kinds)) = g else { continue };
        let s = &sums[root];
        let n = s.n as f32;
        e.group = Some(names[*root as usize].clone());
        e.group_accounts = s.n;
        e.group_links = groups::kind_names(*kinds)
            .into_iter()
            .map(String::from)
            .collect();
        e.group_fresh_share = s.fresh as f32 / n;
        e.group_hosting_share = s.hosting / n;
        e.group_asn_changes_per_request = s.asns / n;
    }
}

/// The evidence of a window: per account, in order of first appearance,
/// plus the account of each input session and the window's templates.
#[derive(Debug)]
pub struct Evidence {
    /// Per account.
    pub accounts: Vec<AccountEvidence>,
    /// Account index (into `accounts`) of each input session.
    pub account_of_session: Vec<u32>,
    /// The window's frames and templates.
    pub templates: Templates,
    /// The window's wrapper sentences (campaign discovery links
    /// paraphrased wrappers with them).
    pub sentences: Templates,
}

/// Computes the evidence of every account in `sessions` (events sorted by
/// time, as the reader leaves them). `text_groups`, when given, holds one
/// optional text group per session (e.g. its embedding cluster), a
/// synchrony target that connects paraphrased templates.
pub fn compute(
    sessions: &[&Session],
    text_groups: Option<&[Option<u64>]>,
    params: &ValidEvidenceParams,
) -> Evidence {
    let accounts = Accounts::build(sessions);
    let infra = infra::infra_evidence(sessions, &accounts, params);
    let templates = Templates::build(sessions, &accounts, params);
    let sentences = Templates::build_units(sessions, &accounts, params, TemplateUnit::Sentences);
    let template = templates.evidence(sessions, &accounts, params);
    let sync = synchrony::sync_evidence(sessions, &accounts, text_groups, &templates, params);
    let waves = waves::wave_evidence(&accounts, params.wave_hours);
    let groups = groups::operator_groups(sessions, &accounts, text_groups, &templates, params);
    let released = releases::releases(sessions, &accounts, params.release_gap_hours);
    let after_release = releases::hours_after_release(&accounts, &released);
    let mut evidence: Vec<AccountEvidence> = accounts
        .activity
        .iter()
        .enumerate()
        .map(|(i, a)| AccountEvidence {
            account_id: a.account_id.clone(),
            sessions: a.sessions,
            requests: a.requests,
            fresh: a.is_fresh(params.fresh_days),
            verified: a.verified,
            tier: a.tier.clone(),
            distinct_asns: a.asns.len() as u32,
            hosting_share: crate::features::ratio(a.hosting_requests as usize, a.requests as usize),
            hours_to_first_use: a.hours_to_first_use().map(|h| h as f32),
            ip_peers: infra[i].ip_peers,
            prefix_peers: infra[i].prefix_peers,
            shared_prefix_share: infra[i].shared_prefix_share,
            shared_prefix_hosting_share: infra[i].shared_prefix_hosting_share,
            fingerprint_peers: infra[i].fingerprint_peers,
            template_peers: template[i].template_peers,
            template_share: template[i].template_share,
            sync_peers: sync[i].sync_peers,
            sync_share: sync[i].sync_share,
            wave_peers: waves[i].wave_peers,
            wave_ratio: waves[i].wave_ratio,
            hours_after_release: after_release[i],
            group: None,
            group_accounts: 0,
            group_links: Vec::new(),
            group_fresh_share: 0.0,
            group_hosting_share: 0.0,
            group_asn_changes_per_request: 0.0,
            missing: a.missing_fields().into_iter().map(String::from).collect(),
        })
        .collect();
    add_group_evidence(&mut evidence, &groups);
    Evidence {
        accounts: evidence,
        account_of_session: accounts.of_session,
        templates,
        sentences,
    }
}
