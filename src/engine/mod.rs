//! The pure core: the compiled machine, window and limit arithmetic,
//! candidates and filters, and the one `step` function. Nothing here reads
//! a clock, a disk or the network.

pub mod candidate;
pub mod filter;
pub mod machine;
pub mod millis;
pub mod step;
pub mod window;

/// An absolute instant; all engine arithmetic is in UTC.
pub type Instant = chrono::DateTime<chrono::Utc>;

pub use candidate::{assign_variant, Candidate, Fields};
pub use filter::Filter;
pub use machine::{Channel, Machine, StateId};
pub use step::{
    enroll, late, next_due, step, Ctx, EngineState, Happening, Input, Lateness, Leaving, Record,
    Step,
};

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    /// The engine is the pure core the rest of the crate is built around:
    /// it may use its own modules and outside crates, never another part
    /// of nudge, so the parser, simulator, store, runtime and channels can
    /// change without touching it.
    #[test]
    fn the_engine_uses_no_other_part_of_nudge() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
        let mut offenders = Vec::new();
        for entry in fs::read_dir(&folder).expect("src/engine") {
            let path = entry.expect("a directory entry").path();
            let text = fs::read_to_string(&path).expect("an engine source file");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                let outside = code.match_indices("crate::").any(|(at, _)| {
                    let rest = &code[at + "crate::".len()..];
                    rest.starts_with(|c: char| c.is_ascii_alphabetic())
                        && !rest.starts_with("engine")
                });
                if outside {
                    offenders.push(format!("{}:{}: {line}", path.display(), n + 1));
                }
            }
        }
        assert!(offenders.is_empty(), "{}", offenders.join("\n"));
    }
}
