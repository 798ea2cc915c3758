//! The campaign language: syntax tree, parser, checker, compiler, formatter.

pub mod ast;
pub mod fmt;
pub mod parse;
