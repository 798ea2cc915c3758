//! The statistics of REPORT.md §6, each a pure function of counts.
//! The formulas are the contract's; the normal and chi-square tails come
//! from `statrs` rather than hand-written special functions.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

use super::model::{ChiSquare, Verdict};

/// The 0.975 quantile of the standard normal.
pub const Z: f64 = 1.959963984540054;
/// The 0.8 quantile of the standard normal (power 80%).
pub const Z_B: f64 = 0.8416212335729143;
/// The always-valid interval's planned sample size without `--plan`.
pub const DEFAULT_PLAN: u64 = 1000;
/// The always-valid interval's error rate.
const ALPHA: f64 = 0.05;
/// The absolute change `sample_needed` is sized to detect (5 points).
const DETECT: f64 = 0.05;

/// Wilson 95% interval of x successes in n; `None` when n = 0.
pub fn wilson(x: u64, n: u64) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let (x, n) = (x as f64, n as f64);
    let z2 = Z * Z;
    let centre = (x + z2 / 2.0) / (n + z2);
    let half = Z * (x * (n - x) / n + z2 / 4.0).sqrt() / (n + z2);
    // The bounds lie in [0, 1] exactly; clamping only removes rounding.
    Some([(centre - half).max(0.0), (centre + half).min(1.0)])
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
    if n0 == 0 || ni == 0 {
        return None;
    }
    let (x0, n0, xi, ni) = (x0 as f64, n0 as f64, xi as f64, ni as f64);
    let (p0, pi) = (x0 / n0, xi / ni);
    let d = pi - p0;
    let se = (p0 * (1.0 - p0) / n0 + pi * (1.0 - pi) / ni).sqrt();

    let pooled = (x0 + xi) / (n0 + ni);
    let se_p = (pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / ni)).sqrt();
    let p_value = if se_p == 0.0 {
        1.0
    } else {
        2.0 * Normal::standard().sf((d / se_p).abs())
    };

    let half = always_valid_half_width(n0 + ni, se, plan.max(1) as f64);
    Some(Compared {
        difference: d,
        interval: [d - Z * se, d + Z * se],
        p_value,
        always_valid: [d - half, d + half],
    })
}

/// The half-width of the asymptotic confidence sequence for N enrollments
/// in all with standard error `se`, tuned for `plan` (N*).
fn always_valid_half_width(n: f64, se: f64, plan: f64) -> f64 {
    let v = n * se * se;
    let log_term = -2.0 * ALPHA.ln();
    let rho2 = (log_term + (log_term + 1.0).ln()) / plan;
    let nr = n * rho2 + 1.0;
    v.sqrt() * (2.0 * nr / (n * n * rho2) * (nr.sqrt() / ALPHA).ln()).sqrt()
}

/// Pearson's chi-square over (completed, n) per variant; `None` with fewer
/// than three variants or any n = 0.
pub fn chi_square(table: &[(u64, u64)]) -> Option<ChiSquare> {
    if table.len() < 3 || table.iter().any(|&(_, n)| n == 0) {
        return None;
    }
    let df = table.len() as u64 - 1;
    let total: f64 = table.iter().map(|&(_, n)| n as f64).sum();
    let done: f64 = table.iter().map(|&(x, _)| x as f64).sum();
    let not_done = total - done;
    if done == 0.0 || not_done == 0.0 {
        return Some(ChiSquare {
            statistic: 0.0,
            df,
            p_value: 1.0,
        });
    }
    let statistic: f64 = table
        .iter()
        .map(|&(x, n)| {
            let (x, n) = (x as f64, n as f64);
            let (e1, e2) = (n * done / total, n * not_done / total);
            (x - e1).powi(2) / e1 + (n - x - e2).powi(2) / e2
        })
        .sum();
    let p_value = ChiSquared::new(df as f64)
        .map(|c| c.sf(statistic))
        .unwrap_or(1.0);
    Some(ChiSquare {
        statistic,
        df,
        p_value,
    })
}

/// Enrollments needed per variant to detect a 5-point change from a
/// control rate p0.
pub fn sample_needed(p0: f64) -> u64 {
    let b = p0;
    let t = if b + DETECT > 1.0 {
        b - DETECT
    } else {
        b + DETECT
    };
    let m = (b + t) / 2.0;
    let root = Z * (2.0 * m * (1.0 - m)).sqrt() + Z_B * (b * (1.0 - b) + t * (1.0 - t)).sqrt();
    (root * root / (DETECT * DETECT)).ceil() as u64
}

/// The verdict of one comparison (REPORT.md §6).
pub fn verdict(compared: Option<&Compared>, n0: u64, ni: u64, needed: Option<u64>) -> Verdict {
    let Some(c) = compared else {
        return Verdict::NotEnoughData;
    };
    if c.always_valid[0] > 0.0 {
        Verdict::Better
    } else if c.always_valid[1] < 0.0 {
        Verdict::Worse
    } else if needed.is_some_and(|k| n0 >= k && ni >= k) {
        Verdict::NoDifference
    } else {
        Verdict::NotEnoughData
    }
}
