//! Writes a simulated dataset to disk: one sessions file per split plus the
//! dataset card, each written atomically.

use std::path::{Path, PathBuf};

use crate::{
    card::{DatasetCard, SplitCard},
    simulator::{
        config::{SimConfig, SplitMode, SplitName},
        simulate, BuildError,
    },
    writer::{write_atomic, JsonlWriter},
    DataError,
};

/// Files a build produced.
#[derive(Debug, Clone)]
pub struct BuiltDataset {
    /// Sessions files, in split order (train, validation, test).
    pub split_files: Vec<PathBuf>,
    /// `card.json`.
    pub card_json: PathBuf,
    /// `card.md`.
    pub card_markdown: PathBuf,
    /// The card itself.
    pub card: DatasetCard,
}

/// Simulates `config` and writes `{train,validation,test}.jsonl[.gz]`,
/// `card.json` and `card.md` into `out_dir`. `progress` is called with a
/// short message as each stage starts.
pub fn build_dataset(
    config: &SimConfig,
    out_dir: &Path,
    gzip: bool,
    mut progress: impl FnMut(&str),
) -> Result<BuiltDataset, BuildError> {
    progress("simulating");
    let splits = simulate(config)?;
    let mut card = DatasetCard {
        seed: config.seed,
        split_mode: match config.split.mode {
            SplitMode::Source => "source".into(),
            SplitMode::Random => "random".into(),
        },
        splits: Default::default(),
    };
    let mut split_files = Vec::new();
    for split in SplitName::ALL {
        progress(&format!("writing {}", split.as_str()));
        let ext = if gzip { "jsonl.gz" } else { "jsonl" };
        let path = out_dir.join(format!("{}.{ext}", split.as_str()));
        let mut writer = JsonlWriter::create(&path)?;
        let sessions: Vec<_> = splits
            .get(split)
            .iter()
            .map(|g| g.session.clone())
            .collect();
        for s in &sessions {
            writer.write(s)?;
        }
        split_files.push(writer.finish()?);
        progress(&format!("card for {}", split.as_str()));
        card.splits
            .insert(split.as_str().to_string(), SplitCard::of(&sessions));
    }
    let card_json = out_dir.join("card.json");
    let json = serde_json::to_vec_pretty(&card).map_err(|source| DataError::Serialize {
        path: card_json.clone(),
        source,
    })?;
    write_atomic(&card_json, &json)?;
    let card_markdown = out_dir.join("card.md");
    write_atomic(&card_markdown, card.to_markdown().as_bytes())?;
    Ok(BuiltDataset {
        split_files,
        card_json,
        card_markdown,
        card,
    })
}
