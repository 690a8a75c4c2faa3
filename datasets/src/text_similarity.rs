//! Prompt similarity inside a session: MinHash estimates of word-shingle
//! Jaccard similarity, and shared leading/trailing words (templates).

use std::collections::HashMap;

use xxhash_rust::xxh3::xxh3_64;

/// Number of MinHash permutations (estimate error about 1/sqrt(64) = 0.125).
pub const MINHASH_SIZE: usize = 64;
/// Words per shingle.
pub const SHINGLE_WORDS: usize = 3;
/// Words that make a template prefix or suffix.
pub const TEMPLATE_WORDS: usize = 4;

/// Lowercased alphanumeric words of a text.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// MinHash signature of a text's word shingles (a text shorter than a
/// shingle is one shingle; an empty text gets an all-max signature).
pub fn minhash(words: &[String]) -> [u64; MINHASH_SIZE] {
    let mut sig = [u64::MAX; MINHASH_SIZE];
    let width = SHINGLE_WORDS.min(words.len().max(1));
    for shingle in words.windows(width) {
        let base = xxh3_64(shingle.join(" ").as_bytes());
        for (i, slot) in sig.iter_mut().enumerate() {
            // Cheap independent permutations: multiply-xorshift of the base
            // hash with per-slot odd constants.
            let k = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut h = base ^ k;
            h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            h ^= h >> 31;
            *slot = (*slot).min(h);
        }
    }
    sig
}

/// Estimated Jaccard similarity of two signatures.
pub fn jaccard(a: &[u64; MINHASH_SIZE], b: &[u64; MINHASH_SIZE]) -> f32 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f32 / MINHASH_SIZE as f32
}

/// Pairwise similarity summary of a set of prompts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SimilaritySummary {
    /// Share of prompts with at least one other prompt at estimated
    /// Jaccard >= `threshold`.
    pub near_duplicate_share: f32,
    /// Mean estimated Jaccard over all pairs.
    pub mean_pairwise_jaccard: f32,
    /// Share of prompts that carry the most common `TEMPLATE_WORDS`-word
    /// prefix or suffix, when it occurs at least twice.
    pub template_share: f32,
}

/// Summarises the similarity of `prompts` (already tokenised by [`words`]).
/// Fewer than two prompts give all zeros.
pub fn summarise(prompts: &[Vec<String>], threshold: f32) -> SimilaritySummary {
    let n = prompts.len();
    if n < 2 {
        return SimilaritySummary::default();
    }
    let sigs: Vec<_> = prompts.iter().map(|w| minhash(w)).collect();
    let mut has_near = vec![false; n];
    let mut total = 0.0f64;
    for i in 0..n {
        for j in i + 1..n {
            let s = jaccard(&sigs[i], &sigs[j]);
            total += f64::from(s);
            if s >= threshold {
                has_near[i] = true;
                has_near[j] = true;
            }
        }
    }
    let pairs = (n * (n - 1) / 2) as f64;
    SimilaritySummary {
        near_duplicate_share: has_near.iter().filter(|&&b| b).count() as f32 / n as f32,
        mean_pairwise_jaccard: (total / pairs) as f32,
        template_share: template_share(prompts),
    }
}

fn template_share(prompts: &[Vec<String>]) -> f32 {
    let mut prefixes: HashMap<&[String], usize> = HashMap::new();
    let mut suffixes: HashMap<&[String], usize> = HashMap::new();
    for w in prompts.iter().filter(|w| w.len() >= TEMPLATE_WORDS) {
        *prefixes.entry(&w[..TEMPLATE_WORDS]).or_default() += 1;
        *suffixes.entry(&w[w.len() - TEMPLATE_WORDS..]).or_default() += 1;
    }
    let best = prefixes
        .values()
        .chain(suffixes.values())
        .copied()
        .max()
        .unwrap_or(0);
    if best >= 2 {
        best as f32 / prompts.len() as f32
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(t: &str) -> Vec<String> {
        words(t)
    }

    #[test]
    fn identical_texts_have_jaccard_one() {
        let a = minhash(&w("the quick brown fox jumps over the lazy dog"));
        assert_eq!(jaccard(&a, &a), 1.0);
    }

    #[test]
    fn unrelated_texts_have_low_jaccard() {
        let a = minhash(&w("the quick brown fox jumps over the lazy dog"));
        let b = minhash(&w("integrate x squared from zero to one and simplify"));
        assert!(jaccard(&a, &b) < 0.1);
    }

    #[test]
    fn template_share_counts_shared_prefix() {
        let prompts = vec![
            w("Solve this problem step by step: 2 + 2"),
            w("Solve this problem step by step: what is 7 times 8"),
            w("hello there how are you"),
        ];
        let s = summarise(&prompts, 0.5);
        assert!((s.template_share - 2.0 / 3.0).abs() < 1e-6);
    }
}
