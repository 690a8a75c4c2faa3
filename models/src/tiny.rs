//! Tiny models for tests (behind the `test-utils` feature): a word-level
//! BERT vocabulary built from given texts and a two-layer config. Fast,
//! random, never meaningful, and the same on every run: the weights come
//! from a seed.

use std::collections::BTreeSet;

use tokenizers::Tokenizer;

use crate::config::{BertConfig, HiddenAct};

/// Seed of the tiny base model's weights.
const BASE_MODEL_SEED: u64 = 0x7135;

/// A seed for the variable `name` of a model seeded with `seed` (FNV-1a
/// over the name's bytes): the same on every run and platform, whatever
/// order the layers are built in.
fn name_seed(seed: u64, name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325 ^ seed, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Values of a `shape` variable drawn as `init` asks, from `seed` and
/// the variable's `name`.
pub fn seeded_values(
    shape: &candle_core::Shape,
    seed: u64,
    name: &str,
    init: candle_nn::Init,
) -> Vec<f32> {
    use candle_nn::init::{Init, NormalOrUniform};
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(name_seed(seed, name));
    let count = shape.elem_count();
    let (normal, mean, spread) = match init {
        Init::Const(value) => return vec![value as f32; count],
        Init::Uniform { lo, up } => (false, (lo + up) / 2.0, (up - lo) / 2.0),
        Init::Randn { mean, stdev } => (true, mean, stdev),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => (true, 0.0, std),
                // A uniform on [-b, b] has standard deviation b / sqrt(3).
                NormalOrUniform::Uniform => (false, 0.0, 3f64.sqrt() * std),
            }
        }
    };
    if normal {
        let dist = Normal::new(mean, spread).expect("a finite, non-negative standard deviation");
        (0..count).map(|_| dist.sample(&mut rng) as f32).collect()
    } else {
        (0..count)
            .map(|_| (mean + spread * rng.random_range(-1.0..1.0)) as f32)
            .collect()
    }
}

/// A `VarBuilder` backend that creates the variables of a `VarMap` as
/// the layers' initialisers ask, each drawn from the model's seed and its
/// name, so that a tiny model (and what is trained from it) comes out the
/// same on every run.
struct SeededVars<'a> {
    varmap: &'a candle_nn::VarMap,
    seed: u64,
}

impl candle_nn::var_builder::SimpleBackend for SeededVars<'_> {
    fn get(
        &self,
        shape: candle_core::Shape,
        name: &str,
        init: candle_nn::Init,
        dtype: candle_core::DType,
        device: &candle_core::Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        let tensor = self.varmap.get(
            shape.clone(),
            name,
            candle_nn::Init::Const(0.0),
            dtype,
            device,
        )?;
        let values = candle_core::Tensor::from_vec(
            seeded_values(&shape, self.seed, name, init),
            shape,
            device,
        )?
        .to_dtype(dtype)?;
        let vars = self.varmap.data().lock().expect("varmap lock");
        vars[name].set(&values)?;
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: candle_core::DType,
        _device: &candle_core::Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        let vars = self.varmap.data().lock().expect("varmap lock");
        match vars.get(name) {
            Some(var) => var.as_tensor().to_dtype(dtype),
            None => Err(candle_core::Error::CannotFindTensor { path: name.into() }),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .expect("varmap lock")
            .contains_key(name)
    }
}

/// A CPU f32 `VarBuilder` that fills `varmap` with variables drawn from
/// `seed`.
pub fn seeded_var_builder(varmap: &candle_nn::VarMap, seed: u64) -> candle_nn::VarBuilder<'_> {
    candle_nn::VarBuilder::from_backend(
        Box::new(SeededVars { varmap, seed }),
        candle_core::DType::F32,
        candle_core::Device::Cpu,
    )
}

/// Special tokens, at ids 0-4.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// A lowercasing WordPiece tokenizer whose vocabulary is the special
/// tokens, single letters and digits (plain and `##`), and the first
/// `max_words` distinct words of `texts`.
pub fn tiny_tokenizer<'a>(texts: impl IntoIterator<Item = &'a str>, max_words: usize) -> Tokenizer {
    let mut vocab: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
    let chars: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    vocab.extend(chars.iter().map(|c| c.to_string()));
    vocab.extend(chars.iter().map(|c| format!("##{c}")));
    let words: BTreeSet<String> = texts
        .into_iter()
        .flat_map(|t| {
            t.split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() > 1)
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .collect();
    vocab.extend(words.into_iter().take(max_words));
    let ids: serde_json::Map<String, serde_json::Value> = vocab
        .into_iter()
        .enumerate()
        .map(|(i, w)| (w, serde_json::Value::from(i)))
        .collect();
    // The same JSON layout as a Hugging Face BERT `tokenizer.json`.
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids}
    });
    Tokenizer::from_bytes(json.to_string()).expect("a valid WordPiece tokenizer.json")
}

/// A two-layer, 32-wide BERT config for `vocab_size` tokens.
pub fn tiny_config(vocab_size: usize) -> BertConfig {
    BertConfig {
        vocab_size,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        hidden_act: HiddenAct::Gelu,
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        pad_token_id: 0,
        initializer_range: 0.02,
        model_type: "bert".into(),
    }
}

/// Writes a tiny base model in Hugging Face layout into `dir`
/// (`tokenizer.json` from `texts`, `config.json`, random
/// `model.safetensors`), for tests of training and loading code.
pub fn write_base_model<'a>(
    dir: &std::path::Path,
    texts: impl IntoIterator<Item = &'a str>,
) -> crate::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::ModelError::io(dir, e))?;
    let tokenizer = tiny_tokenizer(texts, 3000);
    tokenizer
        .save(dir.join("tokenizer.json"), false)
        .map_err(|e| crate::ModelError::Tokenizer(e.to_string()))?;
    let cfg = tiny_config(tokenizer.get_vocab_size(true));
    let config_path = dir.join("config.json");
    let json = serde_json::to_string(&cfg).map_err(|e| crate::ModelError::Format {
        path: config_path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&config_path, json).map_err(|e| crate::ModelError::io(&config_path, e))?;
    let varmap = candle_nn::VarMap::new();
    crate::BertEncoder::load(seeded_var_builder(&varmap, BASE_MODEL_SEED), &cfg)?;
    varmap.save(dir.join("model.safetensors"))?;
    Ok(())
}

/// Writes a tiny, randomly initialised session-classifier bundle into `dir`
/// (vocabulary from `texts`, identity feature statistics, the given
/// operating threshold, weights drawn from `seed`), for tests of scoring
/// and serving code. Its scores mean nothing; what matters is that every
/// reader of bundles accepts it. The same arguments write the same bundle;
/// another seed, another model.
pub fn write_tiny_bundle<'a>(
    dir: &std::path::Path,
    texts: impl IntoIterator<Item = &'a str>,
    threshold: f32,
    seed: u64,
) -> crate::Result<std::path::PathBuf> {
    use datasets::{FEATURE_NAMES, NUM_FEATURES};

    use crate::{
        bundle::{write_bundle, BundleMetadata, BundleParts, Threshold},
        classifier::{HeadConfig, SessionClassifier},
        feature_norm::FeatureNormalizer,
        session_input::SessionTokenizer,
    };

    let tokenizer = tiny_tokenizer(texts, 3000);
    let bert = tiny_config(tokenizer.get_vocab_size(true));
    let head = HeadConfig {
        num_features: NUM_FEATURES,
        hidden_dim: 16,
        dropout: 0.1,
        max_tokens: 64,
        max_prompts: 4,
    };
    let varmap = candle_nn::VarMap::new();
    SessionClassifier::load(seeded_var_builder(&varmap, seed), &bert, &head)?;
    let name = dir
        .file_name()
        .map_or("tiny".into(), |n| n.to_string_lossy().into_owned());
    let path = write_bundle(
        dir,
        &BundleParts {
            varmap: &varmap,
            bert: &bert,
            head: &head,
            tokenizer: &SessionTokenizer::new(tokenizer, head.max_tokens, head.max_prompts)?,
            norm: &FeatureNormalizer {
                names: FEATURE_NAMES.iter().map(|n| n.to_string()).collect(),
                mean: vec![0.0; NUM_FEATURES],
                std: vec![1.0; NUM_FEATURES],
            },
            threshold: &Threshold {
                threshold,
                target_fpr: 0.001,
                validation_fpr: 0.0,
                validation_recall: 0.0,
                propagation: None,
                // Validation scores spread evenly over [0, 1).
                score_reference: crate::drift::ScoreReference::from_scores(
                    &(0..100).map(|i| i as f32 / 100.0).collect::<Vec<_>>(),
                    crate::drift::REFERENCE_BINS,
                ),
            },
            metadata: &BundleMetadata {
                name,
                version: env!("CARGO_PKG_VERSION").into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                base_model: "tiny-random".into(),
                data_files: Vec::new(),
                hyper_parameters: serde_json::json!({}),
                validation_metrics: serde_json::json!({}),
                test_metrics: None,
                parent: None,
            },
        },
    )?;
    tiny_prompt_head(bert.hidden_size).save(&path)?;
    Ok(path)
}

/// A prompt head of alternating weights (+0.5, -0.5, ...) at threshold
/// 0.5, so that prompt scores vary and can be recomputed from embeddings.
pub fn tiny_prompt_head(embedding_dim: usize) -> crate::prompt_head::PromptHead {
    use crate::prompt_head::{PromptHead, PromptValidation, PROMPT_HEAD_VERSION};
    PromptHead {
        version: PROMPT_HEAD_VERSION,
        weights: (0..embedding_dim)
            .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect(),
        intercept: 0.0,
        threshold: 0.5,
        train_prompts: 0,
        validation: PromptValidation {
            prompts: 0,
            roc_auc: 0.5,
            target_fpr: 0.01,
            fpr: 0.0,
            recall: 0.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_base_models_are_the_same_on_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let texts = ["solve this step by step", "what should I cook tonight"];
        let weights = |name: &str| {
            let path = dir.path().join(name);
            write_base_model(&path, texts).unwrap();
            std::fs::read(path.join("model.safetensors")).unwrap()
        };
        let (first, second) = (weights("a"), weights("b"));
        assert_eq!(first, second);
        // Still random: the drawn weights vary within a matrix.
        let tensors =
            candle_core::safetensors::load_buffer(&first, &candle_core::Device::Cpu).unwrap();
        let query = tensors
            .iter()
            .find(|(name, _)| name.ends_with("attention.self.query.weight"))
            .map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .unwrap();
        assert!(query.iter().any(|&v| v != query[0]));
    }

    #[test]
    fn a_tiny_bundle_is_its_seed() {
        let dir = tempfile::tempdir().unwrap();
        let texts = ["solve this step by step", "what should I cook tonight"];
        let weights = |name: &str, seed: u64| {
            let path = write_tiny_bundle(&dir.path().join(name), texts, 0.5, seed).unwrap();
            std::fs::read(path.join("model.safetensors")).unwrap()
        };
        assert_eq!(weights("a", 1), weights("b", 1));
        assert_ne!(weights("a", 1), weights("c", 2));
    }
}
