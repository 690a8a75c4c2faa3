//! Hash joins: how many distinct accounts share a key (an IP, a prefix, a
//! template frame, a time bucket of a target). Pairs of accounts are never
//! formed; each key is counted once per account.

use std::collections::HashMap;

use xxhash_rust::xxh3::xxh3_64;

/// Index of an account inside one evidence computation.
pub type AccountIndex = u32;

/// A 64-bit key of `parts`, joined with a separator no part contains.
pub fn key_of(parts: &[&[u8]]) -> u64 {
    let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        bytes.extend_from_slice(p);
        bytes.push(0x1f);
    }
    xxh3_64(&bytes)
}

/// `(key, account)` observations, deduplicated and counted per key.
#[derive(Debug, Default)]
pub struct KeyAccounts {
    pairs: Vec<(u64, AccountIndex)>,
    counts: HashMap<u64, u32>,
}

impl KeyAccounts {
    /// Records that `account` used `key`.
    pub fn add(&mut self, key: u64, account: AccountIndex) {
        self.pairs.push((key, account));
    }

    /// Deduplicates the observations and counts distinct accounts per key.
    /// Call once, after every [`Self::add`].
    pub fn finish(&mut self) {
        self.pairs.sort_unstable();
        self.pairs.dedup();
        self.counts.clear();
        for &(key, _) in &self.pairs {
            *self.counts.entry(key).or_default() += 1;
        }
    }

    /// Distinct accounts that used `key` (0 for an unseen key).
    pub fn accounts(&self, key: u64) -> u32 {
        self.counts.get(&key).copied().unwrap_or(0)
    }

    /// Whether `account` used `key`.
    pub fn contains(&self, key: u64, account: AccountIndex) -> bool {
        self.pairs.binary_search(&(key, account)).is_ok()
    }

    /// Distinct `(key, account)` observations, sorted by key.
    pub fn pairs(&self) -> &[(u64, AccountIndex)] {
        &self.pairs
    }

    /// For every account, the most *other* accounts that share one of its
    /// keys (0 when it shares none); `n` accounts in all.
    pub fn max_peers(&self, n: usize) -> Vec<u32> {
        let mut peers = vec![0u32; n];
        for &(key, account) in &self.pairs {
            let p = &mut peers[account as usize];
            *p = (*p).max(self.accounts(key) - 1);
        }
        peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_accounts_per_key() {
        let mut k = KeyAccounts::default();
        for (key, account) in [(1, 0), (1, 0), (1, 1), (2, 2), (3, 1), (3, 2), (3, 0)] {
            k.add(key, account);
        }
        k.finish();
        assert_eq!(k.accounts(1), 2);
        assert_eq!(k.accounts(2), 1);
        assert_eq!(k.accounts(3), 3);
        assert_eq!(k.accounts(9), 0);
        assert!(k.contains(1, 1) && !k.contains(2, 0));
        assert_eq!(k.max_peers(4), vec![2, 2, 2, 0]);
    }

    #[test]
    fn keys_keep_parts_apart() {
        assert_ne!(key_of(&[b"ab", b"c"]), key_of(&[b"a", b"bc"]));
        assert_eq!(key_of(&[b"ab", b"c"]), key_of(&[b"ab", b"c"]));
    }
}
