//! One place for explanations: what the engine decided, turned into named
//! facts for history ([`facts`]), and facts turned into the words people
//! read in `nudge simulate`, `nudge show` and `nudge status` ([`words`],
//! [`history`]). Nothing else in nudge words a cause.

pub mod facts;
pub mod history;
pub mod words;

pub use history::describe;
