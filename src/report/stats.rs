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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Computed once by scipy and statsmodels (`tests/data/stats_reference.py`).
    const REFERENCE: &str = include_str!("../../tests/data/stats_reference.json");

    fn reference(key: &str) -> Vec<Value> {
        let all: Value = serde_json::from_str(REFERENCE).unwrap();
        let cases = all[key].as_array().unwrap().clone();
        assert!(cases.len() >= 30, "{key}: {} cases", cases.len());
        cases
    }

    fn close(got: f64, want: f64, what: &str) {
        let tolerance = 1e-9 + 1e-9 * want.abs();
        assert!(
            (got - want).abs() <= tolerance,
            "{what}: got {got}, want {want} (off by {:e})",
            (got - want).abs()
        );
    }

    fn u(v: &Value) -> u64 {
        v.as_u64().unwrap()
    }

    fn pair(v: &Value) -> [f64; 2] {
        [v[0].as_f64().unwrap(), v[1].as_f64().unwrap()]
    }

    #[test]
    fn the_constants_are_the_normal_quantiles() {
        let all: Value = serde_json::from_str(REFERENCE).unwrap();
        close(Z, all["z"].as_f64().unwrap(), "z");
        close(Z_B, all["z_b"].as_f64().unwrap(), "z_b");
    }

    #[test]
    fn wilson_matches_statsmodels() {
        assert_eq!(wilson(0, 0), None);
        for case in reference("wilson") {
            let (x, n) = (u(&case["x"]), u(&case["n"]));
            let got = wilson(x, n).unwrap();
            let want = pair(&case["interval"]);
            close(got[0], want[0], &format!("wilson({x}, {n}) low"));
            close(got[1], want[1], &format!("wilson({x}, {n}) high"));
        }
    }

    #[test]
    fn comparisons_match_statsmodels() {
        assert_eq!(compare(0, 0, 1, 2, 1000), None);
        assert_eq!(compare(1, 2, 0, 0, 1000), None);
        for case in reference("compare") {
            let [x0, n0, xi, ni, plan] = ["x0", "n0", "xi", "ni", "plan"].map(|k| u(&case[k]));
            let what = format!("compare({x0}/{n0}, {xi}/{ni}, plan {plan})");
            let got = compare(x0, n0, xi, ni, plan).unwrap();
            close(got.difference, case["difference"].as_f64().unwrap(), &what);
            let want = pair(&case["interval"]);
            close(got.interval[0], want[0], &format!("{what} interval low"));
            close(got.interval[1], want[1], &format!("{what} interval high"));
            close(
                got.p_value,
                case["p_value"].as_f64().unwrap(),
                &format!("{what} p"),
            );
            let want = pair(&case["always_valid"]);
            close(
                got.always_valid[0],
                want[0],
                &format!("{what} always-valid low"),
            );
            close(
                got.always_valid[1],
                want[1],
                &format!("{what} always-valid high"),
            );
        }
    }

    #[test]
    fn chi_square_matches_scipy() {
        assert_eq!(chi_square(&[(1, 2), (2, 3)]), None);
        assert_eq!(chi_square(&[(1, 2), (2, 3), (0, 0)]), None);
        for case in reference("chi_square") {
            let table: Vec<(u64, u64)> = case["table"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (u(&r[0]), u(&r[1])))
                .collect();
            let got = chi_square(&table).unwrap();
            let what = format!("chi_square({table:?})");
            close(got.statistic, case["statistic"].as_f64().unwrap(), &what);
            assert_eq!(got.df, u(&case["df"]), "{what} df");
            close(
                got.p_value,
                case["p_value"].as_f64().unwrap(),
                &format!("{what} p"),
            );
        }
    }

    #[test]
    fn sample_sizes_match_the_reference() {
        for case in reference("sample_needed") {
            let p0 = case["p0"].as_f64().unwrap();
            assert_eq!(sample_needed(p0), u(&case["n"]), "sample_needed({p0})");
        }
    }

    #[test]
    fn verdicts_match_the_reference() {
        assert_eq!(verdict(None, 0, 5, None), Verdict::NotEnoughData);
        for case in reference("verdict") {
            let [x0, n0, xi, ni, plan] = ["x0", "n0", "xi", "ni", "plan"].map(|k| u(&case[k]));
            let compared = compare(x0, n0, xi, ni, plan);
            let needed = sample_needed(x0 as f64 / n0 as f64);
            assert_eq!(needed, u(&case["needed"]));
            let got = verdict(compared.as_ref(), n0, ni, Some(needed));
            let want: Verdict = serde_json::from_value(case["verdict"].clone()).unwrap();
            assert_eq!(got, want, "verdict({x0}/{n0}, {xi}/{ni}, plan {plan})");
        }
    }

    /// SplitMix64: a small seeded generator, so the simulation is the same
    /// on every run.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Two variants with the same true rate, read after every 100
    /// enrollments up to 5,000: the always-valid interval declares a
    /// winner in about 5% of runs at most, the fixed-horizon p-value read
    /// the same way far more often.
    #[test]
    fn always_valid_interval_keeps_false_winners_rare_under_peeking() {
        const RUNS: u32 = 400;
        let mut rng = SplitMix(0x6e75_6467_6515);
        let (mut always_valid_wins, mut p_value_wins) = (0u32, 0u32);
        for _ in 0..RUNS {
            let rate = 0.3;
            let (mut x, mut n) = ([0u64; 2], [0u64; 2]);
            let (mut av, mut pv) = (false, false);
            for enrolled in 1..=5000u32 {
                let v = usize::from(rng.unit() < 0.5);
                n[v] += 1;
                x[v] += u64::from(rng.unit() < rate);
                if enrolled % 100 != 0 {
                    continue;
                }
                if let Some(c) = compare(x[0], n[0], x[1], n[1], DEFAULT_PLAN) {
                    av |= c.always_valid[0] > 0.0 || c.always_valid[1] < 0.0;
                    pv |= c.p_value < 0.05;
                }
            }
            always_valid_wins += u32::from(av);
            p_value_wins += u32::from(pv);
        }
        let av_rate = f64::from(always_valid_wins) / f64::from(RUNS);
        let pv_rate = f64::from(p_value_wins) / f64::from(RUNS);
        println!(
            "false winners in {RUNS} runs read 50 times each: always-valid {:.1}%, \
             fixed-horizon p < 0.05 {:.1}%",
            av_rate * 100.0,
            pv_rate * 100.0
        );
        assert!(av_rate <= 0.06, "always-valid declared {av_rate}");
        assert!(pv_rate >= 0.15, "fixed-horizon declared only {pv_rate}");
        assert!(pv_rate >= 3.0 * av_rate.max(0.01));
    }
}
