//! The report as a table for people, in a terminal.

use super::model::Report;

pub fn render(report: &Report) -> String {
    let _ = report;
    String::new()
}
