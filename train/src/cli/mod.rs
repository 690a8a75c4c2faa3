//! The `train` commands, one module per group, and the arguments they share.

pub(crate) mod accounts;
pub(crate) mod args;
pub(crate) mod compare;
pub(crate) mod eval;
pub(crate) mod fit;
pub(crate) mod main_job;
