//! The session classifier: pooled text embedding concatenated with the
//! normalised behavioural features -> small MLP -> extraction logit.

use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::{
    bert::{BertEncoder, Mode},
    config::BertConfig,
    cpu_kernels::{self, Dropout},
    linear::Linear,
};

/// Name prefix of the head's variables (absent from base checkpoints).
pub const HEAD_PREFIX: &str = "head.";

/// Shape of the head and of the session input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadConfig {
    /// Number of behavioural features.
    pub num_features: usize,
    /// Width of the hidden MLP layer.
    pub hidden_dim: usize,
    /// Dropout before the output layer while training.
    pub dropout: f32,
    /// Token budget per session.
    pub max_tokens: usize,
    /// Most prompts kept per session.
    pub max_prompts: usize,
}

/// Two-layer MLP over `[text embedding, features]`.
#[derive(Debug, Clone)]
pub struct ClassifierHead {
    hidden: Linear,
    output: Linear,
    dropout: Dropout,
}

impl ClassifierHead {
    /// Loads `head.hidden` and `head.output`.
    pub fn load(vb: VarBuilder, text_dim: usize, cfg: &HeadConfig) -> candle_core::Result<Self> {
        Ok(ClassifierHead {
            hidden: Linear::load(text_dim + cfg.num_features, cfg.hidden_dim, vb.pp("hidden"))?,
            output: Linear::load(cfg.hidden_dim, 1, vb.pp("output"))?,
            dropout: Dropout::new(cfg.dropout),
        })
    }

    /// Logits (batch,) from text embeddings (batch, text_dim) and features
    /// (batch, num_features).
    pub fn forward(
        &self,
        text: &Tensor,
        features: &Tensor,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let x = Tensor::cat(&[text, features], 1)?;
        let h = cpu_kernels::gelu_erf(
            &self.hidden.forward(&x, mode == Mode::Train)?,
            mode == Mode::Train,
        )?;
        let h = self.dropout.forward(&h, mode == Mode::Train)?;
        self.output.forward(&h, mode == Mode::Train)?.squeeze(1)
    }
}

/// Encoder + head.
#[derive(Debug, Clone)]
pub struct SessionClassifier {
    /// The text encoder.
    pub encoder: BertEncoder,
    /// The classification head.
    pub head: ClassifierHead,
}

/// Output of a forward pass.
#[derive(Debug, Clone)]
pub struct ClassifierOutput {
    /// Extraction logits (batch,).
    pub logits: Tensor,
    /// Pooled text embeddings (batch, hidden), for clustering.
    pub embeddings: Tensor,
}

impl SessionClassifier {
    /// Builds the encoder at the root of `vb` and the head under `head.`.
    pub fn load(vb: VarBuilder, bert: &BertConfig, head: &HeadConfig) -> candle_core::Result<Self> {
        Ok(SessionClassifier {
            encoder: BertEncoder::load(vb.clone(), bert)?,
            head: ClassifierHead::load(vb.pp("head"), bert.hidden_size, head)?,
        })
    }

    /// Scores a padded batch.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        features: &Tensor,
        mode: Mode,
    ) -> candle_core::Result<ClassifierOutput> {
        let embeddings = self.encoder.embed(input_ids, attention_mask, mode)?;
        let logits = self.head.forward(&embeddings, features, mode)?;
        Ok(ClassifierOutput { logits, embeddings })
    }
}
