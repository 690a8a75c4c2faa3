//! The account scorer's operating points chosen on the verdicts that leave
//! the corroboration rule (`corroboration`), not on the scorer's own.
//!
//! The rule only ever clears an acted account or lowers a flag to review,
//! so at the thresholds chosen on the scorer's scores the validation
//! benign rates after the rule sit at or under their targets, often far
//! under: the thresholds are stricter than the targets ask. This module
//! lowers them as far as the targets allow once the rule has run:
//!
//! 1. `review` first: which accounts end up acted (`flag` or `review`)
//!    depends only on the review threshold (campaigns are formed at the
//!    scorer's own `review` threshold, kept as the model's link threshold,
//!    whatever the scan chooses), scanning down from the scorer's own
//!    threshold while the benign flag-or-review rate after the rule stays
//!    within its target;
//! 2. then `flag`, with that review threshold fixed, the same way for the
//!    flag target.
//!
//! Each scan keeps the highest candidate that reached its best recall:
//! going lower without catching more on validation only adds risk. It
//! stops at the first candidate over the target, so a threshold is never
//! chosen below a point that broke it. Candidates are the validation
//! accounts' scores.

use datasets::{coordination::ValidEvidenceParams, Session};
use models::account_model::{AccountModel, AccountOperatingPoint, AccountVerdict};

use crate::{
    accounts::AccountWindow,
    campaigns::CampaignBasis,
    corroboration::{decide_and_corroborate, linked_campaigns, SessionCorroboration},
};

/// A labeled validation window and what the rule needs to run on it.
pub struct RuleWindow<'a> {
    /// The window's sessions.
    pub sessions: &'a [&'a Session],
    /// Its accounts.
    pub window: &'a AccountWindow,
    /// Evidence settings.
    pub params: &'a ValidEvidenceParams,
    /// The session scores that corroborate on their own.
    pub session_levels: SessionCorroboration,
}

/// Benign and extraction accounts at each verdict after the rule.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RuleOutcome {
    benign: usize,
    benign_flag: usize,
    benign_acted: usize,
    extraction: usize,
    extraction_flag: usize,
    extraction_acted: usize,
}

impl RuleOutcome {
    fn rates(&self, flag: bool) -> (f64, f64) {
        let share = |n: usize, of: usize| n as f64 / of.max(1) as f64;
        if flag {
            (
                share(self.benign_flag, self.benign),
                share(self.extraction_flag, self.extraction),
            )
        } else {
            (
                share(self.benign_acted, self.benign),
                share(self.extraction_acted, self.extraction),
            )
        }
    }
}

/// The verdict counts after the rule at `flag` and `review` thresholds,
/// with the campaigns `linked` at the model's link threshold (which the
/// scan keeps).
fn outcome(
    model: &AccountModel,
    at: &RuleWindow,
    linked: &[(CampaignBasis, Vec<usize>)],
    (flag, review): (f32, f32),
) -> RuleOutcome {
    let mut model = model.clone();
    model.flag.threshold = flag;
    model.review.threshold = review;
    let (decisions, _) = decide_and_corroborate(&model, &at.window.rows, linked, at.session_levels);
    let mut out = RuleOutcome::default();
    for (row, d) in at.window.rows.iter().zip(&decisions) {
        let (flagged, acted) = (
            usize::from(d.verdict == AccountVerdict::Flag),
            usize::from(d.verdict != AccountVerdict::Clear),
        );
        match row.extraction {
            Some(true) => {
                out.extraction += 1;
                out.extraction_flag += flagged;
                out.extraction_acted += acted;
            }
            Some(false) => {
                out.benign += 1;
                out.benign_flag += flagged;
                out.benign_acted += acted;
            }
            None => {}
        }
    }
    out
}

/// Scans `candidates` (descending) below `start` for as long as `fits`
/// holds, and returns the highest threshold that reached the best
/// `recall` of the scan, with its outcome (`start` when nothing below it
/// fits and catches more). Lowering a threshold further without catching
/// more on the labeled window would only add risk on new traffic.
fn highest_best_fitting(
    start: f32,
    candidates: &[f32],
    mut evaluate: impl FnMut(f32) -> RuleOutcome,
    fits: impl Fn(&RuleOutcome) -> bool,
    recall: impl Fn(&RuleOutcome) -> f64,
) -> (f32, RuleOutcome) {
    let mut best = (start, evaluate(start));
    for &t in candidates.iter().filter(|&&t| t < start) {
        let o = evaluate(t);
        if !fits(&o) {
            break;
        }
        if recall(&o) > recall(&best.1) {
            best = (t, o);
        }
    }
    best
}

/// Lowers `model`'s `flag` and `review` thresholds as far as their target
/// benign rates allow after the corroboration rule on the labeled window
/// `at`, and records the rates and recalls after the rule. Template
/// campaigns keep linking at the scorer's own `review` threshold.
pub fn thresholds_after_rule(model: &mut AccountModel, at: &RuleWindow) {
    model.link_threshold = Some(model.link_threshold());
    // Campaigns link at that threshold whatever the scan chooses: found once.
    let linked = linked_campaigns(model, at.sessions, at.window, at.params);
    let mut candidates: Vec<f32> = at
        .window
        .rows
        .iter()
        .filter(|r| r.extraction.is_some())
        .map(|r| model.score(&r.features))
        .collect();
    candidates.sort_by(|a, b| b.total_cmp(a));
    candidates.dedup();
    let (flag_start, review_target) = (model.flag.threshold, model.review.target_fpr);
    let (review, _) = highest_best_fitting(
        model.review.threshold,
        &candidates,
        |r| outcome(model, at, &linked, (flag_start.max(r), r)),
        |o| o.rates(false).0 <= review_target,
        |o| o.rates(false).1,
    );
    let flag_target = model.flag.target_fpr;
    let (flag, o) = highest_best_fitting(
        flag_start.max(review),
        &candidates,
        |f| outcome(model, at, &linked, (f.max(review), review)),
        |o| o.rates(true).0 <= flag_target,
        |o| o.rates(true).1,
    );
    let flag = flag.max(review);
    model.flag = point(flag, flag_target, o.rates(true));
    model.review = point(review, review_target, o.rates(false));
}

fn point(threshold: f32, target_fpr: f64, (fpr, recall): (f64, f64)) -> AccountOperatingPoint {
    AccountOperatingPoint {
        threshold,
        target_fpr,
        validation_fpr: fpr,
        validation_recall: recall,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use datasets::{
        coordination::EvidenceParams,
        {Account, Event, Label},
    };
    use models::account_model::{account_feature_names, ACCOUNT_MODEL_VERSION};

    use super::*;
    use crate::accounts::account_rows;

    /// One session of `requests` requests for account `id`, sent from
    /// `ip`, the account created `age_days` before.
    fn session(id: &str, ip: String, prompt: &str, requests: usize, age_days: i64) -> Session {
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        Session {
            session_id: format!("{id}-s"),
            account_id: id.to_string(),
            label: Some(if id.starts_with("op") {
                Label::Extraction
            } else {
                Label::Benign
            }),
            campaign_id: None,
            archetype: None,
            account: Some(Account {
                created_at: Some(start - Duration::days(age_days) - Duration::hours(1)),
                ..Account::default()
            }),
            events: (0..requests)
                .map(|k| Event {
                    ts: start + Duration::minutes(3 * k as i64),
                    prompt: format!("{prompt} part {k}"),
                    ip: Some(ip.clone()),
                    asn: Some(14061),
                    user_agent: Some("python-httpx/0.27.2".into()),
                    model: None,
                    response_tokens: None,
                })
                .collect(),
        }
    }

    /// 20 fresh operator accounts on one /24 with one wrapper (3 requests
    /// each for the first ten, 8 for the others) and 100 benign aged
    /// accounts, each on its own network with its own words (6 requests
    /// each).
    fn world() -> Vec<Session> {
        let mut sessions: Vec<Session> = (0..20)
            .map(|i| {
                let prompt = format!(
                    "Reason with full rigour and show each intermediate step first. task {i}"
                );
                let requests = if i < 10 { 3 } else { 8 };
                session(
                    &format!("op-{i}"),
                    format!("198.51.100.{i}"),
                    &prompt,
                    requests,
                    0,
                )
            })
            .collect();
        sessions.extend((0..100).map(|i| {
            let prompt = format!("note{i} about garden{i} and recipe{i} for week{i}");
            session(&format!("ben-{i}"), format!("10.{i}.7.1"), &prompt, 6, 900)
        }));
        sessions
    }

    /// A scorer that grows with the account's request count only: the
    /// benign accounts score between the operator's light and heavy ones.
    fn request_count_scorer() -> AccountModel {
        let names = account_feature_names();
        let mut weights = vec![0.0; names.len()];
        weights[names.iter().position(|n| n == "log_requests").unwrap()] = 4.0;
        let unset = AccountOperatingPoint {
            threshold: 1.0,
            target_fpr: 0.0,
            validation_fpr: 0.0,
            validation_recall: 0.0,
        };
        AccountModel {
            version: ACCOUNT_MODEL_VERSION,
            mean: vec![0.0; names.len()],
            scale: vec![1.0; names.len()],
            feature_names: names,
            weights,
            intercept: -6.5,
            flag: AccountOperatingPoint {
                target_fpr: 0.003,
                ..unset.clone()
            },
            review: AccountOperatingPoint {
                target_fpr: 0.02,
                ..unset
            },
            evidence: EvidenceParams::default(),
            link_threshold: None,
        }
    }

    /// The scorer's thresholds after the rule, with every session scored
    /// `benign_session` (benign) or 0 (operator).
    fn thresholds(benign_session: f32) -> (AccountModel, f32) {
        let sessions = world();
        let refs: Vec<&Session> = sessions.iter().collect();
        let scores: Vec<f32> = sessions
            .iter()
            .map(|s| {
                if s.account_id.starts_with("op") {
                    0.0
                } else {
                    benign_session
                }
            })
            .collect();
        let params = EvidenceParams::default().check().unwrap();
        let window = account_rows(&refs, &scores, 0.9, &params);
        let mut model = request_count_scorer();
        let operator_score = model.score(&window.rows[0].features);
        let benign_score = model.score(&window.rows[20].features);
        assert!(
            operator_score < benign_score,
            "{operator_score} {benign_score}"
        );
        // The scorer's own points: above every benign account.
        for p in [&mut model.flag, &mut model.review] {
            p.threshold = benign_score + 0.01;
        }
        let at = RuleWindow {
            sessions: &refs,
            window: &window,
            params: &params,
            session_levels: SessionCorroboration {
                flag: 0.9,
                review: 0.5,
            },
        };
        thresholds_after_rule(&mut model, &at);
        (model, operator_score)
    }

    #[test]
    fn thresholds_drop_to_the_operator_when_the_rule_clears_the_benign_accounts() {
        // Benign sessions score 0: the rule clears every benign account
        // (no campaign, no session at the review level), so both
        // thresholds come down to the operator's accounts, which their
        // operator group corroborates.
        let (model, operator_score) = thresholds(0.0);
        // The heavy half of the operator reaches the scorer's own points,
        // so the group links.
        assert_eq!(model.review.threshold, operator_score);
        assert_eq!(model.flag.threshold, operator_score);
        assert_eq!(model.flag.validation_fpr, 0.0);
        assert_eq!(model.flag.validation_recall, 1.0);
        assert_eq!(model.review.validation_recall, 1.0);
    }

    #[test]
    fn thresholds_stay_where_corroborated_benign_accounts_would_be_flagged() {
        // Benign sessions reach the session threshold: the rule keeps them
        // for review (their scores are under the scorer's own points), so
        // lowering the review threshold would send them all to review, and
        // `flag` never goes under `review`: only the operator's heavy half,
        // over the scorer's own points, is caught.
        let (model, operator_score) = thresholds(0.95);
        assert!(model.review.threshold > operator_score);
        assert_eq!(model.flag.threshold, model.review.threshold);
        assert_eq!(model.flag.validation_recall, 0.5);
        assert_eq!(model.review.validation_fpr, 0.0);
    }

    /// An outcome where lower thresholds catch one more operator account
    /// each, and benign accounts are flagged only in 0.4..0.6.
    fn outcome_at(t: f32) -> RuleOutcome {
        RuleOutcome {
            benign: 100,
            benign_flag: if (0.4..0.6).contains(&t) { 5 } else { 0 },
            extraction: 10,
            extraction_flag: (10.0 * (1.0 - t)) as usize,
            ..RuleOutcome::default()
        }
    }

    #[test]
    fn the_scan_stops_at_the_first_candidate_over_the_target() {
        let candidates = [0.9, 0.7, 0.5, 0.3, 0.1];
        // Fits at 0.7, breaks at 0.5, would fit again at 0.3.
        let fits = |o: &RuleOutcome| o.rates(true).0 <= 0.01;
        let recall = |o: &RuleOutcome| o.rates(true).1;
        let (t, _) = highest_best_fitting(0.8, &candidates, outcome_at, fits, recall);
        assert_eq!(t, 0.7);
        let (t, _) = highest_best_fitting(0.05, &candidates, outcome_at, fits, recall);
        assert_eq!(t, 0.05);
    }

    #[test]
    fn the_scan_keeps_the_highest_threshold_of_the_best_recall() {
        let candidates = [0.9, 0.7, 0.3, 0.1];
        let fits = |o: &RuleOutcome| o.rates(true).0 <= 0.01;
        // Recall stops rising under 0.3: 0.3 is kept, not 0.1.
        let flat_under = |t: f32| outcome_at(t.max(0.3));
        let recall = |o: &RuleOutcome| o.rates(true).1;
        let (t, o) = highest_best_fitting(1.0, &candidates, flat_under, fits, recall);
        assert_eq!((t, o.extraction_flag), (0.3, 7));
    }
}
