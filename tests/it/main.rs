//! nudge's integration tests, as one test binary (one link instead of one
//! per file). Each module is one feature seen from outside: through the
//! public library API, the in-process daemon, or the real `nudge` binary.
//!
//! The crash test (`crash`) kills the real daemon many times and is slow;
//! `.ci/run` runs it as its own step (`cargo test --test it crash::`).

mod support;

mod applied;
mod apply;
mod ats;
mod backup;
mod channels;
mod check_errors;
mod cli;
mod config;
mod counts;
mod crash;
mod daemon;
mod damage;
mod dashboard;
mod decided;
mod delivery;
mod digest;
mod e2e;
mod engine;
mod export;
mod faults;
mod fmt;
mod import;
mod inputs;
mod late;
mod links;
mod metrics;
mod openapi;
mod parse_fuzz;
mod phone;
mod policy;
mod properties;
mod report;
mod report_html;
mod retention;
mod runtime;
mod smtp;
mod suppression;
mod templates;
mod twilio;
mod webhook;
mod webhooks;
