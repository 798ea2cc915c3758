//! Outside records becoming applications: a mapping from the source's
//! shape (a JSON pointer of an ATS's webhook payload, a CSV column, what a
//! résumé's text says) to candidate fields, which then go to the runtime
//! as an `ApplyRequest`.
//!
//! | module | owns |
//! |---|---|
//! | [`batch`] | many applications in one admin request (`nudge import` through the daemon) |
//! | [`mapping`] | JSON pointers → fields; the ready-made Greenhouse, Lever and Indeed mappings |
//! | [`signature`] | checking an ATS's or job board's signature on the raw body |
//! | [`review`] | `--review` imports and `nudge invite`: the field that marks them |
//! | [`import`] | reading CSV, ZIP and PDF files into rows, the rows' checks, rejects |

pub mod batch;
pub mod import;
pub mod mapping;
pub mod review;
pub mod signature;
