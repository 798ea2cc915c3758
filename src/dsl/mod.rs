//! The campaign language: syntax tree, parser, checker, compiler, formatter.

pub mod ast;
pub mod check;
pub mod compile;
pub mod fmt;
pub mod load;
pub mod parse;
pub mod pipeline;
pub mod report;
pub mod window_deadline;
