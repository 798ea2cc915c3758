//! The report as CSV.

use super::model::Report;

pub fn render(report: &Report) -> String {
    let _ = report;
    String::new()
}
