//! Shared templates: the wrapper text that repeats across accounts while
//! the task inside changes. A prompt's *frames* are its first and its last
//! `frame_words` words; a frame is a *template* when at least
//! `min_template_accounts` accounts used it around at least two different
//! prompts. Only frames are counted, never pairs of prompts.

use std::collections::HashMap;

use xxhash_rust::xxh3::xxh3_64;

use super::{
    activity::Accounts,
    keys::{key_of, KeyAccounts},
    ValidEvidenceParams,
};
use crate::{
    features::{evenly_spaced, ratio},
    schema::Session,
    text_similarity::words,
};

/// Template evidence of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TemplateEvidence {
    /// Most other accounts sharing one of its templates.
    pub template_peers: u32,
    /// Share of its (sampled) prompts that carry a template.
    pub template_share: f32,
}

/// A frame seen in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// `"starts: ..."` or `"ends: ..."` and the frame's words.
    pub text: String,
    /// Hash of the first prompt seen with it.
    first_prompt: u64,
    /// Seen around at least two different prompts.
    varies: bool,
}

/// The frames of a window and the accounts that used them.
#[derive(Debug, Default)]
pub struct Templates {
    frames: HashMap<u64, Frame>,
    accounts: KeyAccounts,
    min_accounts: u32,
}

/// The frame keys and texts of one prompt (none when the prompt has too
/// few words to hold a frame and a task).
pub fn frames_of(prompt: &str, frame_words: usize) -> Vec<(u64, String)> {
    let w = words(prompt);
    if w.len() < frame_words + 2 {
        return Vec::new();
    }
    let head = w[..frame_words].join(" ");
    let tail = w[w.len() - frame_words..].join(" ");
    vec![
        (
            key_of(&[b"starts", head.as_bytes()]),
            format!("starts: {head}"),
        ),
        (key_of(&[b"ends", tail.as_bytes()]), format!("ends: {tail}")),
    ]
}

/// The prompts of a session that enter the template join.
pub fn sampled_prompts<'s>(
    session: &'s Session,
    params: &ValidEvidenceParams,
) -> impl Iterator<Item = &'s str> {
    evenly_spaced(session.events.len(), params.max_prompts_per_session)
        .map(|i| session.events[i].prompt.as_str())
}

impl Templates {
    /// Joins the frames of every sampled prompt.
    pub fn build(sessions: &[&Session], accounts: &Accounts, params: &ValidEvidenceParams) -> Self {
        let mut t = Templates {
            min_accounts: params.min_template_accounts,
            ..Templates::default()
        };
        for (s, &a) in sessions.iter().zip(&accounts.of_session) {
            for prompt in sampled_prompts(s, params) {
                let prompt_hash = xxh3_64(prompt.as_bytes());
                for (key, text) in frames_of(prompt, params.frame_words) {
                    t.accounts.add(key, a);
                    let f = t.frames.entry(key).or_insert(Frame {
                        text,
                        first_prompt: prompt_hash,
                        varies: false,
                    });
                    f.varies |= f.first_prompt != prompt_hash;
                }
            }
        }
        t.accounts.finish();
        t
    }

    /// Whether the frame `key` is a template.
    pub fn is_template(&self, key: u64) -> bool {
        self.accounts.accounts(key) >= self.min_accounts
            && self.frames.get(&key).is_some_and(|f| f.varies)
    }

    /// Distinct accounts that used the frame `key`.
    pub fn accounts_of(&self, key: u64) -> u32 {
        self.accounts.accounts(key)
    }

    /// The text of frame `key`.
    pub fn text(&self, key: u64) -> Option<&str> {
        self.frames.get(&key).map(|f| f.text.as_str())
    }

    /// Template evidence of every account (index order of `accounts`).
    pub fn evidence(
        &self,
        sessions: &[&Session],
        accounts: &Accounts,
        params: &ValidEvidenceParams,
    ) -> Vec<TemplateEvidence> {
        let mut out = vec![TemplateEvidence::default(); accounts.len()];
        for &(key, a) in self.accounts.pairs() {
            if self.is_template(key) {
                let e = &mut out[a as usize];
                e.template_peers = e.template_peers.max(self.accounts_of(key) - 1);
            }
        }
        let mut carried = vec![(0u32, 0u32); accounts.len()];
        for (s, &a) in sessions.iter().zip(&accounts.of_session) {
            for prompt in sampled_prompts(s, params) {
                let c = &mut carried[a as usize];
                c.1 += 1;
                let frames = frames_of(prompt, params.frame_words);
                c.0 += u32::from(frames.iter().any(|(k, _)| self.is_template(*k)));
            }
        }
        for (e, (templated, total)) in out.iter_mut().zip(carried) {
            e.template_share = ratio(templated as usize, total as usize);
        }
        out
    }
}
