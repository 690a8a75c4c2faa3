//! distill-guard serving: an axum service that scores sessions with an
//! exported bundle. Requests are validated, tokenised off the model
//! thread, queued, and scored in dynamic batches (token budget and batch
//! size) by one model worker; overload is a 429, not a timeout.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod config;
pub mod drift;
pub mod error;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod queue;
pub mod request;
pub mod routes;
pub mod server;
pub mod worker;
