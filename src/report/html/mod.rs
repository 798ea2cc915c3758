//! The HTML report: one self-contained file (inline CSS and SVG, no
//! scripts, fonts, images or links to fetch) that opens offline. It shows
//! the numbers of a [`Report`], the same ones every format shows, and the
//! [`Charts`] drawn from the same cohort.
//!
//! The page is a minijinja template (`page.html`) with HTML auto-escaping,
//! so every name that comes from data (titles, variants, sources, states)
//! is escaped by construction; the charts come from [`svg`] (plotters,
//! which escapes its own text) and are the only values marked safe.
//! [`view`] turns the report into the words and formatted numbers the page
//! prints.

mod svg;
mod view;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use std::collections::BTreeMap;

use super::charts::{self, Charts};
use super::compute::{self, Options};
use super::fold::{Header, Summary};
use super::model::Report;

pub use view::{biggest_drop, difference_interval, percent, points, rate_interval};

const PAGE: &str = include_str!("page.html");

/// The whole HTML file.
pub fn render(report: &Report, charts: &Charts) -> String {
    let page = view::page(report, charts);
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("page.html", PAGE)
        .expect("the report's page template parses");
    env.get_template("page.html")
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&page))))
        .expect("the report's page template renders its view")
}

/// The HTML file of the report over these enrollments: the report and its
/// charts computed from the same cohort, then [`render`]ed (what `nudge
/// report --format html` writes).
pub fn report(
    headers: &BTreeMap<String, Header>,
    summaries: &[Summary],
    options: &Options,
) -> String {
    render(
        &compute::report(headers, summaries, options),
        &charts::charts(headers, summaries, options),
    )
}

#[cfg(test)]
mod tests;
