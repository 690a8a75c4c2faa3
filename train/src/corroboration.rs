//! The rule that an account verdict needs evidence beyond the account's
//! own profile.
//!
//! The account scorer weighs an account's trust signals (age, verification,
//! how light its use is) with its session scores and its cross-account
//! evidence. A light, verified, aged account whose prompts use a common
//! wording can then reach `flag` while every one of its sessions scores
//! near zero and nothing links it to another account: the prior that
//! operators buy such accounts decides alone. A reviewer would not act on
//! that, so neither does the verdict. An account keeps `flag` or `review`
//! only when something corroborates it:
//!
//! - **an operator**: it belongs to an operator-group or shared-template
//!   campaign (`campaigns`), found before this rule from the scorer's
//!   verdicts; or
//! - **its own sessions**: one of them scores at least the bundle's session
//!   threshold (chosen on validation for a 0.1% benign session
//!   false-positive rate), and the account scorer would act on it alone:
//!   its score reaches the scorer's own `review` threshold (the link
//!   threshold; the saved thresholds, chosen after this rule, may sit far
//!   lower, since an operator campaign vouches for its members). Short of
//!   either, a best session at or over the propagation threshold (1%
//!   benign session FPR) corroborates `review` only: a `flag` becomes
//!   `review`, since one session that a hundredth of benign sessions reach,
//!   or a session that the account's own profile does not back, is an
//!   analyst's question, not an action, when no other account is linked to
//!   it.
//!
//! Any other acted account is cleared, and its reasons say why. A content
//! campaign (a DBSCAN cluster of acted accounts' sessions) is not
//! corroboration: it gathers accounts that ask about the same things,
//! which unrelated people do.

use std::collections::HashMap;

use models::account_model::{AccountModel, AccountVerdict};
use serde::{Deserialize, Serialize};

use datasets::{coordination::ValidEvidenceParams, Session};

use crate::{
    accounts::{decide, AccountDecision, AccountRow, AccountWindow},
    campaigns::{operator_and_template_campaigns, CampaignBasis, CampaignContext},
};

/// Position of `max_session_score` in the account feature vector.
const MAX_SESSION_SCORE: usize = 0;

/// The session scores that corroborate an account's verdict on their own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionCorroboration {
    /// A session at or over this keeps the verdict (the bundle's session
    /// threshold).
    pub flag: f32,
    /// A best session at or over this, and under `flag`, keeps `review`
    /// at most (the bundle's propagation threshold).
    pub review: f32,
}

impl SessionCorroboration {
    /// The levels of a bundle's `threshold.json`: its session threshold
    /// flags, its propagation threshold reviews.
    pub fn of(threshold: &models::bundle::Threshold) -> Self {
        SessionCorroboration {
            flag: threshold.threshold,
            review: threshold.propagation_threshold(),
        }
    }
}

/// What the rule did to a window's verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorroborationTally {
    /// Acted accounts kept on their own session scores.
    pub by_session: usize,
    /// Acted accounts kept by an operator or template campaign.
    pub by_campaign: usize,
    /// Flags lowered to review: the best session reached only the review
    /// level (also counted in `by_session`).
    #[serde(default)]
    pub lowered_to_review: usize,
    /// Acted accounts cleared for lack of corroboration.
    pub cleared: usize,
}

/// Applies the rule to `decisions` (one per row of `rows`): `linked` holds
/// the campaigns found so far (content ones corroborate nothing),
/// `sessions` the session scores that corroborate an account outside them
/// whose score reaches `link_threshold`. Reasons of kept accounts gain the
/// corroborating evidence first; cleared accounts get one reason naming
/// what was missing, before the scorer's own.
pub fn corroborate(
    decisions: &mut [AccountDecision],
    rows: &[AccountRow],
    linked: &[(CampaignBasis, Vec<usize>)],
    sessions: SessionCorroboration,
    link_threshold: f32,
) -> CorroborationTally {
    let campaign_of: HashMap<usize, (CampaignBasis, usize)> = linked
        .iter()
        .filter(|(basis, _)| *basis != CampaignBasis::Content)
        .flat_map(|(basis, members)| members.iter().map(|&a| (a, (*basis, members.len()))))
        .collect();
    let mut tally = CorroborationTally::default();
    for (a, (decision, row)) in decisions.iter_mut().zip(rows).enumerate() {
        if decision.verdict == AccountVerdict::Clear {
            continue;
        }
        let max_score = row.features[MAX_SESSION_SCORE];
        let reason = if let Some(&(basis, size)) = campaign_of.get(&a) {
            tally.by_campaign += 1;
            format!(
                "corroborated: in a {} campaign of {size} accounts",
                basis_name(basis)
            )
        } else if max_score >= sessions.flag && decision.score >= link_threshold {
            tally.by_session += 1;
            format!(
                "corroborated: a session scored {max_score:.3} >= {:.3}",
                sessions.flag
            )
        } else if max_score >= sessions.review {
            tally.by_session += 1;
            if decision.verdict == AccountVerdict::Flag {
                tally.lowered_to_review += 1;
                decision.verdict = AccountVerdict::Review;
            }
            let short_of_flag = if max_score >= sessions.flag {
                format!(
                    "the account score {:.3} is under the scorer's own review level \
                     {link_threshold:.3}",
                    decision.score
                )
            } else {
                format!("under the flag level {:.3}", sessions.flag)
            };
            format!(
                "corroborated for review: a session scored {max_score:.3} >= {:.3}, \
                 {short_of_flag}, and no operator or template campaign holds it",
                sessions.review
            )
        } else {
            tally.cleared += 1;
            let reason = format!(
                "uncorroborated {}: no session scored >= {:.3} (best {max_score:.3}) \
                 and no operator or template campaign holds it",
                decision.verdict.as_str(),
                sessions.review
            );
            decision.verdict = AccountVerdict::Clear;
            reason
        };
        decision.reasons.insert(0, reason);
    }
    tally
}

/// What the account scorer and the corroboration rule concluded about a
/// window.
pub struct CorroboratedVerdicts {
    /// One decision per account row, after the rule.
    pub decisions: Vec<AccountDecision>,
    /// The operator and template campaigns the scorer's verdicts formed.
    pub linked: Vec<(CampaignBasis, Vec<usize>)>,
    /// What the rule did.
    pub tally: CorroborationTally,
}

/// The scorer's verdicts on a window's accounts ([`decide`]), the
/// operator and template campaigns they form over its `sessions` (as
/// [`linked_campaigns`], from the same decisions), then [`corroborate`]
/// applied with them.
pub fn link_and_corroborate(
    model: &AccountModel,
    sessions: &[&Session],
    window: &AccountWindow,
    params: &ValidEvidenceParams,
    session_scores: SessionCorroboration,
) -> CorroboratedVerdicts {
    let mut decisions = decide(model, &window.rows);
    let linked = campaigns_of(&decisions, sessions, window, params, model.link_threshold());
    let tally = corroborate(
        &mut decisions,
        &window.rows,
        &linked,
        session_scores,
        model.link_threshold(),
    );
    CorroboratedVerdicts {
        decisions,
        linked,
        tally,
    }
}

/// The operator and template campaigns of a window's accounts: accounts
/// link at the scorer's link threshold (see
/// [`CampaignContext::link_threshold`]), so the campaigns depend on the
/// account scores and that threshold only, not on the `flag` and `review`
/// thresholds.
pub fn linked_campaigns(
    model: &AccountModel,
    sessions: &[&Session],
    window: &AccountWindow,
    params: &ValidEvidenceParams,
) -> Vec<(CampaignBasis, Vec<usize>)> {
    let decisions = decide(model, &window.rows);
    campaigns_of(&decisions, sessions, window, params, model.link_threshold())
}

/// The operator and template campaigns that `decisions` form at
/// `link_threshold`.
fn campaigns_of(
    decisions: &[AccountDecision],
    sessions: &[&Session],
    window: &AccountWindow,
    params: &ValidEvidenceParams,
    link_threshold: f32,
) -> Vec<(CampaignBasis, Vec<usize>)> {
    let ctx = CampaignContext::new(sessions, window, decisions, params, link_threshold);
    operator_and_template_campaigns(&ctx)
}

/// The scorer's verdicts on `rows` ([`decide`]), then [`corroborate`]
/// applied with the campaigns `linked` found.
pub fn decide_and_corroborate(
    model: &AccountModel,
    rows: &[AccountRow],
    linked: &[(CampaignBasis, Vec<usize>)],
    session_scores: SessionCorroboration,
) -> (Vec<AccountDecision>, CorroborationTally) {
    let mut decisions = decide(model, rows);
    let tally = corroborate(
        &mut decisions,
        rows,
        linked,
        session_scores,
        model.link_threshold(),
    );
    (decisions, tally)
}

/// How a campaign basis reads in a reason.
fn basis_name(basis: CampaignBasis) -> &'static str {
    match basis {
        CampaignBasis::Operator => "operator-group",
        CampaignBasis::Template => "shared-template",
        CampaignBasis::Content => "content",
    }
}

#[cfg(test)]
mod tests {
    use datasets::coordination::AccountEvidence;
    use models::account_model::NUM_ACCOUNT_FEATURES;

    use super::*;

    fn account(id: &str, verdict: AccountVerdict, max_score: f32) -> (AccountDecision, AccountRow) {
        let evidence = AccountEvidence {
            account_id: id.to_string(),
            ..Default::default()
        };
        let mut features = [0.0; NUM_ACCOUNT_FEATURES];
        features[MAX_SESSION_SCORE] = max_score;
        let decision = AccountDecision {
            account_id: id.to_string(),
            score: 0.9,
            verdict,
            reasons: vec!["verified (+1.64)".to_string()],
            campaign_id: None,
            evidence: evidence.clone(),
        };
        let row = AccountRow {
            evidence,
            features,
            extraction: None,
            group: "benign".to_string(),
        };
        (decision, row)
    }

    #[test]
    fn a_verdict_needs_a_high_session_or_an_operator_campaign() {
        let (mut decisions, rows): (Vec<_>, Vec<_>) = [
            account("high-session", AccountVerdict::Flag, 0.5),
            account("in-operator", AccountVerdict::Flag, 0.01),
            account("in-template", AccountVerdict::Review, 0.0),
            account("in-content-only", AccountVerdict::Flag, 0.02),
            account("profile-only", AccountVerdict::Review, 0.05),
            account("cleared-already", AccountVerdict::Clear, 0.99),
            account("middling-session", AccountVerdict::Flag, 0.2),
            account("middling-review", AccountVerdict::Review, 0.1),
            account("low-score-high-session", AccountVerdict::Flag, 0.9),
            account("low-score-in-operator", AccountVerdict::Review, 0.0),
        ]
        .into_iter()
        .unzip();
        // The scorer put the last two under its own review level.
        decisions[8].score = 0.3;
        decisions[9].score = 0.3;
        let linked = vec![
            (CampaignBasis::Operator, vec![1, 5, 9]),
            (CampaignBasis::Template, vec![2]),
            (CampaignBasis::Content, vec![3]),
        ];
        let levels = SessionCorroboration {
            flag: 0.4,
            review: 0.1,
        };
        let tally = corroborate(&mut decisions, &rows, &linked, levels, 0.5);
        let verdicts: Vec<_> = decisions.iter().map(|d| d.verdict).collect();
        use AccountVerdict::*;
        assert_eq!(
            verdicts,
            [Flag, Flag, Review, Clear, Clear, Clear, Review, Review, Review, Review]
        );
        assert_eq!(
            tally,
            CorroborationTally {
                by_session: 4,
                by_campaign: 3,
                lowered_to_review: 2,
                cleared: 2
            }
        );
        assert!(decisions[8].reasons[0].contains(
            "a session scored 0.900 >= 0.100, the account score 0.300 is under the scorer's own \
             review level 0.500"
        ));
        assert!(
            decisions[6].reasons[0].starts_with("corroborated for review: a session scored 0.200")
        );
        assert!(decisions[0].reasons[0].contains("session scored 0.500"));
        assert!(decisions[1].reasons[0].contains("operator-group campaign of 3"));
        assert!(decisions[4].reasons[0].starts_with("uncorroborated review"));
        assert_eq!(decisions[4].reasons[1], "verified (+1.64)");
        assert_eq!(decisions[5].reasons, ["verified (+1.64)"]);
    }
}
