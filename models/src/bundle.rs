//! Export bundles: a directory with everything batch scoring and `serve`
//! need, written atomically (a failed export never clobbers the previous
//! bundle).
//!
//! | file | holds |
//! |---|---|
//! | `model.safetensors` | encoder (`embeddings.*`, `encoder.*`) and head (`head.*`) weights |
//! | `config.json` | the encoder's HF-style config |
//! | `head_config.json` | head shape, token budget, prompts per session |
//! | `tokenizer.json` | the base model's tokenizer |
//! | `feature_norm.json` | feature names, training means and standard deviations |
//! | `threshold.json` | operating threshold and the validation FPR / recall it gave |
//! | `metadata.json` | base model, data file hashes, hyper-parameters, metrics, version, time |

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use datasets::{session_features, FeatureVector, Session, NUM_FEATURES};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{
    checkpoint::load_into,
    classifier::{HeadConfig, SessionClassifier},
    config::BertConfig,
    error::{ModelError, Result},
    feature_norm::FeatureNormalizer,
    precision::{CpuFeatures, Precision},
    prompt_head::PromptHead,
    session_input::SessionTokenizer,
    Mode,
};

/// Weights file name.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Encoder config file name.
pub const CONFIG_FILE: &str = "config.json";
/// Head config file name.
pub const HEAD_FILE: &str = "head_config.json";
/// Tokenizer file name.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Feature statistics file name.
pub const NORM_FILE: &str = "feature_norm.json";
/// Threshold file name.
pub const THRESHOLD_FILE: &str = "threshold.json";
/// Metadata file name.
pub const METADATA_FILE: &str = "metadata.json";

/// The operating point chosen on validation data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Flag a session when `score >= threshold`.
    pub threshold: f32,
    /// Benign false-positive rate the threshold was chosen for.
    pub target_fpr: f64,
    /// False-positive rate it gave on validation.
    pub validation_fpr: f64,
    /// Recall it gave on validation.
    pub validation_recall: f64,
    /// The looser threshold of cluster propagation; bundles written before
    /// it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<PropagationThreshold>,
    /// The validation scores' distribution, which score drift (PSI) is
    /// measured against; bundles written before it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_reference: Option<crate::drift::ScoreReference>,
}

impl Threshold {
    /// The mean account score from which an account in a coordinated
    /// cluster is flagged: the saved propagation threshold, or else the
    /// session threshold itself (with which propagation adds no account).
    pub fn propagation_threshold(&self) -> f32 {
        self.propagation
            .as_ref()
            .map_or(self.threshold, |p| p.threshold)
    }
}

/// Cluster propagation's operating point, chosen on validation like the
/// session threshold but for a higher benign false-positive rate: an
/// account in a coordinated cluster is flagged when its mean session score
/// reaches it, so the cluster supplies the evidence the lower score lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropagationThreshold {
    /// Mean account score threshold (at most the session threshold).
    pub threshold: f32,
    /// Benign session false-positive rate it was chosen for.
    pub target_fpr: f64,
    /// Benign session false-positive rate it gave on validation.
    pub validation_fpr: f64,
}

/// A data file a model was trained or evaluated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path as given.
    pub path: String,
    /// sha256 of its bytes.
    pub sha256: String,
    /// Sessions read from it.
    pub sessions: usize,
}

/// Provenance and results of a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleMetadata {
    /// Bundle name (its directory name).
    pub name: String,
    /// distill-guard version that wrote it.
    pub version: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Base model id or directory.
    pub base_model: String,
    /// Training / validation (and test) data.
    pub data_files: Vec<DataFile>,
    /// Training settings.
    pub hyper_parameters: serde_json::Value,
    /// Validation metrics at the saved weights.
    pub validation_metrics: serde_json::Value,
    /// Held-out test metrics, when evaluated.
    #[serde(default)]
    pub test_metrics: Option<serde_json::Value>,
    /// The bundle this one was warm-started from (`fit --init-from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentBundle>,
}

/// The bundle a warm-started one began from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentBundle {
    /// Its directory, as given.
    pub dir: String,
    /// Its name.
    pub name: String,
    /// First 12 hex digits of its weights' sha256 (the version `serve`
    /// reports).
    pub version: String,
    /// When it was written.
    pub created_at: String,
    /// The data it was trained on.
    pub data_files: Vec<DataFile>,
}

/// Everything written into a bundle.
pub struct BundleParts<'a> {
    /// Trained variables (encoder + head).
    pub varmap: &'a VarMap,
    /// Encoder config.
    pub bert: &'a BertConfig,
    /// Head config.
    pub head: &'a HeadConfig,
    /// Tokenizer.
    pub tokenizer: &'a SessionTokenizer,
    /// Feature statistics.
    pub norm: &'a FeatureNormalizer,
    /// Operating threshold.
    pub threshold: &'a Threshold,
    /// Provenance and metrics.
    pub metadata: &'a BundleMetadata,
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| ModelError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|e| ModelError::io(path, e))
}

/// Reads and parses one JSON file of a bundle; errors name the file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    parse_json(path, &text)
}

/// Reads and parses a JSON file a bundle may lack: `None` when it does not
/// exist; errors name the file.
pub fn read_optional_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_json(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ModelError::io(path, e)),
    }
}

fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| ModelError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `value` as JSON to `path` atomically: a failed write leaves the
/// previous file as it was.
pub fn save_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let format_error = |message: String| ModelError::Format {
        path: path.to_path_buf(),
        message,
    };
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| format_error(e.to_string()))?;
    datasets::writer::write_atomic(path, &bytes).map_err(|e| format_error(e.to_string()))
}

/// Writes a bundle into `dir`: all files go to a temporary sibling
/// directory first, which then replaces `dir`. The previous bundle is moved
/// aside and removed only once the new one is in place.
pub fn write_bundle(dir: &Path, parts: &BundleParts) -> Result<PathBuf> {
    datasets::writer::replace_dir(dir, ModelError::io, |s| {
        parts.varmap.save(s.join(WEIGHTS_FILE))?;
        write_json(&s.join(CONFIG_FILE), parts.bert)?;
        write_json(&s.join(HEAD_FILE), parts.head)?;
        parts
            .tokenizer
            .tokenizer()
            .save(s.join(TOKENIZER_FILE), false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        write_json(&s.join(NORM_FILE), parts.norm)?;
        write_json(&s.join(THRESHOLD_FILE), parts.threshold)?;
        write_json(&s.join(METADATA_FILE), parts.metadata)
    })
}

/// One scored session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionScore {
    /// Probability of extraction.
    pub score: f32,
    /// Pooled text embedding.
    pub embedding: Vec<f32>,
}

/// A loaded bundle, ready to score.
pub struct Bundle {
    /// Directory it was loaded from.
    pub dir: PathBuf,
    /// Encoder config.
    pub bert: BertConfig,
    /// Head config.
    pub head: HeadConfig,
    /// Session tokenizer.
    pub tokenizer: SessionTokenizer,
    /// Feature statistics.
    pub norm: FeatureNormalizer,
    /// Operating threshold.
    pub threshold: Threshold,
    /// Provenance and metrics.
    pub metadata: BundleMetadata,
    /// The classifier.
    pub model: SessionClassifier,
    /// The prompt-only scorer (`prompt_head.json`), when the bundle has one.
    pub prompt_head: Option<PromptHead>,
    device: Device,
    precision: Precision,
    kernels: String,
}

impl Bundle {
    /// Loads a bundle directory onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let bert = BertConfig::from_file(&dir.join(CONFIG_FILE))?;
        let head: HeadConfig = read_json(&dir.join(HEAD_FILE))?;
        if head.num_features != NUM_FEATURES {
            return Err(ModelError::Format {
                path: dir.join(HEAD_FILE),
                message: format!(
                    "num_features {} but this build computes {NUM_FEATURES}",
                    head.num_features
                ),
            });
        }
        let tokenizer = SessionTokenizer::from_file(
            &dir.join(TOKENIZER_FILE),
            head.max_tokens,
            head.max_prompts,
        )?;
        let norm = FeatureNormalizer::load(&dir.join(NORM_FILE))?;
        let threshold: Threshold = read_json(&dir.join(THRESHOLD_FILE))?;
        let metadata: BundleMetadata = read_json(&dir.join(METADATA_FILE))?;
        let prompt_head = PromptHead::load(dir, bert.hidden_size)?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = SessionClassifier::load(vb, &bert, &head)?;
        load_into(&varmap, &dir.join(WEIGHTS_FILE), |_| false)?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            bert,
            head,
            tokenizer,
            norm,
            threshold,
            metadata,
            model,
            prompt_head,
            device: device.clone(),
            precision: Precision::F32,
            kernels: match device {
                Device::Cpu => CpuFeatures::detect().kernels(Precision::F32)?,
                _ => format!("{device:?} f32"),
            },
        })
    }

    /// Sets the precision of the encoder's linear layers (bf16 and int8 on
    /// the CPU only). Fails, naming the missing feature, when this CPU
    /// cannot run it.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        if precision != Precision::F32 && !self.device.is_cpu() {
            return Err(ModelError::Precision(format!(
                "precision {precision} runs on the CPU only; use f32 on {:?}",
                self.device
            )));
        }
        if self.device.is_cpu() {
            self.kernels = CpuFeatures::detect().kernels(precision)?;
        }
        self.model.encoder.set_precision(precision)?;
        self.precision = precision;
        Ok(())
    }

    /// The precision of the encoder's linear layers.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The kernels that score, in words (for `/info`, logs and reports).
    pub fn kernels(&self) -> &str {
        &self.kernels
    }

    /// Scores already-tokenised sessions as one batch, given their raw
    /// (not normalised) behavioural features.
    pub fn score_encoded<S: AsRef<[u32]>>(
        &self,
        encoded: &[S],
        features: &[FeatureVector],
    ) -> Result<Vec<SessionScore>> {
        let (ids, mask) = self.tokenizer.pad_batch(encoded, &self.device)?;
        let features = self.norm.tensor(features, &self.device)?;
        let out = self.model.forward(&ids, &mask, &features, Mode::Eval)?;
        let scores = candle_nn::ops::sigmoid(&out.logits)?.to_vec1::<f32>()?;
        let embeddings = out.embeddings.to_vec2::<f32>()?;
        Ok(scores
            .into_iter()
            .zip(embeddings)
            .map(|(score, embedding)| SessionScore { score, embedding })
            .collect())
    }

    /// Scores sessions in batches of `batch_size`, grouping sessions of
    /// similar token length to limit padding; results are in input order.
    pub fn score(&self, sessions: &[Session], batch_size: usize) -> Result<Vec<SessionScore>> {
        let encoded: Vec<Vec<u32>> = sessions
            .iter()
            .map(|s| self.tokenizer.encode(s))
            .collect::<Result<_>>()?;
        let mut order: Vec<usize> = (0..sessions.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut out: Vec<Option<SessionScore>> = vec![None; sessions.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let enc: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
            let features: Vec<FeatureVector> = chunk
                .iter()
                .map(|&i| session_features(&sessions[i]))
                .collect();
            for (&i, s) in chunk.iter().zip(self.score_encoded(&enc, &features)?) {
                out[i] = Some(s);
            }
        }
        Ok(out
            .into_iter()
            .map(|s| s.expect("every session scored"))
            .collect())
    }
}
