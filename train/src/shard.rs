//! Sharded scoring: `score --shard K/N` scores the accounts whose stable
//! hash falls in shard K of N, so an account's sessions stay together
//! (its verdict needs all of them), and [`merge_scores`] joins the
//! shards' scores files into one.

use std::{collections::HashMap, path::Path, path::PathBuf, str::FromStr};

use anyhow::{bail, Context, Result};
use datasets::{BadLinePolicy, RecordSink, RecordSource};
use xxhash_rust::xxh3::xxh3_64;

use crate::score::ScoreRecord;

/// Shard `index` of `count` (written `K/N`, K from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u64,
    /// Shards in all.
    pub count: u64,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("--shard {text:?}: expected K/N with 0 <= K < N, e.g. 0/4");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether `account_id` belongs to this shard: xxh3-64 of the id
    /// modulo the shard count, the same on every machine and run.
    pub fn contains(&self, account_id: &str) -> bool {
        xxh3_64(account_id.as_bytes()) % self.count == self.index
    }
}

/// Reads every shard's scores file (JSONL or Parquet) and writes them as
/// one file ordered by account, then session id, so any number of shards
/// merges to the same bytes. A session in two shards, or an account split
/// across shards, is an error naming both files. Holds every score in
/// memory (a few hundred bytes per session).
pub fn merge_scores(inputs: &[PathBuf], output: &Path) -> Result<usize> {
    let mut records: Vec<ScoreRecord> = Vec::new();
    let mut file_of_account: HashMap<String, usize> = HashMap::new();
    for (i, path) in inputs.iter().enumerate() {
        for record in RecordSource::<ScoreRecord>::open(path, BadLinePolicy::Strict)? {
            let record = record?;
            let first = *file_of_account
                .entry(record.account_id.clone())
                .or_insert(i);
            if first != i {
                bail!(
                    "account {} is in two shards: {} and {}",
                    record.account_id,
                    inputs[first].display(),
                    path.display()
                );
            }
            records.push(record);
        }
    }
    records.sort_by(|a, b| {
        (a.account_id.as_str(), a.session_id.as_str()).cmp(&(&b.account_id, &b.session_id))
    });
    if let Some(w) = records
        .windows(2)
        .find(|w| w[0].session_id == w[1].session_id)
    {
        bail!("session {} is in more than one shard file", w[0].session_id);
    }
    let mut sink = RecordSink::create(output)?;
    for r in &records {
        sink.write(r)?;
    }
    sink.finish()
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition_accounts() {
        assert_eq!("1/4".parse(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (0..3).map(|k| Shard { index: k, count: 3 }).collect();
        let mut sizes = [0usize; 3];
        for a in 0..3000 {
            let id = format!("acct-{a}");
            let owners: Vec<usize> = (0..3).filter(|&k| shards[k].contains(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| (800..1200).contains(&n)), "{sizes:?}");
    }
}
