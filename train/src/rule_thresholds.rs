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
//!    depends only on the review threshold (campaigns are formed from the
//!    acted accounts), so it is the lowest candidate, scanning down from
//!    the scorer's own threshold, whose benign flag-or-review rate after
//!    the rule stays within its target;
//! 2. then `flag`, with that review threshold fixed, the same way for the
//!    flag target.
//!
//! The scan stops at the first candidate over the target, so a threshold
//! is never chosen below a point that broke it. Candidates are the
//! validation accounts' scores.

use datasets::{coordination::ValidEvidenceParams, Session};
use models::account_model::{AccountModel, AccountOperatingPoint, AccountVerdict};

use crate::{
    accounts::{decide, AccountWindow},
    corroboration::{link_and_corroborate, SessionCorroboration},
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

/// The verdict counts after the rule at `flag` and `review` thresholds.
fn outcome(model: &AccountModel, at: &RuleWindow, flag: f32, review: f32) -> RuleOutcome {
    let mut model = model.clone();
    model.flag.threshold = flag;
    model.review.threshold = review;
    let mut decisions = decide(&model, &at.window.rows);
    link_and_corroborate(
        at.sessions,
        at.window,
        &mut decisions,
        at.params,
        at.session_levels,
    );
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

/// The lowest of `candidates` (descending, all at or under `start`) at
/// which `fits` holds for it and every candidate before it, with the
/// outcome there; `start` itself when none does.
fn lowest_fitting(
    start: f32,
    candidates: &[f32],
    mut evaluate: impl FnMut(f32) -> RuleOutcome,
    fits: impl Fn(&RuleOutcome) -> bool,
) -> (f32, RuleOutcome) {
    let mut best = (start, evaluate(start));
    for &t in candidates.iter().filter(|&&t| t < start) {
        let o = evaluate(t);
        if !fits(&o) {
            break;
        }
        best = (t, o);
    }
    best
}

/// Lowers `model`'s `flag` and `review` thresholds as far as their target
/// benign rates allow after the corroboration rule on the labeled window
/// `at`, and records the rates and recalls after the rule.
pub fn thresholds_after_rule(model: &mut AccountModel, at: &RuleWindow) {
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
    let (review, _) = lowest_fitting(
        model.review.threshold,
        &candidates,
        |r| outcome(model, at, flag_start.max(r), r),
        |o| o.rates(false).0 <= review_target,
    );
    let flag_target = model.flag.target_fpr;
    let (flag, o) = lowest_fitting(
        flag_start.max(review),
        &candidates,
        |f| outcome(model, at, f.max(review), review),
        |o| o.rates(true).0 <= flag_target,
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
