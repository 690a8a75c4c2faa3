//! distill-guard training library: device selection, data preparation,
//! metrics, the fine-tuning loop and held-out evaluation behind the `train`
//! binaries.
// `deny`, not `forbid`: ndarray's `s!` macro allows unsafe code inside itself.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod baseline;
pub mod campaigns;
pub mod cluster;
pub mod compare;
pub mod corroboration;
pub mod cross_fit;
pub mod data;
pub mod evaluate;
pub mod fit;
pub mod frozen;
pub mod logistic;
pub mod metrics;
pub mod precision_check;
pub mod progress;
pub mod prompt_head;
pub mod report;
pub mod rule_thresholds;
pub mod score;
pub mod score_file;
pub mod shard;
pub mod sparse_logistic;
pub mod template_campaigns;
pub mod verdicts;
pub mod warm_start;
