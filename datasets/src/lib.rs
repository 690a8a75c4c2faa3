//! distill-guard data layer: the sessions format of
//! `docs/data-format.md` (streaming reader and atomic writer), the
//! raw-log sessionizer, behavioural session features, and the campaign
//! simulator that builds the labeled default dataset.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod asn;
pub mod build;
pub mod card;
pub mod columnar;
pub mod coordination;
#[cfg(feature = "datafusion")]
pub mod engine;
pub mod error;
pub mod features;
pub mod logging;
pub mod reader;
pub mod scaled_log;
pub mod schema;
pub mod sessionize;
pub mod simulator;
pub mod text_similarity;
pub mod user_agent;
pub mod writer;

pub use columnar::{ArrowRecord, DataFormat, RecordSink, RecordSource};
pub use error::{DataError, LineError};
pub use features::{session_features, FeatureVector, FEATURE_NAMES, NUM_FEATURES};
pub use reader::{
    read_sessions, sha256_file, BadLinePolicy, JsonlReader, ReadStats, SessionReader,
};
pub use schema::{Account, Event, Label, Session};
pub use writer::JsonlWriter;
