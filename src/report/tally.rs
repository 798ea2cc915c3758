//! What a set of enrollments adds up to, in one pass: the funnel, the
//! outcomes and time to completion (REPORT.md §3, §4) of a campaign or of
//! one group.

use std::collections::BTreeMap;

use super::fold::{Step, Summary};
use super::model::{FunnelStep, Outcomes, TimeToCompletion};

/// Counts kept while the enrollments go by.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Per step, the enrollments whose furthest step is it or a later one.
    reached: [u64; 7],
    opted_out: u64,
    bounced: u64,
    failed: u64,
    running: u64,
    exited: BTreeMap<String, u64>,
    /// Seconds from first send to first goal, where the goal came after.
    times: Vec<f64>,
}

impl Tally {
    pub fn add(&mut self, s: &Summary) {
        for count in &mut self.reached[..=s.furthest as usize] {
            *count += 1;
        }
        self.opted_out += u64::from(s.opted_out);
        self.bounced += u64::from(s.bounced);
        self.failed += u64::from(s.failed);
        match &s.exited {
            None => self.running += 1,
            Some(state) => match self.exited.get_mut(&**state) {
                Some(n) => *n += 1,
                None => {
                    self.exited.insert(state.to_string(), 1);
                }
            },
        }
        if let (Some((sent, _)), Some(goal)) = (&s.first_sent, s.first_goal) {
            if goal >= *sent {
                self.times.push((goal - sent) as f64 / 1000.0);
            }
        }
    }

    /// Enrollments whose furthest step is `step` or later.
    pub fn reached(&self, step: Step) -> u64 {
        self.reached[step as usize]
    }

    pub fn opted_out(&self) -> u64 {
        self.opted_out
    }

    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// REPORT.md §3.
    pub fn funnel(&self) -> Vec<FunnelStep> {
        let enrolled = self.reached(Step::Enrolled);
        Step::ALL
            .iter()
            .enumerate()
            .map(|(i, &step)| {
                let count = self.reached(step);
                FunnelStep {
                    step,
                    count,
                    rate_from_previous: i
                        .checked_sub(1)
                        .and_then(|p| ratio(count, self.reached[p])),
                    rate_from_enrolled: ratio(count, enrolled),
                }
            })
            .collect()
    }

    pub fn outcomes(&self) -> Outcomes {
        Outcomes {
            opted_out: self.opted_out,
            bounced: self.bounced,
            failed: self.failed,
            exited: self.exited.clone(),
            running: self.running,
        }
    }

    /// REPORT.md §4: nearest-rank percentiles, shares of those invited.
    pub fn time_to_completion(&self) -> TimeToCompletion {
        let mut times = self.times.clone();
        times.sort_by(f64::total_cmp);
        let n = times.len();
        // ⌈n / 2⌉ and ⌈9 n / 10⌉ in integers, 1-based ranks.
        let rank = |r: usize| (n > 0).then(|| times[r - 1]);
        let invited = self.reached(Step::Invited);
        let within = |secs: f64| ratio(times.partition_point(|&d| d <= secs) as u64, invited);
        TimeToCompletion {
            count: n as u64,
            median_s: rank(n.div_ceil(2)),
            p90_s: rank((9 * n).div_ceil(10)),
            within_24h: within(86_400.0),
            within_48h: within(172_800.0),
            within_72h: within(259_200.0),
        }
    }
}

/// count / base, `None` when the base is 0.
pub fn ratio(count: u64, base: u64) -> Option<f64> {
    (base > 0).then(|| count as f64 / base as f64)
}
