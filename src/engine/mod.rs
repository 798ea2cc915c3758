//! The pure core: the compiled machine, window and limit arithmetic,
//! candidates and filters, and the one `step` function. Nothing here reads
//! a clock, a disk or the network.

pub mod candidate;
pub mod machine;
pub mod millis;
pub mod step;
pub mod window;

/// An absolute instant; all engine arithmetic is in UTC.
pub type Instant = chrono::DateTime<chrono::Utc>;

pub use candidate::{assign_variant, Candidate, Fields};
pub use machine::{Channel, Machine, StateId};
pub use step::{enroll, next_due, step, Ctx, EngineState, Happening, Input, Record, Step};
