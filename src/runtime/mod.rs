//! The durable runtime: the single-writer core over the store, the
//! campaigns it runs, the clock, and the daemon around them.

pub mod api;
pub mod campaigns;
pub mod client;
pub mod clock;
pub mod compose;
pub mod core;
pub mod daemon;
pub mod dashboard;
pub mod decider;
pub mod digest;
mod faults;
pub mod fields;
pub mod health;
pub mod inbound;
pub mod links;
pub mod memory;
pub mod metrics;
pub mod policy;
pub mod query;
pub mod refusal;
pub mod run;
