//! distill-guard models: a BERT-family encoder in candle that loads
//! Hugging Face checkpoints into trainable variables and fine-tunes (real
//! dropout, differentiable LayerNorm and softmax while training, fused
//! kernels for inference), with masked mean pooling.
#![warn(missing_docs)]

pub mod base_model;
pub mod bert;
pub mod checkpoint;
pub mod config;
pub mod error;

pub use bert::{BertEncoder, Mode};
pub use config::{BertConfig, HiddenAct};
pub use error::{ModelError, Result};
