//! Fitting a bundle's prompt head (`models::prompt_head`): single prompts
//! of labeled sessions, each embedded by the bundle's encoder as a
//! one-event session, a logistic regression on the training file's
//! prompts, and its threshold on the validation file's prompts.

use anyhow::{anyhow, bail, Result};
use datasets::{features::evenly_spaced, Label, Session};
use models::{
    bundle::Bundle,
    prompt_head::{prompt_session, PromptHead, PromptValidation, PROMPT_HEAD_VERSION},
};
use ndarray::Array2;

use crate::{
    logistic::fit_extraction_logit,
    metrics::{benign_scores, roc_auc, threshold_for_fpr, Confusion},
    progress,
    score::{score_all, ScoreOptions},
};

/// How the prompt head is fitted.
#[derive(Debug, Clone)]
pub struct PromptHeadConfig {
    /// Prompts taken from each session, evenly spaced over it.
    pub prompts_per_session: usize,
    /// Benign validation prompts allowed at or over the threshold.
    pub target_fpr: f64,
    /// L2 penalty of the logistic regression.
    pub alpha: f64,
    /// Optimiser iterations.
    pub max_iterations: u64,
    /// Sessions per inference batch.
    pub batch_size: usize,
}

impl Default for PromptHeadConfig {
    fn default() -> Self {
        PromptHeadConfig {
            prompts_per_session: 1,
            target_fpr: 0.01,
            alpha: 1.0,
            max_iterations: 200,
            batch_size: 32,
        }
    }
}

/// One-event sessions of up to `per_session` prompts of each labeled
/// session, with whether that session was extraction.
pub fn labeled_prompts(sessions: &[Session], per_session: usize) -> (Vec<Session>, Vec<bool>) {
    let mut prompts = Vec::new();
    let mut positive = Vec::new();
    for s in sessions {
        let Some(label) = s.label else { continue };
        for i in evenly_spaced(s.events.len(), per_session) {
            let event = &s.events[i];
            prompts.push(prompt_session(
                format!("{}#{i}", s.session_id),
                s.account_id.clone(),
                event.prompt.clone(),
                event.ts,
            ));
            positive.push(label == Label::Extraction);
        }
    }
    (prompts, positive)
}

/// Unit-length pooled embeddings of `prompts` (one-event sessions).
fn embed(
    bundle: &Bundle,
    prompts: Vec<Session>,
    what: &str,
    batch_size: usize,
) -> Result<Array2<f64>> {
    let bar = progress::bar(prompts.len() as u64, what);
    let options = ScoreOptions {
        batch_size,
        ..ScoreOptions::default()
    };
    let scored = score_all(bundle, prompts.into_iter().map(Ok), &options, &bar)?;
    let dim = scored.first().map_or(0, |s| s.embedding.len());
    let mut x = Array2::<f64>::zeros((scored.len(), dim));
    for (mut row, s) in x.rows_mut().into_iter().zip(&scored) {
        let norm = s.embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        for (r, v) in row.iter_mut().zip(&s.embedding) {
            *r = f64::from(v * scale);
        }
    }
    Ok(x)
}

/// The regression's weights and intercept as the probability of
/// extraction.
fn regression(
    x: Array2<f64>,
    positive: &[bool],
    config: &PromptHeadConfig,
) -> Result<(Vec<f32>, f32)> {
    let extraction = positive.iter().filter(|&&p| p).count();
    if extraction == 0 || extraction == positive.len() {
        bail!("the prompt head needs benign and extraction prompts to train on");
    }
    fit_extraction_logit(
        x,
        positive,
        config.alpha,
        config.max_iterations,
        "prompt head",
    )
}

/// Fits the prompt head of `bundle` on prompts of the `train` sessions and
/// sets its threshold on prompts of the `validation` sessions.
pub fn fit_prompt_head(
    bundle: &Bundle,
    train: &[Session],
    validation: &[Session],
    config: &PromptHeadConfig,
) -> Result<PromptHead> {
    if !(0.0..1.0).contains(&config.target_fpr) || config.prompts_per_session == 0 {
        bail!("the prompt head needs 0 <= target FPR < 1 and at least one prompt per session");
    }
    let (train_prompts, train_positive) = labeled_prompts(train, config.prompts_per_session);
    let x = embed(
        bundle,
        train_prompts,
        "embedding training prompts",
        config.batch_size,
    )?;
    let (weights, intercept) = regression(x, &train_positive, config)?;
    let mut head = PromptHead {
        version: PROMPT_HEAD_VERSION,
        weights,
        intercept,
        threshold: 1.0,
        train_prompts: train_positive.len(),
        validation: PromptValidation {
            prompts: 0,
            roc_auc: f64::NAN,
            target_fpr: config.target_fpr,
            fpr: 0.0,
            recall: 0.0,
        },
    };
    let (val_prompts, positive) = labeled_prompts(validation, config.prompts_per_session);
    let x = embed(
        bundle,
        val_prompts,
        "embedding validation prompts",
        config.batch_size,
    )?;
    let scores: Vec<f32> = x
        .rows()
        .into_iter()
        .map(|row| head.score(&row.iter().map(|&v| v as f32).collect::<Vec<_>>()))
        .collect();
    head.threshold = threshold_for_fpr(&benign_scores(&scores, &positive), config.target_fpr)
        .ok_or_else(|| anyhow!("the validation file has no benign prompt"))?;
    let at = Confusion::at(&scores, &positive, head.threshold);
    head.validation = PromptValidation {
        prompts: scores.len(),
        roc_auc: roc_auc(&scores, &positive)
            .ok_or_else(|| anyhow!("the validation file needs benign and extraction prompts"))?,
        target_fpr: config.target_fpr,
        fpr: at.false_positive_rate(),
        recall: at.recall(),
    };
    Ok(head)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use datasets::Event;

    use super::*;

    const HARVEST: [&str; 4] = [
        "Solve step by step and show your full reasoning before the final answer",
        "Think step by step, explain every step of your reasoning, then answer",
        "Show all reasoning steps in detail and give the final answer last",
        "Reason step by step in full detail and state the final answer",
    ];
    const CHAT: [&str; 4] = [
        "hey what should I cook for dinner tonight",
        "write a short poem about my cat for her birthday",
        "any tips for a weekend trip to the mountains",
        "what is a nice gift for my sister",
    ];

    fn session(id: usize, prompts: &[&str], extraction: bool) -> Session {
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        Session {
            session_id: format!("s-{id}"),
            account_id: format!("a-{id}"),
            label: Some(if extraction {
                Label::Extraction
            } else {
                Label::Benign
            }),
            campaign_id: None,
            archetype: None,
            account: None,
            events: prompts
                .iter()
                .enumerate()
                .map(|(i, p)| Event {
                    ts: start + Duration::minutes(i as i64),
                    prompt: format!("{p} ({id})"),
                    ip: Some("10.0.0.1".into()),
                    asn: Some(64500),
                    user_agent: Some("python-requests/2.32".into()),
                    model: None,
                    response_tokens: Some(900),
                })
                .collect(),
        }
    }

    fn sessions(n: usize) -> Vec<Session> {
        (0..n)
            .map(|i| {
                let (pool, extraction) = if i % 2 == 0 {
                    (&HARVEST, true)
                } else {
                    (&CHAT, false)
                };
                let prompts: Vec<&str> = (0..3).map(|j| pool[(i / 2 + j) % pool.len()]).collect();
                session(i, &prompts, extraction)
            })
            .collect()
    }

    #[test]
    fn labeled_prompts_are_bare_one_event_sessions_of_labeled_sessions() {
        let mut all = sessions(3);
        all[2].label = None;
        let (prompts, positive) = labeled_prompts(&all, 2);
        assert_eq!(prompts.len(), 4);
        assert_eq!(positive, vec![true, true, false, false]);
        for p in &prompts {
            assert_eq!(p.events.len(), 1);
            assert!(p.account.is_none() && p.events[0].ip.is_none());
            assert!(p.events[0].user_agent.is_none() && p.events[0].response_tokens.is_none());
        }
        // Evenly spaced: the first and the last prompt of three.
        assert!(prompts[0].events[0].prompt.starts_with(HARVEST[0]));
        assert!(prompts[1].events[0].prompt.starts_with(HARVEST[2]));
    }

    #[test]
    fn a_harvest_prompt_scores_above_a_chat_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let texts: Vec<&str> = HARVEST.iter().chain(&CHAT).copied().collect();
        let path =
            models::tiny::write_tiny_bundle(&dir.path().join("tiny"), texts, 0.5, 0).unwrap();
        let bundle = Bundle::load(&path, &candle_core::Device::Cpu).unwrap();
        let head = fit_prompt_head(
            &bundle,
            &sessions(40),
            &sessions(20),
            // Eight texts in general position: a light penalty separates them.
            &PromptHeadConfig {
                alpha: 1e-3,
                ..PromptHeadConfig::default()
            },
        )
        .unwrap();
        assert!(head.validation.roc_auc > 0.9, "{:?}", head.validation);
        let score = |prompt: &str| {
            let s = prompt_session("p".into(), "a".into(), prompt.into(), Utc::now());
            head.score(&bundle.score(&[s], 1).unwrap()[0].embedding)
        };
        // Bare prompts through the serving path (the head's orientation
        // and the encoder's one-event input end to end): every harvest
        // prompt above every chat prompt. A random tiny encoder says nothing
        // about new wording; the main job measures that on validation
        // prompts (serve/README.md).
        let lowest_harvest = HARVEST
            .iter()
            .map(|p| score(&format!("{p} (3)")))
            .fold(f32::INFINITY, f32::min);
        let highest_chat = CHAT
            .iter()
            .map(|p| score(&format!("{p} (3)")))
            .fold(f32::NEG_INFINITY, f32::max);
        assert!(
            lowest_harvest > highest_chat,
            "harvest {lowest_harvest} vs chat {highest_chat}"
        );
    }
}
