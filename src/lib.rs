//! nudge: a campaign engine for recruiters.
//!
//! The pipeline: campaign text → [`dsl::parse`] (syntax tree with spans) →
//! [`dsl::check`] (diagnostics) → [`dsl::compile`] (state machine) →
//! [`engine::step`] (pure decisions) → simulator today, daemon tomorrow.

pub mod channels;
pub mod cli;
pub mod config;
pub mod diag;
pub mod dsl;
pub mod engine;
pub mod explain;
pub mod graph;
pub mod init;
pub mod intake;
pub mod report;
pub mod runtime;
pub mod server;
pub mod sim;
pub mod store;
pub mod templates;
