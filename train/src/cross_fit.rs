//! Out-of-fold session scores of the training file.
//!
//! The session model has seen every training session, so its scores on
//! them are near 0 or 1; an account scorer fitted on those learns to trust
//! session scores more than new traffic warrants. Cross-fitting gives each
//! training session the score of a model fitted without it: the file is
//! cut into folds of whole operators (a campaign, or the accounts behind
//! one network prefix, or one account), a model is fitted on all folds but
//! one, and that model scores the fold it never saw.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use datasets::{coordination::infra::prefix_of, writer::JsonlWriter, Label, Session};
use serde::Serialize;

use crate::{
    fit::{fit_sharing, FitConfig},
    frozen::FrozenLayers,
};

/// Settings of cross-fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossFitConfig {
    /// Folds (at least 2).
    pub folds: usize,
    /// Epochs of each fold's model.
    pub epochs: usize,
}

/// Prefix lengths of the network groups that keep a shared egress in one
/// fold (the coordination evidence's defaults).
const IPV4_PREFIX: u8 = 24;
const IPV6_PREFIX: u8 = 48;

/// The operator a session's account is kept with: its campaign when the
/// session is labeled extraction, else the network prefix of its first
/// request with an IP, else the account itself.
fn operator_key(session: &Session) -> String {
    if session.label == Some(Label::Extraction) {
        if let Some(c) = &session.campaign_id {
            return format!("campaign:{c}");
        }
    }
    match session.events.iter().find_map(|e| e.ip.as_deref()) {
        Some(ip) => format!("net:{}", prefix_of(ip, IPV4_PREFIX, IPV6_PREFIX)),
        None => format!("account:{}", session.account_id),
    }
}

/// The fold of each session. An account goes with the operator key of its
/// first session; operators are dealt to folds largest first, each to the
/// fold with the fewest sessions of its class so far (extraction and benign
/// are balanced apart), so every fold holds both classes when the file
/// has at least `folds` operators of each.
pub fn assign_folds(sessions: &[Session], folds: usize) -> Vec<usize> {
    // (extraction, operator key) of each account, from its first session.
    let mut key_of_account: HashMap<&str, (bool, String)> = HashMap::new();
    let mut groups: HashMap<(bool, String), usize> = HashMap::new();
    let keys: Vec<(bool, String)> = sessions
        .iter()
        .map(|s| {
            key_of_account
                .entry(s.account_id.as_str())
                .or_insert_with(|| (s.label == Some(Label::Extraction), operator_key(s)))
                .clone()
        })
        .collect();
    for k in &keys {
        *groups.entry(k.clone()).or_default() += 1;
    }
    let mut ordered: Vec<((bool, String), usize)> = groups.into_iter().collect();
    ordered.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut load = [vec![0usize; folds], vec![0usize; folds]];
    let mut fold_of_group: HashMap<(bool, String), usize> = HashMap::new();
    for (group, size) in ordered {
        let class_load = &mut load[usize::from(group.0)];
        let fold = (0..folds).min_by_key(|&f| (class_load[f], f)).unwrap_or(0);
        class_load[fold] += size;
        fold_of_group.insert(group, fold);
    }
    keys.iter().map(|k| fold_of_group[k]).collect()
}

/// One line of the out-of-fold scores file (the fields of `train score`'s
/// output that `train accounts --train-scores` reads).
#[derive(Serialize)]
struct FoldScore<'a> {
    session_id: &'a str,
    score: f32,
    fold: usize,
}

/// Fits one model per fold on the other folds of `fit_config.train` (its
/// other settings as given, `cross.epochs` epochs, working files under
/// `work_dir`), with the fold as its validation file, so the fold's
/// scores come out of the fit itself; writes every training session's
/// out-of-fold score to `out` (JSON lines with `session_id`, `score`,
/// `fold`) and returns the path written. With more than one epoch, the
/// fold also chooses its model's best epoch (mildly optimistic). Fold
/// models start from the base model even when `fit_config` warm-starts:
/// the bundle it starts from may have been trained on the held fold.
/// The folds take the frozen layers' output of their sessions from
/// `frozen` (filled by the first fold, or by a fit before).
pub fn out_of_fold_scores(
    fit_config: &FitConfig,
    cross: CrossFitConfig,
    device: &Device,
    work_dir: &Path,
    out: &Path,
    frozen: &mut FrozenLayers,
) -> Result<PathBuf> {
    if cross.folds < 2 || cross.epochs == 0 {
        bail!("cross-fitting needs at least 2 folds and 1 epoch");
    }
    let sessions = crate::data::read_labeled(&fit_config.train)?;
    let fold_of = assign_folds(&sessions, cross.folds);
    let mut scores = vec![f32::NAN; sessions.len()];
    for fold in 0..cross.folds {
        let dir = work_dir.join(format!("fold-{fold}"));
        let (held, kept): (Vec<usize>, Vec<usize>) =
            (0..sessions.len()).partition(|&i| fold_of[i] == fold);
        tracing::info!(fold, held = held.len(), kept = kept.len(), "cross-fit fold");
        let config = FitConfig {
            train: write_sessions(&dir.join("train.jsonl"), &sessions, &kept)?,
            validation: write_sessions(&dir.join("held.jsonl"), &sessions, &held)?,
            out: dir.join("bundle"),
            run_dir: dir.join("run"),
            epochs: cross.epochs,
            resume: false,
            // A warm-start bundle may have trained on the held fold.
            init_from: None,
            refit_normalization: false,
            ..fit_config.clone()
        };
        let outcome = fit_sharing(&config, device, frozen)?;
        if outcome.validation_scores.len() != held.len() {
            bail!(
                "fold {fold}: {} scores for {} sessions",
                outcome.validation_scores.len(),
                held.len()
            );
        }
        for (&i, &score) in held.iter().zip(&outcome.validation_scores) {
            scores[i] = score;
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let mut writer = JsonlWriter::create(out)?;
    for ((s, &score), &fold) in sessions.iter().zip(&scores).zip(&fold_of) {
        writer.write(&FoldScore {
            session_id: &s.session_id,
            score,
            fold,
        })?;
    }
    Ok(writer.finish()?)
}

/// Writes the sessions at `indices` to `path`.
fn write_sessions(path: &Path, sessions: &[Session], indices: &[usize]) -> Result<PathBuf> {
    let mut writer = JsonlWriter::create(path)?;
    for &i in indices {
        writer.write(&sessions[i])?;
    }
    Ok(writer.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(account: &str, campaign: Option<&str>, ip: Option<&str>) -> Session {
        use chrono::{TimeZone, Utc};
        Session {
            session_id: format!("s-{account}"),
            account_id: account.into(),
            label: Some(if campaign.is_some() {
                Label::Extraction
            } else {
                Label::Benign
            }),
            campaign_id: campaign.map(String::from),
            archetype: None,
            account: None,
            events: vec![datasets::Event {
                ts: Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
                prompt: "a prompt".into(),
                ip: ip.map(String::from),
                asn: None,
                user_agent: None,
                model: None,
                response_tokens: None,
            }],
        }
    }

    #[test]
    fn operators_stay_in_one_fold_and_folds_hold_both_classes() {
        let mut sessions = Vec::new();
        for i in 0..12 {
            let campaign = format!("camp-{}", i % 4);
            sessions.push(session(
                &format!("op-{i}"),
                Some(&campaign),
                Some("9.9.9.9"),
            ));
        }
        for i in 0..10 {
            // Five campuses of two classmates each, and lone users.
            let ip = format!("10.0.{}.{}", i / 2, i);
            sessions.push(session(&format!("student-{i}"), None, Some(&ip)));
            sessions.push(session(&format!("lone-{i}"), None, None));
        }
        let folds = assign_folds(&sessions, 2);
        let fold_of = |account: &str| {
            let i = sessions
                .iter()
                .position(|s| s.account_id == account)
                .unwrap();
            folds[i]
        };
        for c in 0..4 {
            let members: Vec<usize> = (0..12)
                .filter(|i| i % 4 == c)
                .map(|i| fold_of(&format!("op-{i}")))
                .collect();
            assert!(members.windows(2).all(|w| w[0] == w[1]), "{members:?}");
        }
        for campus in 0..5 {
            assert_eq!(
                fold_of(&format!("student-{}", 2 * campus)),
                fold_of(&format!("student-{}", 2 * campus + 1))
            );
        }
        for fold in 0..2 {
            let of_fold = |extraction: bool| {
                sessions
                    .iter()
                    .zip(&folds)
                    .filter(|(s, &f)| {
                        f == fold && (s.label == Some(Label::Extraction)) == extraction
                    })
                    .count()
            };
            assert_eq!(of_fold(true), 6, "fold {fold}");
            assert_eq!(of_fold(false), 10, "fold {fold}");
        }
    }
}
