//! Shared templates: the wrapper text that repeats across accounts while
//! the task inside changes. A prompt's *frames* are its first and its last
//! `frame_words` words; a frame is a *template* when at least
//! `min_template_accounts` accounts used it around at least two different
//! prompts. Only frames are counted, never pairs of prompts.
//!
//! *Wrapper sentences* are counted the same way: the sentences of at least
//! [`MIN_SENTENCE_WORDS`] words among the first and the last
//! [`EDGE_SENTENCES`] of a prompt. An operator who paraphrases the wrapper
//! for every account (one opener, one chain-of-thought demand and one
//! answer format drawn for each) leaves no common frame, but its accounts
//! still repeat whole sentences around changing tasks.

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

/// Whether a key was seen around different prompts. Texts are not kept:
/// most keys of a window are one task's own words, seen once, and a
/// caller that shows a template reads its text from a prompt again
/// ([`Templates::keys_of`]).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seen {
    /// Hash of the first prompt seen with it.
    first_prompt: u64,
    /// Seen around at least two different prompts.
    varies: bool,
}

/// The frames (or wrapper sentences) of a window and the accounts that
/// used them.
#[derive(Debug, Default)]
pub struct Templates {
    seen: HashMap<u64, Seen>,
    accounts: KeyAccounts,
    min_accounts: u32,
    unit: TemplateUnit,
}

/// What a [`Templates`] join counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TemplateUnit {
    /// The first and the last words of each prompt ([`frames_of`]).
    #[default]
    Frames,
    /// The sentences at each end of a prompt ([`wrapper_sentences_of`]).
    Sentences,
}

/// Fewest words of a sentence that enters the wrapper-sentence join:
/// shorter ones ("### Question", "Options:") are layout, not wording.
pub const MIN_SENTENCE_WORDS: usize = 5;

/// Sentences taken from each end of a prompt: a wrapper surrounds the
/// task, so its sentences sit at the start or the end.
pub const EDGE_SENTENCES: usize = 3;

/// The wrapper-sentence keys and texts of one prompt: its sentences
/// (ended by `.`, `?`, `!` or `:` before white space, or by a line break)
/// of at least [`MIN_SENTENCE_WORDS`] words, the first and the last
/// [`EDGE_SENTENCES`] of them, each once.
pub fn wrapper_sentences_of(prompt: &str) -> Vec<(u64, String)> {
    let sentences: Vec<String> = sentences(prompt)
        .map(words)
        .filter(|w| w.len() >= MIN_SENTENCE_WORDS)
        .map(|w| w.join(" "))
        .collect();
    let n = sentences.len();
    let mut out: Vec<(u64, String)> = Vec::new();
    for (i, text) in sentences.into_iter().enumerate() {
        if i < EDGE_SENTENCES || i + EDGE_SENTENCES >= n {
            let key = key_of(&[b"sentence", text.as_bytes()]);
            if !out.iter().any(|(k, _)| *k == key) {
                out.push((key, format!("sentence: {text}")));
            }
        }
    }
    out
}

/// The sentences of `text`, split after `.`, `?`, `!` or `:` followed by
/// white space, and at line breaks.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some((i, c)) = chars.next() {
            let next_is_space = chars.peek().is_some_and(|(_, n)| n.is_whitespace());
            let ends = c == '\n' || (matches!(c, '.' | '?' | '!' | ':') && next_is_space);
            if ends {
                let piece = &text[start..i + c.len_utf8()];
                start = i + c.len_utf8();
                return Some(piece);
            }
        }
        (start < text.len()).then(|| {
            let piece = &text[start..];
            start = text.len();
            piece
        })
    })
}

/// Characters that end a wrapper's lead-in: a colon or a line break
/// ("explain like I'm 12: {task}", "how do i solve this\n{task}").
const LEAD_IN_ENDS: &[char] = &[':', '\n'];

/// Fewest words of a lead-in that is its own frame.
const MIN_LEAD_IN_WORDS: usize = 3;

/// The frame keys and texts of one prompt (none when the prompt has too
/// few words to hold a frame and a task). The opening frame is the
/// prompt's lead-in when it has one of 3 to `frame_words` words (a short
/// wrapper would otherwise share its frame with the first words of each
/// task), else its first `frame_words` words.
pub fn frames_of(prompt: &str, frame_words: usize) -> Vec<(u64, String)> {
    let w = words(prompt);
    if w.len() < frame_words + 2 {
        return Vec::new();
    }
    let head = lead_in(prompt, frame_words)
        .unwrap_or_else(|| w[..frame_words].to_vec())
        .join(" ");
    let tail = w[w.len() - frame_words..].join(" ");
    vec![
        (
            key_of(&[b"starts", head.as_bytes()]),
            format!("starts: {head}"),
        ),
        (key_of(&[b"ends", tail.as_bytes()]), format!("ends: {tail}")),
    ]
}

/// The words before the prompt's first colon or line break, when there
/// are 3 to `frame_words` of them.
fn lead_in(prompt: &str, frame_words: usize) -> Option<Vec<String>> {
    let end = prompt.find(LEAD_IN_ENDS)?;
    let w = words(&prompt[..end]);
    (MIN_LEAD_IN_WORDS..=frame_words)
        .contains(&w.len())
        .then_some(w)
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
        Self::build_units(sessions, accounts, params, TemplateUnit::Frames)
    }

    /// Joins the `unit`s of every sampled prompt.
    pub fn build_units(
        sessions: &[&Session],
        accounts: &Accounts,
        params: &ValidEvidenceParams,
        unit: TemplateUnit,
    ) -> Self {
        let mut t = Templates {
            min_accounts: params.min_template_accounts,
            unit,
            ..Templates::default()
        };
        let mut keys: Vec<u64> = Vec::new();
        for (s, &a) in sessions.iter().zip(&accounts.of_session) {
            keys.clear();
            for prompt in sampled_prompts(s, params) {
                let prompt_hash = xxh3_64(prompt.as_bytes());
                for (key, _) in t.keys_of(prompt, params) {
                    keys.push(key);
                    let f = t.seen.entry(key).or_insert(Seen {
                        first_prompt: prompt_hash,
                        varies: false,
                    });
                    f.varies |= f.first_prompt != prompt_hash;
                }
            }
            // A session repeats its wrapper: one observation per key.
            keys.sort_unstable();
            keys.dedup();
            for &key in &keys {
                t.accounts.add(key, a);
            }
        }
        t.accounts.finish();
        t
    }

    /// The keys and texts this join counts in `prompt`.
    pub fn keys_of(&self, prompt: &str, params: &ValidEvidenceParams) -> Vec<(u64, String)> {
        match self.unit {
            TemplateUnit::Frames => frames_of(prompt, params.frame_words),
            TemplateUnit::Sentences => wrapper_sentences_of(prompt),
        }
    }

    /// Whether the frame `key` is a template.
    pub fn is_template(&self, key: u64) -> bool {
        self.accounts.accounts(key) >= self.min_accounts
            && self.seen.get(&key).is_some_and(|f| f.varies)
    }

    /// Distinct accounts that used the frame `key`.
    pub fn accounts_of(&self, key: u64) -> u32 {
        self.accounts.accounts(key)
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
                let keys = self.keys_of(prompt, params);
                c.0 += u32::from(keys.iter().any(|(k, _)| self.is_template(*k)));
            }
        }
        for (e, (templated, total)) in out.iter_mut().zip(carried) {
            e.template_share = ratio(templated as usize, total as usize);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening(prompt: &str) -> String {
        frames_of(prompt, 6)[0].1.clone()
    }

    #[test]
    fn a_short_lead_in_is_the_opening_frame_whatever_task_follows() {
        let a = frames_of(
            "explain like I'm 12: Anna has 3 times as many toys as Mandy",
            6,
        );
        let b = frames_of(
            "explain like I'm 12: Out of the 150 teachers on the court",
            6,
        );
        assert_eq!(a[0], b[0]);
        assert_eq!(a[0].1, "starts: explain like i m 12");
        assert_eq!(
            opening("how do i solve this\nA train leaves at noon going west"),
            "starts: how do i solve this"
        );
    }

    #[test]
    fn without_a_short_lead_in_the_opening_frame_is_the_first_words() {
        // No colon or line break.
        assert_eq!(
            opening("can someone explain how to do this? Anna has 3 toys"),
            "starts: can someone explain how to do"
        );
        // A lead-in of two words, and one of seven.
        assert_eq!(
            opening("Question: Anna has 3 times as many toys as Mandy"),
            "starts: question anna has 3 times as"
        );
        assert_eq!(
            opening("Help me understand this problem step by step:\nAnna has 3 toys"),
            "starts: help me understand this problem step"
        );
    }

    fn sentence_texts(prompt: &str) -> Vec<String> {
        wrapper_sentences_of(prompt)
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    #[test]
    fn wrapper_sentences_are_the_long_sentences_at_each_end() {
        let prompt = "### Instruction\nAct as an expert tutor today. Think step by step, \
            then answer: be brief.\n\n### Question\nAnna has 3 toys. Mandy has 2 more toys \
            than Anna. Bob has twice as many toys as Mandy. Carl has one toy less than Bob. \
            How many toys do they have in all? End with the answer in \\boxed{}.";
        assert_eq!(
            sentence_texts(prompt),
            vec![
                "sentence: act as an expert tutor today",
                "sentence: think step by step then answer",
                "sentence: mandy has 2 more toys than anna",
                "sentence: carl has one toy less than bob",
                "sentence: how many toys do they have in all",
                "sentence: end with the answer in boxed",
            ]
        );
        // A sentence repeated in one prompt is one key; a decimal point or
        // a colon inside a word does not end a sentence.
        assert_eq!(
            sentence_texts("Think step by step here please. Pi is 3.14 or so ok. Think step by step here please."),
            vec![
                "sentence: think step by step here please",
                "sentence: pi is 3 14 or so ok",
            ]
        );
        assert!(sentence_texts("").is_empty());
        assert!(sentence_texts("short one. another.").is_empty());
    }

    #[test]
    fn short_prompts_have_no_frames() {
        assert!(frames_of("explain like I'm 12: two words", 6).is_empty());
    }
}
