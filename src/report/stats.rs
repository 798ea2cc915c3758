//! The statistics of REPORT.md §6, each a pure function of counts.
//! CONTRACT (lead): signatures fixed; bodies by the report-core helper.

use super::model::{ChiSquare, Verdict};

/// The 0.975 quantile of the standard normal.
pub const Z: f64 = 1.959963984540054;
/// The 0.8 quantile of the standard normal (power 80%).
pub const Z_B: f64 = 0.8416212335729143;
/// The always-valid interval's planned sample size without `--plan`.
pub const DEFAULT_PLAN: u64 = 1000;

/// Wilson 95% interval of x successes in n; `None` when n = 0.
pub fn wilson(x: u64, n: u64) -> Option<[f64; 2]> {
    let _ = (x, n);
    todo!("report-core")
}

/// A variant against the control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compared {
    pub difference: f64,
    pub interval: [f64; 2],
    pub p_value: f64,
    pub always_valid: [f64; 2],
}

/// Variant (xi of ni) against the control (x0 of n0); `None` when either n
/// is 0. `plan` is N* of the always-valid interval.
pub fn compare(x0: u64, n0: u64, xi: u64, ni: u64, plan: u64) -> Option<Compared> {
    let _ = (x0, n0, xi, ni, plan);
    todo!("report-core")
}

/// Pearson's chi-square over (completed, n) per variant; `None` with fewer
/// than three variants or any n = 0.
pub fn chi_square(table: &[(u64, u64)]) -> Option<ChiSquare> {
    let _ = table;
    todo!("report-core")
}

/// Enrollments needed per variant to detect a 5-point change from a
/// control rate p0.
pub fn sample_needed(p0: f64) -> u64 {
    let _ = p0;
    todo!("report-core")
}

/// The verdict of one comparison (REPORT.md §6).
pub fn verdict(compared: Option<&Compared>, n0: u64, ni: u64, needed: Option<u64>) -> Verdict {
    let _ = (compared, n0, ni, needed);
    todo!("report-core")
}
