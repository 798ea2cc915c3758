//! Fixtures shared by the integration tests: a scripted HTTP server on
//! loopback ([`http`]) and the week of applicants that the runtime and
//! end-to-end tests replay ([`week`]).

// Each test module uses part of these.
#![allow(dead_code)]

pub mod http;
pub mod week;

pub use http::*;
