//! distill-guard training library: device selection, metrics, the
//! fine-tuning loop and benchmarks behind the `train` binaries.
#![warn(missing_docs)]

pub mod device;
