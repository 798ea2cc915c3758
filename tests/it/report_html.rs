//! The HTML report in a real browser: an event log with a clear winner and
//! a funnel that leaks is written as `nudge report --format html`, opened
//! from `file://` in headless chromium (phone-sized), and read as a
//! recruiter would: the verdict and the biggest drop at the top, the SVG
//! charts drawn at a size that fits, no console errors, nothing fetched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fantoccini::elements::Element;
use fantoccini::Locator;
use serde_json::{json, Value};

use crate::support::browser::{Browser, PHONE};
use crate::support::site::Site;

const TITLE: &str = "Warehouse <Associate> & Co";
/// Monday 2026-10-05, 08:00 UTC.
const START: i64 = 1_791_187_200_000;
const HOUR: i64 = 3_600_000;
const CANDIDATES: usize = 240;

/// A deterministic "percent" for candidate `i` and a `salt`.
fn roll(i: usize, salt: usize) -> usize {
    (i * 7919 + salt * 104_729 + (i * i) % 97) % 100
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The log, and what each candidate reached.
struct Made {
    log: String,
    /// Per variant (`short`, `warm`): furthest step index per candidate.
    furthest: BTreeMap<&'static str, Vec<usize>>,
}

/// An event log over six days: `warm` completes clearly more than
/// `short`, and most candidates are lost between delivered and opened.
fn event_log() -> Made {
    let zones = [
        Some("America/Chicago"),
        Some("America/New_York"),
        Some("Europe/Madrid"),
        None,
    ];
    let mut lines: Vec<(i64, Value)> = vec![(
        i64::MIN,
        json!({"kind": "campaign", "campaign": "warehouse_associate", "title": TITLE,
               "goal": "completed", "experiments": {"copy": ["short", "warm"]}}),
    )];
    let mut furthest: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for i in 0..CANDIDATES {
        let variant = if i % 2 == 0 { "short" } else { "warm" };
        let id = format!("c{i:03}@example.com");
        let enrolled = START + (i as i64 / 40) * 24 * HOUR + (i as i64 % 10) * HOUR;
        let source = ["indeed", "referral", "site"][i % 3];
        let mut enrolled_line = json!({"kind": "enrolled", "at": rfc3339(enrolled),
            "campaign": "warehouse_associate", "candidate": id,
            "variants": {"copy": variant}, "source": source});
        if let Some(zone) = zones[i % zones.len()] {
            enrolled_line["timezone"] = zone.into();
        }
        lines.push((enrolled, enrolled_line));
        let mut event = |kind: &str, after: i64, extra: Value| {
            let mut line = json!({"kind": kind, "at": rfc3339(enrolled + after), "candidate": id});
            for (k, v) in extra.as_object().unwrap() {
                line[k] = v.clone();
            }
            lines.push((enrolled + after, line));
        };
        let warm = variant == "warm";
        let mut step = 0;
        if i % 20 != 7 {
            step = 1;
            event(
                "sent",
                5 * 60_000,
                json!({"campaign": "warehouse_associate", "channel": "email"}),
            );
            if roll(i, 1) < 95 {
                step = 2;
                event("delivered", 6 * 60_000, json!({"channel": "email"}));
                if roll(i, 2) < if warm { 80 } else { 35 } {
                    step = 3;
                    event("opened", 2 * HOUR, json!({"channel": "email"}));
                    if roll(i, 3) < 85 {
                        step = 4;
                        let device = if i % 3 == 0 { "desktop" } else { "mobile" };
                        event("clicked", 3 * HOUR, json!({"device": device}));
                        if roll(i, 4) < 90 {
                            step = 5;
                            event("started", 20 * HOUR, json!({}));
                            if roll(i, 5) < if warm { 98 } else { 50 } {
                                step = 6;
                                event("completed", 21 * HOUR, json!({}));
                                event(
                                    "exited",
                                    21 * HOUR,
                                    json!({"campaign": "warehouse_associate",
                                           "state": "done", "converted": true}),
                                );
                            }
                        }
                    }
                }
            }
        }
        furthest.entry(variant).or_default().push(step);
    }
    // In time order; ties keep the order they happened in.
    lines.sort_by_key(|(at, _)| *at);
    let log = lines
        .iter()
        .map(|(_, l)| format!("{l}\n"))
        .collect::<String>();
    Made { log, furthest }
}

/// Writes the HTML report of the log at `events` to `out` with the real
/// binary (`nudge report --events F --by source --format html --output
/// out`); while the binary's `--format html` is not wired to
/// [`nudge::report::html`], through the library the same way: the log
/// folded, the report and its charts over the same cohort.
fn write_report(site: &Site, events: &Path) -> PathBuf {
    let out = site.path().join("out/report.html");
    let run = site.nudge(&[
        "report",
        "--events",
        events.to_str().unwrap(),
        "--by",
        "source",
        "--format",
        "html",
        "--output",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    if !run.status.success() && stderr.contains("HTML format is not built") {
        let mut fold = nudge::report::fold::Fold::new();
        for line in std::fs::read_to_string(events).unwrap().lines() {
            fold.push(&serde_json::from_str(line).unwrap());
        }
        let (headers, summaries) = fold.finish();
        let options = nudge::report::compute::Options {
            by: vec![nudge::report::compute::By::Source],
            ..Default::default()
        };
        let html = nudge::report::html::report(&headers, &summaries, &options);
        std::fs::write(&out, html).unwrap();
    } else {
        assert!(run.status.success(), "nudge report failed: {stderr}");
    }
    out
}

async fn size(element: &Element) -> (f64, f64) {
    let (_, _, width, height) = element.rectangle().await.unwrap();
    (width, height)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recruiter_opens_the_html_report_offline_and_sees_the_winner_and_the_drop() {
    let Some(browser) = Browser::phone(
        "report_html::a_recruiter_opens_the_html_report_offline_and_sees_the_winner_and_the_drop",
    )
    .await
    else {
        return;
    };
    let site = Site::probe();
    let made = event_log();
    let events = site.path().join("events.jsonl");
    std::fs::write(&events, &made.log).unwrap();
    let out = write_report(&site, &events);
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(!html.contains("<Associate>"), "the title is escaped");

    let c = &browser.client;
    c.goto(&format!("file://{}", out.display())).await.unwrap();
    assert_eq!(
        c.title().await.unwrap(),
        format!("Report: {TITLE}"),
        "the title shows as text"
    );

    // At a glance: who wins, and where candidates drop off.
    let verdict = c
        .find(Locator::Css("ul.glance li.better"))
        .await
        .expect("a winning verdict at the top");
    assert!(verdict.is_displayed().await.unwrap());
    let words = verdict.text().await.unwrap();
    assert!(
        words.contains("copy:") && words.contains("warm") && words.contains("completes more"),
        "{words}"
    );
    let drop = c.find(Locator::Css("ul.glance li.drop")).await.unwrap();
    let drop = drop.text().await.unwrap();
    assert!(
        drop.starts_with("Most candidates drop off between delivered and opened:"),
        "{drop}"
    );

    // The charts: inline SVG, drawn at a size that fits the phone.
    let charts = c.find_all(Locator::Css("figure.chart svg")).await.unwrap();
    assert_eq!(
        charts.len(),
        5,
        "funnel, intervals, completion over time, two heatmaps"
    );
    for (selector, min_height) in [
        ("figure.funnel svg", 120.0),
        ("figure.intervals svg", 80.0),
        ("figure.completion svg", 120.0),
        ("figure.heatmap svg", 80.0),
    ] {
        let chart = c.find(Locator::Css(selector)).await.unwrap();
        let (width, height) = size(&chart).await;
        assert!(
            width >= PHONE.0 as f64 * 0.75 && width <= PHONE.0 as f64,
            "{selector} is {width} wide on a {}-wide phone",
            PHONE.0
        );
        assert!(height >= min_height, "{selector} is {height} high");
        assert!(chart.is_displayed().await.unwrap());
    }
    let drawn = c
        .execute(
            "return document.querySelectorAll('figure.completion svg polyline, figure.completion svg path').length",
            vec![],
        )
        .await
        .unwrap();
    assert!(drawn.as_u64().unwrap() >= 2, "the variants' lines: {drawn}");

    // The experiment table holds its numbers.
    let table = browser.text(Locator::Css("table.variants")).await;
    let warm_n = made.furthest["warm"].len();
    let warm_x = made.furthest["warm"].iter().filter(|s| **s == 6).count();
    assert!(
        table.contains(&format!("warm {warm_n} {warm_x}")),
        "{table}"
    );

    // Offline: nothing fetched, nothing wider than the phone, no errors.
    let fetched = c
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fetched, json!([]), "the page fetched something");
    browser.fits_the_width().await;
    let log = browser.console().await;
    assert!(log.is_empty(), "the console: {log:?}");

    let shot = browser.screenshot_to(&site.path().join("report.png")).await;
    assert!(shot.len() > 20_000, "a screenshot of {} bytes", shot.len());
    if let Some(keep) = std::env::var_os("NUDGE_KEEP_SCREENSHOTS") {
        std::fs::write(Path::new(&keep).join("report-html.png"), &shot).unwrap();
        std::fs::write(Path::new(&keep).join("report.html"), &html).unwrap();
    }
    browser.close().await;
}
