//! Reports: what the history adds up to (`../shared/spec/REPORT.md`).
//!
//! A report is a pure function of an event log:
//!
//! ```text
//! lines (JSON Lines, `line`) ─▶ fold (one `Summary` per enrollment)
//!                              ─▶ compute (`model::Report`) ─▶ table | json | csv | html
//! ```
//!
//! `nudge report --events FILE` parses the lines from a file; over a store,
//! the store's history is turned into the same lines (`export`), or read
//! from the summaries the core keeps up to date in its own commits. Every
//! figure of every format, the dashboard's included, comes from
//! [`compute::report`].

pub mod charts;
pub mod compute;
pub mod csv;
pub mod export;
pub mod fold;
pub mod groups;
pub mod html;
pub mod instant;
pub mod line;
pub mod model;
pub mod query;
pub mod stats;
pub mod stored;
pub mod table;
pub mod tally;
pub mod text;
pub mod trace;
pub mod trace_wire;
pub mod words;
