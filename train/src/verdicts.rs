//! Account verdicts and campaigns of one scored window, with the files
//! they go to: `account_verdicts.jsonl`, `campaigns.json` and the
//! `campaign_map.json` that `serve` loads.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
};

use anyhow::{Context, Result};
use datasets::{features::evenly_spaced, schema::timestamp, Session};
use models::{
    account_model::{AccountModel, AccountVerdict},
    bundle::Bundle,
    campaign_map::{CampaignMap, MappedAccount, CAMPAIGN_MAP_FILE, CAMPAIGN_MAP_VERSION},
};

use crate::{
    accounts::{
        account_report, account_rows, session_recall_by_account, session_shares,
        write_feature_table, AccountDecision, AccountReport, AccountRow, ACCOUNT_FEATURES_FILE,
    },
    campaigns::{
        accounts_in, assign_campaigns, content_campaigns, describe_campaigns, Campaign,
        CampaignBasis, CampaignContext,
    },
    cluster::{cluster_subset, ValidClusterParams},
    corroboration::{link_and_corroborate, CorroboratedVerdicts, SessionCorroboration},
    score::ScoredSession,
    template_campaigns::{merge_by_dominant_frame, template_campaigns},
};

/// Account verdicts file name.
pub const ACCOUNT_VERDICTS_FILE: &str = "account_verdicts.jsonl";
/// Campaign table file name.
pub const CAMPAIGNS_FILE: &str = "campaigns.json";

/// What the account scorer concluded about a window.
pub struct WindowVerdicts {
    /// One decision per account, in order of first appearance.
    pub decisions: Vec<AccountDecision>,
    /// Tallies per campaign and per benign archetype (labeled files).
    pub report: AccountReport,
    /// The campaigns found.
    pub campaigns: Vec<Campaign>,
    /// The campaign map for `serve`.
    pub map: CampaignMap,
    /// The account rows the verdicts were reached on.
    pub rows: Vec<AccountRow>,
    /// Session starts of the first campaigns' accounts, for the report.
    pub timelines: Vec<CampaignTimeline>,
}

/// Campaigns drawn on the report's timeline (in campaign order).
pub const TIMELINE_CAMPAIGNS: usize = 8;
/// Accounts drawn per campaign, evenly spaced over its accounts.
pub const TIMELINE_ACCOUNTS: usize = 40;

/// One campaign on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignTimeline {
    /// The campaign.
    pub campaign_id: String,
    /// For each account drawn, the hours since the window's start at which
    /// its sessions began.
    pub accounts: Vec<Vec<f64>>,
}

/// The timelines of the first [`TIMELINE_CAMPAIGNS`] campaigns.
fn timelines(sessions: &[&Session], campaigns: &[Campaign]) -> Vec<CampaignTimeline> {
    let Some(window_start) = sessions.iter().map(|s| s.start()).min() else {
        return Vec::new();
    };
    let mut starts: HashMap<&str, Vec<f64>> = HashMap::new();
    for s in sessions {
        let hours = (s.start() - window_start).num_seconds() as f64 / 3600.0;
        starts.entry(s.account_id.as_str()).or_default().push(hours);
    }
    campaigns
        .iter()
        .take(TIMELINE_CAMPAIGNS)
        .map(|c| CampaignTimeline {
            campaign_id: c.campaign_id.clone(),
            accounts: evenly_spaced(c.account_ids.len(), TIMELINE_ACCOUNTS)
                .map(|i| {
                    starts
                        .get(c.account_ids[i].as_str())
                        .cloned()
                        .unwrap_or_default()
                })
                .collect(),
        })
        .collect()
}

/// The content cluster of most sessions of each flagged or reviewed
/// account outside the operator campaigns: one DBSCAN over those sessions
/// only.
fn content_clusters(
    scored: &[ScoredSession],
    account_of_session: &[u32],
    decisions: &[AccountDecision],
    taken: &HashSet<usize>,
    cluster: &ValidClusterParams,
) -> Result<HashMap<usize, usize>> {
    let picked: Vec<usize> = (0..scored.len())
        .filter(|&i| {
            let a = account_of_session[i] as usize;
            !taken.contains(&a) && decisions[a].verdict != AccountVerdict::Clear
        })
        .collect();
    let subset: Vec<&ScoredSession> = picked.iter().map(|&i| &scored[i]).collect();
    let labels = cluster_subset(&subset, cluster)?;
    let mut votes: HashMap<usize, HashMap<usize, usize>> = HashMap::new();
    for (&i, label) in picked.iter().zip(labels) {
        if let Some(c) = label {
            *votes
                .entry(account_of_session[i] as usize)
                .or_default()
                .entry(c)
                .or_default() += 1;
        }
    }
    Ok(votes
        .into_iter()
        .filter_map(|(a, v)| {
            v.into_iter()
                .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(&x.0)))
                .map(|(c, _)| (a, c))
        })
        .collect())
}

/// `linked` (the operator and template campaigns) followed by the
/// template campaigns of the acted accounts they leave (at any score: the
/// corroboration rule has run, so these group accounts without changing a
/// verdict), merged where a frame characterises them (with the acted
/// accounts carrying that frame), then the content clusters of the acted
/// accounts left.
fn with_content_campaigns(
    ctx: &CampaignContext,
    mut linked: Vec<(CampaignBasis, Vec<usize>)>,
    scored: &[ScoredSession],
    cluster: &ValidClusterParams,
) -> Result<Vec<(CampaignBasis, Vec<usize>)>> {
    let taken = accounts_in(&linked);
    let acted = |a: usize| ctx.decisions[a].verdict != AccountVerdict::Clear;
    let templates = template_campaigns(ctx, |a| !taken.contains(&a) && acted(a));
    linked.extend(templates.into_iter().map(|m| (CampaignBasis::Template, m)));
    let mut linked = merge_by_dominant_frame(ctx, linked, acted, true);
    let clusters = content_clusters(
        scored,
        ctx.account_of_session,
        ctx.decisions,
        &accounts_in(&linked),
        cluster,
    )?;
    let content = content_campaigns(ctx.decisions, &clusters);
    linked.extend(content.into_iter().map(|m| (CampaignBasis::Content, m)));
    Ok(linked)
}

/// Judges the accounts of `scored` sessions (embeddings kept), when the
/// bundle has an account scorer: the scorer's verdicts, the operator and
/// template campaigns they form, the corroboration rule
/// (`corroboration`), then content campaigns of the acted accounts left
/// (`cluster` sets that clustering).
pub fn judge_window(
    bundle: &Bundle,
    scored: &[ScoredSession],
    cluster: &ValidClusterParams,
) -> Result<Option<WindowVerdicts>> {
    let Some(model) = AccountModel::load(&bundle.dir)? else {
        return Ok(None);
    };
    let params = model.evidence.clone().check()?;
    let sessions: Vec<&Session> = scored.iter().map(|s| &s.session).collect();
    let scores: Vec<f32> = scored.iter().map(|s| s.score).collect();
    let window = account_rows(&sessions, &scores, bundle.threshold.threshold, &params);
    let link_threshold = model.link_threshold();
    let CorroboratedVerdicts {
        mut decisions,
        linked,
        tally,
    } = link_and_corroborate(
        &model,
        &sessions,
        &window,
        &params,
        SessionCorroboration::of(&bundle.threshold),
    );
    tracing::info!(?tally, "account verdicts corroborated");
    let ctx = CampaignContext::new(&sessions, &window, &decisions, &params, link_threshold);
    let groups = with_content_campaigns(&ctx, linked, scored, cluster)?;
    let campaigns = describe_campaigns(&ctx, groups);
    assign_campaigns(&mut decisions, &campaigns);
    let mut report = account_report(&window.rows, &decisions);
    let labels: Vec<Option<bool>> = sessions
        .iter()
        .map(|s| s.label.map(|l| l == datasets::Label::Extraction))
        .collect();
    report.corroboration = tally;
    report.session_recall_at_0_1pct_fpr_by_account =
        session_recall_by_account(&labels, &window.account_of_session, &decisions);
    report.sessions_flagged =
        session_shares(&labels, &window.account_of_session, &decisions, |v| {
            v == AccountVerdict::Flag
        });
    report.sessions_flagged_or_reviewed =
        session_shares(&labels, &window.account_of_session, &decisions, |v| {
            v != AccountVerdict::Clear
        });
    let map = campaign_map(&sessions, &decisions);
    Ok(Some(WindowVerdicts {
        decisions,
        report,
        map,
        rows: window.rows,
        timelines: timelines(&sessions, &campaigns),
        campaigns,
    }))
}

/// The map of every account that reached `flag` or `review`.
fn campaign_map(sessions: &[&Session], decisions: &[AccountDecision]) -> CampaignMap {
    let start = sessions.iter().map(|s| s.start()).min();
    let end = sessions.iter().map(|s| s.end()).max();
    let format = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| timestamp::format(&t)).unwrap_or_default()
    };
    CampaignMap {
        version: CAMPAIGN_MAP_VERSION,
        window_start: format(start),
        window_end: format(end),
        created_at: timestamp::format(&chrono::Utc::now()),
        accounts: decisions
            .iter()
            .filter(|d| d.verdict != AccountVerdict::Clear)
            .map(|d| {
                let entry = MappedAccount {
                    verdict: d.verdict,
                    score: d.score,
                    campaign_id: d.campaign_id.clone(),
                    reasons: d.reasons.clone(),
                };
                (d.account_id.clone(), entry)
            })
            .collect(),
    }
}

impl WindowVerdicts {
    /// Writes the verdicts, the campaign table and the map into `dir`.
    pub fn write_files(&self, dir: &Path) -> Result<()> {
        let mut out = datasets::JsonlWriter::create(&dir.join(ACCOUNT_VERDICTS_FILE))?;
        for d in &self.decisions {
            out.write(d)?;
        }
        out.finish()?;
        let path = dir.join(CAMPAIGNS_FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(&self.campaigns)?)
            .with_context(|| format!("writing {}", path.display()))?;
        self.map.save(&dir.join(CAMPAIGN_MAP_FILE))?;
        write_feature_table(&dir.join(ACCOUNT_FEATURES_FILE), &self.rows)?;
        Ok(())
    }
}
