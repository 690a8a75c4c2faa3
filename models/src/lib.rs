//! distill-guard models: a BERT-family encoder in candle that loads
//! Hugging Face checkpoints into trainable variables and fine-tunes (real
//! dropout, differentiable LayerNorm and softmax while training; fused f32
//! CPU kernels with fused backward passes, used by training and inference
//! alike, and bf16 / int8 linear layers for inference), masked mean pooling, session tokenisation under
//! a token budget, feature normalisation and the session classifier head.
#![warn(missing_docs)]

pub mod account_model;
pub mod allocator;
pub mod base_model;
pub mod bert;
pub mod bundle;
pub mod campaign_map;
pub mod checkpoint;
pub mod classifier;
pub mod config;
pub mod cpu_kernels;
pub mod device;
pub mod drift;
pub mod error;
pub mod feature_norm;
pub mod linear;
pub mod optim;
pub mod precision;
pub mod prompt_head;
pub mod reasons;
pub mod session_input;
#[cfg(any(test, feature = "test-utils"))]
pub mod tiny;

pub use bert::{BertEncoder, Mode};
pub use classifier::{HeadConfig, SessionClassifier};
pub use config::{BertConfig, HiddenAct};
pub use error::{ModelError, Result};
pub use feature_norm::FeatureNormalizer;
pub use precision::{CpuFeatures, Precision, PrecisionChoice, AMX_ENV};
pub use session_input::SessionTokenizer;
