//! Real prompt text from `datasets/corpora/`: loading, grouping into pools
//! by what the text is, and assigning *source units* to splits.
//!
//! A source unit is the part of a corpus that must stay inside one split:
//! a BIG-Bench Hard task, a MATH subject, a BFCL category, an MBPP split,
//! HumanEval as a whole; general chat corpora, which have no meaningful
//! sub-sources, are cut into 20 hash buckets of their items (`dolly/h07`).

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;
use xxhash_rust::xxh3::xxh3_64;

use super::config::{SplitConfig, SplitName};
use crate::{error::DataError, reader::open_input};

/// What kind of text a pool holds (decides which archetypes draw from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    /// Everyday instructions and questions (Dolly, Self-Instruct, MT-bench turn 1).
    Chat,
    /// Grade-school math word problems (GSM8K).
    GradeMath,
    /// Competition math (MATH).
    CompetitionMath,
    /// Multi-step reasoning puzzles (BIG-Bench Hard).
    Reasoning,
    /// Programming tasks (MBPP, HumanEval).
    Code,
    /// Requests for an assistant with tools (BFCL).
    ToolUse,
    /// Harmful asks (HH red-team first turns, forbidden questions).
    Harmful,
    /// In-the-wild jailbreak prompts.
    Jailbreak,
    /// System-prompt extraction attempts.
    PromptExtraction,
}

/// Corpus files the simulator uses, with the pool each feeds.
pub const CORPUS_FILES: &[(&str, Pool)] = &[
    ("dolly", Pool::Chat),
    ("self_instruct", Pool::Chat),
    ("mt_bench", Pool::Chat),
    ("gsm8k", Pool::GradeMath),
    ("math", Pool::CompetitionMath),
    ("bbh", Pool::Reasoning),
    ("mbpp", Pool::Code),
    ("humaneval", Pool::Code),
    ("bfcl", Pool::ToolUse),
    ("hh_rlhf_harmless", Pool::Harmful),
    ("forbidden_questions", Pool::Harmful),
    ("jailbreak", Pool::Jailbreak),
    ("prompt_extraction_zhang", Pool::PromptExtraction),
    ("garak_sysprompt_extraction", Pool::PromptExtraction),
];

/// Number of hash buckets for corpora without sub-sources.
pub const HASH_BUCKETS: u64 = 20;

#[derive(Deserialize)]
struct CorpusLine {
    text: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    subset: Option<String>,
}

/// One prompt text with its provenance.
#[derive(Debug, Clone)]
pub struct CorpusItem {
    /// The prompt text.
    pub text: String,
    /// Source unit key (`file/group`).
    pub unit: String,
    /// Category inside the source (BBH task, MATH subject ...), for sweeps.
    pub topic: String,
}

/// All corpora, with per-split pools of item indices.
#[derive(Debug, Clone)]
pub struct Corpora {
    /// Every item, in file order.
    pub items: Vec<CorpusItem>,
    pools: BTreeMap<(Option<SplitName>, Pool), Vec<usize>>,
}

/// Source unit of an item of `file`.
pub fn unit_of(file: &str, id: Option<&str>, subset: Option<&str>, text: &str) -> String {
    let subset = subset.unwrap_or("");
    let group = match file {
        "bbh" | "bfcl" | "mbpp" => subset.to_string(),
        // GSM8K has only its train/test halves: bucket items inside each.
        "gsm8k" => format!("{subset}/{}", hash_bucket(id, text)),
        // "train/algebra/Level 3" -> "algebra"
        "math" => subset.split('/').nth(1).unwrap_or(subset).to_string(),
        "humaneval" => "all".to_string(),
        _ => hash_bucket(id, text),
    };
    format!("{file}/{group}")
}

/// A human-readable topic for an item, as an operator's sweep would name it.
pub fn topic_of(file: &str, subset: Option<&str>) -> String {
    let subset = subset.unwrap_or("");
    match file {
        "math" => subset
            .split('/')
            .nth(1)
            .unwrap_or("mathematics")
            .replace('_', " "),
        "bbh" => subset.replace('_', " "),
        "gsm8k" => "arithmetic word problems".into(),
        "mbpp" | "humaneval" => "Python programming".into(),
        "bfcl" => "function calling".into(),
        "mt_bench" => subset.split('/').next().unwrap_or("general").to_string(),
        _ => "general knowledge".into(),
    }
}

fn hash_bucket(id: Option<&str>, text: &str) -> String {
    let key = id.unwrap_or(text);
    format!("h{:02}", xxh3_64(key.as_bytes()) % HASH_BUCKETS)
}

/// Whether a unit pattern matches a unit key: `*/GROUP` matches every
/// unit whose last path part is GROUP (`*/h15` matches `dolly/h15` and
/// `gsm8k/train/h15`); a pattern ending in `*` is a prefix; anything else
/// must be equal.
pub fn unit_matches(pattern: &str, unit: &str) -> bool {
    if let Some(group) = pattern.strip_prefix("*/") {
        return unit.rsplit_once('/').is_some_and(|(_, g)| g == group);
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => unit.starts_with(prefix),
        None => pattern == unit,
    }
}

/// Split a unit belongs to under a source split.
pub fn split_of_unit(unit: &str, split: &SplitConfig) -> SplitName {
    if split.test_units.iter().any(|p| unit_matches(p, unit)) {
        SplitName::Test
    } else if split.validation_units.iter().any(|p| unit_matches(p, unit)) {
        SplitName::Validation
    } else {
        SplitName::Train
    }
}

impl Corpora {
    /// Loads every corpus file under `dir`. With `split` set (source mode),
    /// pools are kept per split; otherwise one shared pool per kind.
    pub fn load(dir: &Path, split: Option<&SplitConfig>) -> Result<Self, DataError> {
        let mut items = Vec::new();
        let mut pools: BTreeMap<(Option<SplitName>, Pool), Vec<usize>> = BTreeMap::new();
        for &(file, pool) in CORPUS_FILES {
            let path = dir.join(format!("{file}.jsonl"));
            let input = open_input(&path)?;
            for (line_no, line) in std::io::BufRead::lines(input).enumerate() {
                let line = line.map_err(|e| DataError::io(&path, e))?;
                let record: CorpusLine =
                    serde_json::from_str(&line).map_err(|e| crate::error::LineError {
                        file: path.display().to_string(),
                        line: line_no as u64 + 1,
                        row_group: None,
                        field: None,
                        message: format!("invalid corpus record: {e}"),
                    })?;
                if record.text.trim().is_empty() {
                    continue;
                }
                let unit = unit_of(
                    file,
                    record.id.as_deref(),
                    record.subset.as_deref(),
                    &record.text,
                );
                // MT-bench turn-2 items ("Rewrite your previous answer...")
                // only make sense as follow-ups; keep turn 1.
                if file == "mt_bench"
                    && record
                        .subset
                        .as_deref()
                        .is_some_and(|s| s.ends_with("turn2"))
                {
                    continue;
                }
                let topic = topic_of(file, record.subset.as_deref());
                let split_name = split.map(|s| split_of_unit(&unit, s));
                pools
                    .entry((split_name, pool))
                    .or_default()
                    .push(items.len());
                items.push(CorpusItem {
                    text: record.text,
                    unit,
                    topic,
                });
            }
        }
        Ok(Corpora { items, pools })
    }

    /// Item indices of a pool in a split (`None` = the shared pools of a
    /// random split). Empty when the split holds none of that pool.
    pub fn pool(&self, split: Option<SplitName>, pool: Pool) -> &[usize] {
        self.pools
            .get(&(split, pool))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(
            unit_of("math", None, Some("train/algebra/Level 3"), "x"),
            "math/algebra"
        );
        assert_eq!(
            unit_of("bbh", None, Some("date_understanding"), "x"),
            "bbh/date_understanding"
        );
        assert!(unit_of("dolly", Some("7"), None, "x").starts_with("dolly/h"));
    }

    #[test]
    fn patterns() {
        assert!(unit_matches("*/h18", "dolly/h18"));
        assert!(!unit_matches("*/h18", "dolly/h1"));
        assert!(unit_matches("*/h18", "gsm8k/train/h18"));
        assert!(unit_matches("gsm8k/test*", "gsm8k/test/h03"));
        assert!(unit_matches(
            "bbh/logical_deduction*",
            "bbh/logical_deduction_five_objects"
        ));
        assert!(unit_matches("humaneval/all", "humaneval/all"));
        assert!(!unit_matches("math/geometry", "math/geometry2"));
    }
}
