//! Turns a session into the encoder's input: its prompts joined with
//! `[SEP]` under a token budget.
//!
//! Truncation policy (documented in `docs/model.md`):
//! 1. Keep at most `max_prompts` prompts, evenly spaced through the session
//!    (first and last always included), so a long session is represented by
//!    a sample of its prompts rather than only its first one.
//! 2. Each kept prompt is cut to `8 * max_tokens` characters before
//!    tokenisation (bounded cost for very long text; readers never reject
//!    long prompts).
//! 3. The token budget left after `[CLS]` and one `[SEP]` per prompt is
//!    shared by water-filling: short prompts keep all their tokens and the
//!    rest is split evenly among longer ones, each keeping its beginning.
//!
//! Sequence: `[CLS] p1 [SEP] p2 [SEP] ... pk [SEP]`; batches are padded on
//! the right to their longest sequence.

use candle_core::{Device, Tensor};
use datasets::{features::evenly_spaced, Session};
use tokenizers::Tokenizer;

use crate::error::{ModelError, Result};

/// Session-to-token-ids encoder.
#[derive(Clone)]
pub struct SessionTokenizer {
    tokenizer: Tokenizer,
    max_tokens: usize,
    max_prompts: usize,
    cls: u32,
    sep: u32,
    pad: u32,
}

impl std::fmt::Debug for SessionTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokenizer")
            .field("max_tokens", &self.max_tokens)
            .field("max_prompts", &self.max_prompts)
            .finish()
    }
}

fn tokenizer_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

impl SessionTokenizer {
    /// Wraps a BERT tokenizer (it must know `[CLS]`, `[SEP]` and `[PAD]`).
    /// `max_tokens` must leave room for at least one token per prompt.
    ///
    /// Any padding or truncation the tokenizer file configures is switched
    /// off (all-MiniLM-L6-v2's pads every text to 128 `[PAD]` tokens):
    /// prompts are cut by the session budget here, and batches are padded
    /// with an attention mask by [`SessionTokenizer::pad_batch`].
    pub fn new(mut tokenizer: Tokenizer, max_tokens: usize, max_prompts: usize) -> Result<Self> {
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        if max_prompts == 0 || max_tokens < 1 + 2 * max_prompts {
            return Err(ModelError::Tokenizer(format!(
                "max_tokens {max_tokens} is too small for {max_prompts} prompts (need at least {})",
                1 + 2 * max_prompts.max(1)
            )));
        }
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| ModelError::Tokenizer(format!("tokenizer has no {t} token")))
        };
        Ok(SessionTokenizer {
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            pad: id("[PAD]")?,
            tokenizer,
            max_tokens,
            max_prompts,
        })
    }

    /// Loads `tokenizer.json`.
    pub fn from_file(
        path: &std::path::Path,
        max_tokens: usize,
        max_prompts: usize,
    ) -> Result<Self> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| ModelError::Format {
            path: path.to_path_buf(),
            message: format!("cannot load tokenizer: {e}"),
        })?;
        Self::new(tokenizer, max_tokens, max_prompts)
    }

    /// The wrapped tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token budget per session, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Most prompts kept per session.
    pub fn max_prompts(&self) -> usize {
        self.max_prompts
    }

    /// Token ids of one session (at most `max_tokens`).
    pub fn encode(&self, session: &Session) -> Result<Vec<u32>> {
        let char_cap = 8 * self.max_tokens;
        let prompts: Vec<String> = evenly_spaced(session.events.len(), self.max_prompts)
            .map(|i| {
                let p = &session.events[i].prompt;
                match p.char_indices().nth(char_cap) {
                    Some((cut, _)) => p[..cut].to_string(),
                    None => p.clone(),
                }
            })
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch(prompts, false)
            .map_err(tokenizer_error)?;
        let lengths: Vec<usize> = encodings.iter().map(|e| e.get_ids().len()).collect();
        let budget = self.max_tokens - 1 - lengths.len();
        let kept = water_fill(&lengths, budget);
        let mut ids = Vec::with_capacity(self.max_tokens);
        ids.push(self.cls);
        for (enc, keep) in encodings.iter().zip(kept) {
            ids.extend_from_slice(&enc.get_ids()[..keep]);
            ids.push(self.sep);
        }
        Ok(ids)
    }

    /// Right-pads encoded sessions into `(input_ids, attention_mask)`,
    /// both (batch, longest) u32.
    pub fn pad_batch<S: AsRef<[u32]>>(
        &self,
        encoded: &[S],
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let longest = encoded
            .iter()
            .map(|e| e.as_ref().len())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut ids = Vec::with_capacity(encoded.len() * longest);
        let mut mask = Vec::with_capacity(encoded.len() * longest);
        for e in encoded {
            let e = e.as_ref();
            ids.extend_from_slice(e);
            ids.extend(std::iter::repeat_n(self.pad, longest - e.len()));
            mask.extend(std::iter::repeat_n(1u32, e.len()));
            mask.extend(std::iter::repeat_n(0u32, longest - e.len()));
        }
        let shape = (encoded.len(), longest);
        Ok((
            Tensor::from_vec(ids, shape, device)?,
            Tensor::from_vec(mask, shape, device)?,
        ))
    }
}

/// Splits `budget` tokens among sequences of the given lengths: each gets
/// `min(length, fair share)`, unused share going to the longer ones.
pub fn water_fill(lengths: &[usize], budget: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut kept = vec![0; lengths.len()];
    let mut left = budget;
    for (rank, &i) in order.iter().enumerate() {
        let share = left / (lengths.len() - rank);
        kept[i] = lengths[i].min(share);
        left -= kept[i];
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::water_fill;

    #[test]
    fn water_fill_shares_the_budget() {
        assert_eq!(water_fill(&[3, 100, 100], 50), vec![3, 23, 24]);
        assert_eq!(water_fill(&[3, 4], 50), vec![3, 4]);
        assert_eq!(water_fill(&[10, 10, 10], 9), vec![3, 3, 3]);
        assert_eq!(water_fill(&[], 9), Vec::<usize>::new());
    }
}
