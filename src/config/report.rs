//! The `[report]` table: the thresholds of the report's red flags
//! (REPORT.md §7). Each flag is raised when its rate passes its threshold
//! over at least its base of enrollments; the table's keys and their
//! defaults are [`Thresholds`]'s.

use crate::channels::SettingProblem;

pub use crate::report::compute::Thresholds as ReportConfig;

impl ReportConfig {
    /// Each rate as its name and value, for checking.
    fn rates(&self) -> [(&'static str, f64); 5] {
        [
            ("low_open_rate", self.low_open_rate),
            ("high_start_low_completion", self.high_start_low_completion),
            ("high_bounce_rate", self.high_bounce_rate),
            ("high_opt_out_rate", self.high_opt_out_rate),
            ("high_failure_rate", self.high_failure_rate),
        ]
    }

    /// What is wrong with the table: a rate that is not a fraction from 0
    /// to 1. (Any base is a count, so any is taken.)
    pub fn problems(&self) -> Vec<SettingProblem> {
        self.rates()
            .into_iter()
            .filter(|(_, value)| !(0.0..=1.0).contains(value))
            .map(|(key, value)| {
                SettingProblem::new(
                    &[key],
                    format!("`report.{key}` is {value}"),
                    "must be a fraction from 0 to 1",
                    "write a rate as a fraction: 0.2 for 20%",
                )
            })
            .collect()
    }
}
