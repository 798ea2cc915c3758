//! `--by` groupings (REPORT.md §5): each enrollment of a cohort goes to
//! one group per grouping, in one pass, and each group is a [`Tally`].

use std::collections::HashMap;

use super::compute::Zones;
use super::fold::Summary;
use super::model::Group;
use super::tally::Tally;

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
pub const HOURS: [&str; 24] = [
    "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23",
];

/// The enrollments split by a key; an enrollment whose key is `None` is
/// in no group.
fn split<'s>(
    cohort: &[&'s Summary],
    key: impl Fn(&'s Summary) -> Option<&'s str>,
) -> HashMap<&'s str, Tally> {
    let mut groups: HashMap<&str, Tally> = HashMap::new();
    for s in cohort {
        if let Some(k) = key(s) {
            groups.entry(k).or_default().add(s);
        }
    }
    groups
}

fn group(key: &str, tally: &Tally) -> Group {
    Group {
        key: key.to_string(),
        funnel: tally.funnel(),
        outcomes: tally.outcomes(),
        time_to_completion: tally.time_to_completion(),
    }
}

/// An experiment's variants as written, each listed even when empty; a
/// variant the campaign line does not name (the experiment was edited)
/// after them, by name.
pub fn variants(cohort: &[&Summary], experiment: &str, written: &[String]) -> Vec<Group> {
    let mut split = split(cohort, |s| s.variants.get(experiment).map(|v| &**v));
    let mut groups: Vec<Group> = written
        .iter()
        .map(|v| group(v, &split.remove(v.as_str()).unwrap_or_default()))
        .collect();
    let mut rest: Vec<_> = split.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(b.0));
    groups.extend(rest.iter().map(|(k, t)| group(k, t)));
    groups
}

/// Groups by a key of each enrollment, by enrolled count descending, then
/// key.
pub fn by_size<'s>(cohort: &[&'s Summary], key: impl Fn(&'s Summary) -> &'s str) -> Vec<Group> {
    let mut groups: Vec<_> = split(cohort, |s| Some(key(s))).into_iter().collect();
    groups.sort_by(|(ka, a), (kb, b)| {
        b.reached(super::fold::Step::Enrolled)
            .cmp(&a.reached(super::fold::Step::Enrolled))
            .then_with(|| ka.cmp(kb))
    });
    groups.iter().map(|(k, t)| group(k, t)).collect()
}

/// `--by channel`'s key: the channel of the first `sent`.
pub fn channel(s: &Summary) -> &str {
    s.first_sent.as_ref().map_or("none", |(_, c)| &**c)
}

/// `--by source`'s key.
pub fn source(s: &Summary) -> &str {
    s.source.as_deref().unwrap_or("unknown")
}

/// `--by device`'s key: the device of the first click that has one.
pub fn device(s: &Summary) -> &str {
    s.device.as_deref().unwrap_or("unknown")
}

/// Groups by the local weekday (`hours` false) or hour of the first
/// `sent`: every weekday or hour in order, empty ones with zero counts,
/// then `none` (never sent to) when someone is.
pub fn local_time(cohort: &[&Summary], hours: bool) -> Vec<Group> {
    let keys: &[&str] = if hours { &HOURS } else { &WEEKDAYS };
    let mut tallies = vec![Tally::default(); keys.len()];
    let mut none = Tally::default();
    let mut zones = Zones::default();
    for s in cohort {
        let local = s
            .first_sent
            .as_ref()
            .and_then(|(at, _)| zones.weekday_hour(s, *at));
        match local {
            Some((_, hour)) if hours => tallies[hour].add(s),
            Some((weekday, _)) => tallies[weekday].add(s),
            None => none.add(s),
        }
    }
    let mut groups: Vec<Group> = keys
        .iter()
        .zip(&tallies)
        .map(|(k, t)| group(k, t))
        .collect();
    if none.reached(super::fold::Step::Enrolled) > 0 {
        groups.push(group("none", &none));
    }
    groups
}
