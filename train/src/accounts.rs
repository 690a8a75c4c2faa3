//! Account verdicts: one feature vector per account (its session scores and
//! its cross-account evidence), the account scorer fitted on training
//! accounts with its operating points chosen on validation accounts, and
//! the verdict of every account of a scored file.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use datasets::{
    coordination::{self, AccountEvidence, EvidenceParams, ValidEvidenceParams},
    Label, Session,
};
use models::account_model::{
    account_feature_names, account_features, AccountModel, AccountOperatingPoint, AccountVerdict,
    ACCOUNT_MODEL_VERSION, NUM_ACCOUNT_FEATURES,
};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::{
    logistic::fit_extraction_logit,
    metrics::{benign_scores, threshold_for_fpr, Confusion},
};

/// One account of a scored file.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Its evidence.
    pub evidence: AccountEvidence,
    /// Its feature vector.
    pub features: [f32; NUM_ACCOUNT_FEATURES],
    /// Extraction when any of its sessions is labeled so; `None` when no
    /// session is labeled.
    pub extraction: Option<bool>,
    /// Its campaign (extraction) or archetype (benign): the first one of
    /// its sessions that names one; a benign session without an archetype
    /// reports as `benign`, an extraction one without a campaign as
    /// `extraction`.
    pub group: String,
}

/// A labeled session's campaign (extraction) or archetype (benign), with
/// `extraction` / `benign` when it names none; `None` when unlabeled.
pub fn group_of(session: &Session) -> Option<String> {
    match session.label {
        Some(Label::Extraction) => Some(
            session
                .campaign_id
                .clone()
                .unwrap_or_else(|| "extraction".into()),
        ),
        Some(Label::Benign) => Some(session.archetype.clone().unwrap_or_else(|| "benign".into())),
        None => None,
    }
}

/// For each account, the mean over its operator group's accounts of their
/// highest session score (0 without a group).
fn group_mean_max_scores(evidence: &[AccountEvidence], scores: &[Vec<f32>]) -> Vec<f32> {
    let max = |s: &[f32]| s.iter().copied().fold(0.0f32, f32::max);
    let mut sums: std::collections::HashMap<&str, (f32, u32)> = std::collections::HashMap::new();
    for (e, s) in evidence.iter().zip(scores) {
        if let Some(g) = &e.group {
            let entry = sums.entry(g.as_str()).or_default();
            entry.0 += max(s);
            entry.1 += 1;
        }
    }
    evidence
        .iter()
        .map(|e| {
            e.group
                .as_deref()
                .map_or(0.0, |g| sums[g].0 / sums[g].1 as f32)
        })
        .collect()
}

/// The accounts of a scored window and what campaign discovery needs.
pub struct AccountWindow {
    /// One row per account, in order of first appearance.
    pub rows: Vec<AccountRow>,
    /// Account index (into `rows`) of each session.
    pub account_of_session: Vec<u32>,
    /// The window's templates.
    pub templates: coordination::Templates,
    /// The window's wrapper sentences.
    pub sentences: coordination::Templates,
}

/// The account rows of scored sessions (`scores` parallel to `sessions`),
/// in order of first appearance.
pub fn account_rows(
    sessions: &[&Session],
    scores: &[f32],
    session_threshold: f32,
    params: &ValidEvidenceParams,
) -> AccountWindow {
    let evidence = coordination::compute(sessions, None, params);
    let n = evidence.accounts.len();
    let mut account_scores: Vec<Vec<f32>> = vec![Vec::new(); n];
    let mut labels: Vec<Option<bool>> = vec![None; n];
    let mut groups: Vec<Option<String>> = vec![None; n];
    for ((s, &score), &a) in sessions
        .iter()
        .zip(scores)
        .zip(&evidence.account_of_session)
    {
        let a = a as usize;
        account_scores[a].push(score);
        if let Some(l) = s.label {
            let ext = l == Label::Extraction;
            labels[a] = Some(labels[a].unwrap_or(false) || ext);
            if ext || groups[a].is_none() {
                groups[a] = group_of(s).or(groups[a].take());
            }
        }
    }
    let group_means = group_mean_max_scores(&evidence.accounts, &account_scores);
    let rows = evidence
        .accounts
        .into_iter()
        .enumerate()
        .map(|(a, e)| AccountRow {
            features: account_features(&account_scores[a], session_threshold, group_means[a], &e),
            evidence: e,
            extraction: labels[a],
            group: groups[a].take().unwrap_or_else(|| "unlabeled".into()),
        })
        .collect();
    AccountWindow {
        rows,
        account_of_session: evidence.account_of_session,
        templates: evidence.templates,
        sentences: evidence.sentences,
    }
}

/// Settings of the account scorer's fit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountFitConfig {
    /// L2 penalty of the logistic regression.
    pub alpha: f64,
    /// Iteration cap of the solver.
    pub max_iterations: u64,
    /// Benign account false-positive rate of the `flag` verdict.
    pub flag_fpr: f64,
    /// Benign account false-positive rate of `flag` or `review`.
    pub review_fpr: f64,
    /// The evidence settings the rows were computed with (saved in the
    /// model, so verdicts on new windows use the same).
    pub evidence: EvidenceParams,
}

impl Default for AccountFitConfig {
    fn default() -> Self {
        AccountFitConfig {
            alpha: 1.0,
            max_iterations: 300,
            flag_fpr: 0.003,
            review_fpr: 0.02,
            evidence: EvidenceParams::default(),
        }
    }
}

fn labeled(rows: &[AccountRow]) -> impl Iterator<Item = (&AccountRow, bool)> {
    rows.iter().filter_map(|r| r.extraction.map(|e| (r, e)))
}

/// Mean and scale (standard deviation, 1 where it vanishes) per feature.
fn standardisation(rows: &[(&AccountRow, bool)]) -> (Vec<f32>, Vec<f32>) {
    let n = rows.len().max(1) as f64;
    let mut mean = vec![0f64; NUM_ACCOUNT_FEATURES];
    let mut sq = vec![0f64; NUM_ACCOUNT_FEATURES];
    for (r, _) in rows {
        for (i, &x) in r.features.iter().enumerate() {
            mean[i] += f64::from(x) / n;
            sq[i] += f64::from(x) * f64::from(x) / n;
        }
    }
    let scale = mean
        .iter()
        .zip(&sq)
        .map(|(m, s)| {
            let sd = (s - m * m).max(0.0).sqrt();
            if sd > 1e-6 {
                sd as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), scale)
}

fn operating_point(
    scores: &[f32],
    positive: &[bool],
    target_fpr: f64,
) -> Result<AccountOperatingPoint> {
    let lowest = threshold_for_fpr(&benign_scores(scores, positive), target_fpr)
        .ok_or_else(|| anyhow!("the validation file has no benign account"))?;
    let threshold = middle_of_equal_recall(scores, positive, lowest);
    let c = Confusion::at(scores, positive, threshold);
    Ok(AccountOperatingPoint {
        threshold,
        target_fpr,
        validation_fpr: c.false_positive_rate(),
        validation_recall: c.recall(),
    })
}

/// The middle of the gap between `lowest` (the lowest threshold within the
/// target) and the lowest extraction score at or over it (`lowest` itself
/// when none is): every threshold in that gap catches the same validation
/// extraction accounts, and the lowest sits at the edge of the benign
/// scores, where a world that separates cleanly leaves no margin for the
/// benign accounts of the next window. The middle leaves one on both sides.
fn middle_of_equal_recall(scores: &[f32], positive: &[bool], lowest: f32) -> f32 {
    let next_extraction = scores
        .iter()
        .zip(positive)
        .filter(|(&s, &p)| p && s >= lowest)
        .map(|(&s, _)| s)
        .fold(f32::INFINITY, f32::min);
    if next_extraction.is_finite() && lowest.is_finite() {
        lowest + (next_extraction - lowest) / 2.0
    } else {
        lowest
    }
}

/// A logistic regression on labeled rows, before its operating points.
fn regression(rows: &[(&AccountRow, bool)], config: &AccountFitConfig) -> Result<AccountModel> {
    let positives = rows.iter().filter(|r| r.1).count();
    if positives == 0 || positives == rows.len() {
        bail!("the account scorer needs benign and extraction accounts to train on");
    }
    let (mean, scale) = standardisation(rows);
    let x = Array2::from_shape_fn((rows.len(), NUM_ACCOUNT_FEATURES), |(i, j)| {
        f64::from((rows[i].0.features[j] - mean[j]) / scale[j])
    });
    let positive: Vec<bool> = rows.iter().map(|r| r.1).collect();
    let (weights, intercept) = fit_extraction_logit(
        x,
        &positive,
        config.alpha,
        config.max_iterations,
        "account scorer",
    )?;
    Ok(AccountModel {
        version: ACCOUNT_MODEL_VERSION,
        feature_names: account_feature_names(),
        mean,
        scale,
        weights,
        intercept,
        flag: placeholder_point(),
        review: placeholder_point(),
        evidence: config.evidence.clone(),
        link_threshold: None,
    })
}

fn check_targets(config: &AccountFitConfig) -> Result<()> {
    if !(0.0..1.0).contains(&config.flag_fpr) || config.review_fpr < config.flag_fpr {
        bail!("account FPR targets must satisfy 0 <= flag < 1 and review >= flag");
    }
    Ok(())
}

fn set_operating_points(
    model: &mut AccountModel,
    scores: &[f32],
    positive: &[bool],
    config: &AccountFitConfig,
) -> Result<()> {
    model.flag = operating_point(scores, positive, config.flag_fpr)?;
    model.review = operating_point(scores, positive, config.review_fpr)?;
    Ok(())
}

/// Fits the account scorer on `train` accounts and chooses its `flag` and
/// `review` thresholds on `validation` accounts.
pub fn fit_account_model(
    train: &[AccountRow],
    validation: &[AccountRow],
    config: &AccountFitConfig,
) -> Result<AccountModel> {
    check_targets(config)?;
    let rows: Vec<(&AccountRow, bool)> = labeled(train).collect();
    let mut model = regression(&rows, config)?;
    let (scores, positive): (Vec<f32>, Vec<bool>) = labeled(validation)
        .map(|(r, e)| (model.score(&r.features), e))
        .unzip();
    set_operating_points(&mut model, &scores, &positive, config)?;
    Ok(model)
}

/// Folds of the cross-fitted account scorer.
pub const CROSS_FIT_FOLDS: usize = 5;

/// Fits the account scorer on `rows` (accounts the session model never
/// trained on) and chooses its thresholds on out-of-fold scores: each fold
/// is scored by a regression fitted on the other folds, accounts are
/// assigned to folds by a hash of their id, and the saved regression is
/// fitted on every row.
pub fn fit_account_model_cross_fitted(
    rows: &[AccountRow],
    config: &AccountFitConfig,
) -> Result<AccountModel> {
    check_targets(config)?;
    let labeled_rows: Vec<(&AccountRow, bool)> = labeled(rows).collect();
    let fold_of = |r: &AccountRow| {
        xxhash_rust::xxh3::xxh3_64(r.evidence.account_id.as_bytes()) as usize % CROSS_FIT_FOLDS
    };
    let (mut scores, mut positive) = (Vec::new(), Vec::new());
    for fold in 0..CROSS_FIT_FOLDS {
        let (held, kept): (Vec<_>, Vec<_>) =
            labeled_rows.iter().partition(|(r, _)| fold_of(r) == fold);
        let model = regression(&kept, config)?;
        for (r, e) in held {
            scores.push(model.score(&r.features));
            positive.push(e);
        }
    }
    let mut model = regression(&labeled_rows, config)?;
    set_operating_points(&mut model, &scores, &positive, config)?;
    Ok(model)
}

fn placeholder_point() -> AccountOperatingPoint {
    AccountOperatingPoint {
        threshold: f32::INFINITY,
        target_fpr: 0.0,
        validation_fpr: 0.0,
        validation_recall: 0.0,
    }
}

/// The verdict on one account, as written to `account_verdicts.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountDecision {
    /// The account.
    pub account_id: String,
    /// Account score.
    pub score: f32,
    /// `flag`, `review` or `clear`.
    pub verdict: AccountVerdict,
    /// The features that pushed the score up most.
    pub reasons: Vec<String>,
    /// The campaign it belongs to, when its operator group is one.
    pub campaign_id: Option<String>,
    /// The evidence behind it.
    pub evidence: AccountEvidence,
}

/// Applies the account scorer to every row.
pub fn decide(model: &AccountModel, rows: &[AccountRow]) -> Vec<AccountDecision> {
    rows.iter()
        .map(|r| {
            let score = model.score(&r.features);
            AccountDecision {
                account_id: r.evidence.account_id.clone(),
                score,
                verdict: model.verdict(score),
                reasons: model.top_contributions(&r.features, 4),
                campaign_id: None,
                evidence: r.evidence.clone(),
            }
        })
        .collect()
}

/// Accounts of one group and how many reached each verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerdictTally {
    /// Accounts.
    pub accounts: usize,
    /// Flagged.
    pub flag: usize,
    /// Sent to review.
    pub review: usize,
}

impl VerdictTally {
    /// Share flagged.
    pub fn flag_share(&self) -> f64 {
        self.flag as f64 / self.accounts.max(1) as f64
    }

    /// Share flagged or sent to review.
    pub fn flag_or_review_share(&self) -> f64 {
        (self.flag + self.review) as f64 / self.accounts.max(1) as f64
    }
}

/// Verdict counts per campaign and per benign archetype, and totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountReport {
    /// Per campaign.
    pub campaigns: BTreeMap<String, VerdictTally>,
    /// Per benign archetype.
    pub benign: BTreeMap<String, VerdictTally>,
    /// All extraction accounts.
    pub extraction_total: VerdictTally,
    /// All benign accounts.
    pub benign_total: VerdictTally,
    /// Campaigns found.
    pub campaigns_found: usize,
    /// Found campaigns against `campaign_id` over extraction accounts (an
    /// account in no campaign is a cluster of its own).
    pub campaign_quality: Option<crate::cluster::quality::ClusterQuality>,
    /// Session recall at 0.1% benign session FPR when each labeled session
    /// is ranked by its account's final verdict, then its account's score
    /// (what a gateway acting on account verdicts achieves per session);
    /// `None` without both classes.
    pub session_recall_at_0_1pct_fpr_by_account: Option<f64>,
    /// Labeled sessions whose account ends at `flag`: the share of
    /// extraction sessions caught and of benign sessions hit, the operating
    /// point a gateway acting on the verdicts runs at.
    #[serde(default)]
    pub sessions_flagged: Option<SessionShares>,
    /// The same for `flag` or `review`.
    #[serde(default)]
    pub sessions_flagged_or_reviewed: Option<SessionShares>,
    /// Acted accounts the corroboration rule kept or cleared, over every
    /// account of the window (labeled or not).
    #[serde(default)]
    pub corroboration: crate::corroboration::CorroborationTally,
}

/// [`AccountReport::session_recall_at_0_1pct_fpr_by_account`] of labeled
/// sessions (`extraction` per session, `None` when unlabeled) and the
/// account (index into `decisions`) of each. The ranking is the verdict
/// first (`flag`, `review`, `clear`), then the account score: the
/// corroboration rule clears accounts whatever their score, so the score
/// alone is not the order the verdicts act in.
pub fn session_recall_by_account(
    extraction: &[Option<bool>],
    account_of_session: &[u32],
    decisions: &[AccountDecision],
) -> Option<f64> {
    let (scores, positive): (Vec<f32>, Vec<bool>) = extraction
        .iter()
        .zip(account_of_session)
        .filter_map(|(e, &a)| e.map(|e| (verdict_rank(&decisions[a as usize]), e)))
        .unzip();
    crate::metrics::recall_at_fpr(&scores, &positive, 0.001)
}

/// An account's place in the order verdicts act in: its verdict's tier
/// (2 `flag`, 1 `review`, 0 `clear`) plus its score in [0, 1].
fn verdict_rank(decision: &AccountDecision) -> f32 {
    let tier = match decision.verdict {
        AccountVerdict::Flag => 2.0,
        AccountVerdict::Review => 1.0,
        AccountVerdict::Clear => 0.0,
    };
    tier + decision.score.clamp(0.0, 1.0)
}

/// Shares of labeled sessions whose account reached a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SessionShares {
    /// Share of extraction sessions (recall).
    pub extraction: f64,
    /// Share of benign sessions (false-positive rate).
    pub benign: f64,
}

/// [`SessionShares`] of labeled sessions (`extraction` per session, `None`
/// when unlabeled) whose account (index into `decisions`) has a verdict
/// `acted` accepts; `None` without both classes.
pub fn session_shares(
    extraction: &[Option<bool>],
    account_of_session: &[u32],
    decisions: &[AccountDecision],
    acted: impl Fn(AccountVerdict) -> bool,
) -> Option<SessionShares> {
    let mut counts = [[0usize; 2]; 2];
    for (e, &a) in extraction.iter().zip(account_of_session) {
        if let Some(e) = e {
            counts[usize::from(*e)][usize::from(acted(decisions[a as usize].verdict))] += 1;
        }
    }
    let share = |[clear, hit]: [usize; 2]| hit as f64 / (clear + hit) as f64;
    let both = counts.iter().all(|c| c[0] + c[1] > 0);
    both.then(|| SessionShares {
        extraction: share(counts[1]),
        benign: share(counts[0]),
    })
}

/// Tallies the decisions of labeled rows (parallel slices) and compares
/// their campaigns with the true ones.
pub fn account_report(rows: &[AccountRow], decisions: &[AccountDecision]) -> AccountReport {
    let mut report = AccountReport {
        campaigns_found: decisions
            .iter()
            .filter_map(|d| d.campaign_id.as_deref())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        campaign_quality: campaign_quality(rows, decisions),
        ..AccountReport::default()
    };
    for (r, d) in rows.iter().zip(decisions) {
        let Some(ext) = r.extraction else { continue };
        let (groups, total) = if ext {
            (&mut report.campaigns, &mut report.extraction_total)
        } else {
            (&mut report.benign, &mut report.benign_total)
        };
        for t in [groups.entry(r.group.clone()).or_default(), total] {
            t.accounts += 1;
            t.flag += usize::from(d.verdict == AccountVerdict::Flag);
            t.review += usize::from(d.verdict == AccountVerdict::Review);
        }
    }
    report
}

fn campaign_quality(
    rows: &[AccountRow],
    decisions: &[AccountDecision],
) -> Option<crate::cluster::quality::ClusterQuality> {
    let (truth, found): (Vec<&str>, Vec<String>) = rows
        .iter()
        .zip(decisions)
        .filter(|(r, _)| r.extraction == Some(true))
        .map(|(r, d)| {
            let found = d
                .campaign_id
                .clone()
                .unwrap_or_else(|| format!("account:{}", d.account_id));
            (r.group.as_str(), found)
        })
        .unzip();
    (!truth.is_empty()).then(|| crate::cluster::quality::cluster_quality(&truth, &found))
}

/// Feature table file name (one row per account: id, label, group, the
/// account features).
pub const ACCOUNT_FEATURES_FILE: &str = "account_features.csv";

/// The account feature table as CSV: `account_id`, `extraction` (1, 0 or
/// empty when unlabeled), `group` (campaign or archetype), then one column
/// per account feature. For analysts who study the scorer's inputs.
pub fn feature_table(rows: &[AccountRow]) -> String {
    let mut out = String::from("account_id,extraction,group");
    for name in account_feature_names() {
        out.push(',');
        out.push_str(&name);
    }
    out.push('\n');
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for r in rows {
        let label = r
            .extraction
            .map_or(String::new(), |e| u8::from(e).to_string());
        out.push_str(&format!(
            "{},{label},{}",
            quote(&r.evidence.account_id),
            quote(&r.group)
        ));
        for x in r.features {
            out.push_str(&format!(",{x}"));
        }
        out.push('\n');
    }
    out
}

/// Writes [`feature_table`] atomically.
pub fn write_feature_table(path: &std::path::Path, rows: &[AccountRow]) -> Result<()> {
    datasets::writer::write_atomic(path, feature_table(rows).as_bytes())?;
    Ok(())
}

/// Scores a labeled file with `bundle` and builds its account rows.
pub fn rows_of_file(
    bundle: &models::bundle::Bundle,
    path: &std::path::Path,
    options: &crate::score::ScoreOptions,
    params: &ValidEvidenceParams,
) -> Result<Vec<AccountRow>> {
    Ok(window_of_file(bundle, path, options, params)?.1.rows)
}

/// Scores a labeled file with `bundle`: its sessions and their account
/// window.
pub fn window_of_file(
    bundle: &models::bundle::Bundle,
    path: &std::path::Path,
    options: &crate::score::ScoreOptions,
    params: &ValidEvidenceParams,
) -> Result<(Vec<Session>, AccountWindow)> {
    let sessions = crate::data::read_labeled(path)?;
    let bar = crate::progress::bar(sessions.len() as u64, "scoring accounts");
    let mut scored = Vec::with_capacity(sessions.len());
    crate::score::score_sessions(bundle, sessions.into_iter().map(Ok), options, |chunk| {
        bar.inc(chunk.len() as u64);
        scored.extend(chunk.into_iter().map(|s| (s.session, s.score)));
        Ok(())
    })?;
    bar.finish_and_clear();
    let (sessions, scores): (Vec<Session>, Vec<f32>) = scored.into_iter().unzip();
    let refs: Vec<&Session> = sessions.iter().collect();
    let window = account_rows(&refs, &scores, bundle.threshold.threshold, params);
    Ok((sessions, window))
}

/// Builds the account rows of a labeled file from session scores computed
/// elsewhere (`scores`, a scores file as `train score` writes it), such as
/// out-of-fold scores of models that never trained on those sessions.
/// Every session of the file needs a score.
pub fn rows_of_scored_file(
    path: &std::path::Path,
    scores: &std::path::Path,
    session_threshold: f32,
    params: &ValidEvidenceParams,
) -> Result<Vec<AccountRow>> {
    let sessions = crate::data::read_labeled(path)?;
    let by_id = read_session_scores(scores)?;
    let scores_of_sessions = sessions
        .iter()
        .map(|s| {
            by_id.get(&s.session_id).copied().ok_or_else(|| {
                anyhow!(
                    "{}: no score for session {:?} of {}",
                    scores.display(),
                    s.session_id,
                    path.display()
                )
            })
        })
        .collect::<Result<Vec<f32>>>()?;
    let refs: Vec<&Session> = sessions.iter().collect();
    Ok(account_rows(&refs, &scores_of_sessions, session_threshold, params).rows)
}

/// One line of a scores file, as far as account rows need it.
#[derive(Deserialize)]
struct ScoreLine {
    session_id: String,
    score: f32,
}

/// Reads a scores file (JSON lines with `session_id` and `score` in
/// [0, 1]) into a map; a bad line is an error naming the file and line.
pub fn read_session_scores(
    path: &std::path::Path,
) -> Result<std::collections::HashMap<String, f32>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
    let mut out = std::collections::HashMap::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = || format!("{}:{}", path.display(), i + 1);
        let line = line.map_err(|e| anyhow!("{}: {e}", at()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: ScoreLine =
            serde_json::from_str(&line).map_err(|e| anyhow!("{}: {e}", at()))?;
        if !(0.0..=1.0).contains(&parsed.score) {
            bail!("{}: field `score` is {}, not in [0, 1]", at(), parsed.score);
        }
        if out
            .insert(parsed.session_id.clone(), parsed.score)
            .is_some()
        {
            bail!("{}: session {:?} scored twice", at(), parsed.session_id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use datasets::{Account, Event};

    /// An account's one session: operators are fresh, share one template
    /// and a proxy prefix, and score middling; people are aged, on their
    /// own networks, and some score high (hard negatives).
    fn session(i: usize, operator: bool) -> Session {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let start = t0 + Duration::minutes(13 * i as i64);
        let (prompt, ip, created) = if operator {
            (
                format!("Reason carefully and show all intermediate work before answering. task {i} about numbers {i}"),
                format!("198.51.100.{}", i % 9),
                start - Duration::hours(5),
            )
        } else {
            (
                format!("note {i} on my garden: {i} roses, {i} tulips and {i} weeds, what now {i}"),
                format!("{}.{}.3.4", 11 + i % 200, i % 250),
                start - Duration::days(200 + i as i64),
            )
        };
        Session {
            session_id: format!("s{i}"),
            account_id: format!("a{i}"),
            label: Some(if operator {
                Label::Extraction
            } else {
                Label::Benign
            }),
            campaign_id: operator.then(|| "camp".to_string()),
            archetype: None,
            account: Some(Account {
                created_at: Some(created),
                ..Account::default()
            }),
            events: vec![Event {
                ts: start,
                prompt,
                ip: Some(ip),
                asn: Some(14061),
                user_agent: Some("python-httpx/0.27.2".into()),
                model: None,
                response_tokens: None,
            }],
        }
    }

    fn rows(offset: usize) -> Vec<AccountRow> {
        let sessions: Vec<Session> = (0..200).map(|i| session(offset + i, i % 4 == 0)).collect();
        // Session scores that do not separate on their own.
        let scores: Vec<f32> = (0..200).map(|i| ((i * 37) % 100) as f32 / 100.0).collect();
        let refs: Vec<&Session> = sessions.iter().collect();
        let params = datasets::coordination::EvidenceParams::default()
            .check()
            .unwrap();
        account_rows(&refs, &scores, 0.9, &params).rows
    }

    #[test]
    fn evidence_separates_what_scores_alone_cannot() {
        let train = rows(0);
        let validation = rows(1000);
        let model = fit_account_model(&train, &validation, &AccountFitConfig::default()).unwrap();
        assert!(model.review.threshold <= model.flag.threshold);
        assert!(model.flag.validation_fpr <= 0.003, "{:?}", model.flag);
        let decisions = decide(&model, &validation);
        let report = account_report(&validation, &decisions);
        assert_eq!(report.extraction_total.accounts, 50);
        assert_eq!(report.benign_total.accounts, 150);
        assert!(report.extraction_total.flag_share() >= 0.9, "{report:?}");
        assert_eq!(report.benign_total.flag, 0, "{report:?}");
        // Without an archetype, benign accounts report as "benign".
        assert!(report.benign.contains_key("benign"), "{report:?}");
        assert!(decisions[0]
            .reasons
            .iter()
            .any(|r| !r.starts_with("max_session")));
    }

    #[test]
    fn operating_points_sit_in_the_middle_of_their_gap() {
        let scores = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
        let positive = [false, false, false, true, true, true];
        // The lowest threshold with no benign account over it is just
        // above 0.3; the next extraction account is at 0.5.
        let point = operating_point(&scores, &positive, 0.0).unwrap();
        assert!((point.threshold - 0.4).abs() < 1e-6, "{point:?}");
        assert_eq!(point.validation_recall, 1.0);
        assert_eq!(point.validation_fpr, 0.0);
        // No extraction account over the lowest: the lowest stays.
        let point = operating_point(&scores[..3], &positive[..3], 0.0).unwrap();
        assert_eq!(point.threshold, 0.3f32.next_up());
    }

    #[test]
    fn feature_table_has_a_row_per_account_and_quotes_ids() {
        let mut rows = rows(0);
        rows[0].evidence.account_id = "a,\"b".into();
        let table = feature_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), rows.len() + 1);
        assert_eq!(
            lines[0].split(',').count(),
            3 + NUM_ACCOUNT_FEATURES,
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("\"a,\"\"b\",1,\"camp\","),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("\"a1\",0,\"benign\","), "{}", lines[2]);
    }

    #[test]
    fn sessions_ranked_by_their_account_verdict_then_score() {
        let evidence = rows(0)[0].evidence.clone();
        let decisions: Vec<AccountDecision> = [
            (0.9f32, AccountVerdict::Flag),
            (0.1, AccountVerdict::Clear),
            (0.05, AccountVerdict::Clear),
            (0.95, AccountVerdict::Clear),
        ]
        .iter()
        .enumerate()
        .map(|(i, &(score, verdict))| AccountDecision {
            account_id: format!("a{i}"),
            score,
            verdict,
            reasons: Vec::new(),
            campaign_id: None,
            evidence: evidence.clone(),
        })
        .collect();
        // Two extraction sessions of a flagged account, two of a low one,
        // benign sessions of a middling one, one unlabeled session.
        let mut labels = vec![Some(true), Some(true), Some(true), Some(true), None];
        let mut account_of = vec![0, 0, 2, 2, 2];
        labels.extend(vec![Some(false); 50]);
        account_of.extend(vec![1; 50]);
        let recall = session_recall_by_account(&labels, &account_of, &decisions).unwrap();
        assert!((recall - 0.5).abs() < 1e-9, "{recall}");
        // A cleared account scoring above the flagged one ranks below it:
        // its benign sessions cost the flagged account nothing.
        labels.extend(vec![Some(false); 50]);
        account_of.extend(vec![3; 50]);
        let recall = session_recall_by_account(&labels, &account_of, &decisions).unwrap();
        assert!((recall - 0.5).abs() < 1e-9, "{recall}");
        // Cleared, the flagged account ranks under that high scorer.
        let mut cleared = decisions.clone();
        cleared[0].verdict = AccountVerdict::Clear;
        let recall = session_recall_by_account(&labels, &account_of, &cleared).unwrap();
        assert_eq!(recall, 0.0);
        assert_eq!(
            session_recall_by_account(&labels[..4], &account_of[..4], &decisions),
            None
        );
    }

    #[test]
    fn session_shares_count_sessions_by_their_account_verdict() {
        let evidence = rows(0)[0].evidence.clone();
        let verdicts = [
            AccountVerdict::Flag,
            AccountVerdict::Review,
            AccountVerdict::Clear,
        ];
        let decisions: Vec<AccountDecision> = verdicts
            .iter()
            .enumerate()
            .map(|(i, &verdict)| AccountDecision {
                account_id: format!("a{i}"),
                score: 0.5,
                verdict,
                reasons: Vec::new(),
                campaign_id: None,
                evidence: evidence.clone(),
            })
            .collect();
        // Extraction: 3 sessions flagged, 1 reviewed; benign: 1 flagged,
        // 1 reviewed, 8 cleared; one unlabeled session of a flagged account.
        let labels: Vec<Option<bool>> =
            [[Some(true); 4].as_slice(), &[Some(false); 10], &[None]].concat();
        let account_of = [0, 0, 0, 1, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 0];
        let flag = |v| v == AccountVerdict::Flag;
        let s = session_shares(&labels, &account_of, &decisions, flag).unwrap();
        assert_eq!((s.extraction, s.benign), (0.75, 0.1));
        let acted = |v| v != AccountVerdict::Clear;
        let s = session_shares(&labels, &account_of, &decisions, acted).unwrap();
        assert_eq!((s.extraction, s.benign), (1.0, 0.2));
        assert_eq!(
            session_shares(&labels[..4], &account_of[..4], &decisions, flag),
            None
        );
    }

    #[test]
    fn one_class_training_data_is_refused() {
        let mut train = rows(0);
        train.retain(|r| r.extraction == Some(false));
        let err = fit_account_model(&train, &rows(1000), &AccountFitConfig::default()).unwrap_err();
        assert!(err.to_string().contains("benign and extraction"), "{err}");
    }
}
