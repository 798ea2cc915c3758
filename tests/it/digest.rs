//! The weekly digest on the real daemon, a real loopback SMTP server
//! (mailin-embedded) and an accelerated clock: a digest that falls due
//! while the daemon is down goes once at the next start, with the
//! campaign's funnel in it, and a restart after it went does not send it
//! again.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use support::site::{wait_for, Site, VirtualClock};
use support::smtp::Inbox;

/// The digests `inbox` received so far, as text.
fn digests(inbox: &Inbox) -> Vec<String> {
    inbox
        .mails()
        .iter()
        .map(|m| {
            m.text()
                // Quoted-printable soft breaks, should the body be encoded so.
                .replace("=\r\n", "")
                .replace("=3D", "=")
        })
        .filter(|m| m.contains("Subject: nudge weekly digest"))
        .collect()
}

/// The probe site with email over SMTP to `smtp` and a digest on
/// Mondays at 8:00 in Paris (07:00 UTC in winter).
fn site(smtp: SocketAddr) -> Site {
    let site = Site::probe();
    let config = std::fs::read_to_string(site.config()).unwrap();
    let config = config.replace(
        "[channels.email]\ntransport = \"file\"\npath = \"out/email.jsonl\"\n",
        &format!(
            "[channels.email]\ntransport = \"smtp\"\nhost = \"{}\"\nport = {}\nsecurity = \"plain\"\n\
             from = \"Dana Ruiz <jobs@example.com>\"\n",
            smtp.ip(),
            smtp.port()
        ),
    );
    site.write(
        "nudge.toml",
        &format!(
            "{config}\n[digest]\nschedule = \"0 8 * * MON\"\ntimezone = \"Europe/Paris\"\n\
             to = [\"lead@example.com\"]\n"
        ),
    );
    site
}

#[test]
fn a_digest_due_while_down_goes_once_with_the_funnel_and_a_restart_does_not_repeat_it() {
    let inbox = Inbox::default();
    let site = site(inbox.start());
    // Monday 2026-11-30, 06:50 UTC; a virtual minute each real second.
    let clock = VirtualClock::new("2026-11-30T06:50:00Z", 60.0);

    let daemon = site.start(Some(&clock));
    site.enroll("d1", "Ana", "d1@example.com");
    site.enroll("d2", "Ben", "d2@example.com");
    let shown = site.ok(&["digest"]);
    assert!(
        shown.contains("next due: 2026-11-30T07:00:00Z"),
        "the first start schedules the next Monday 8:00 in Paris:\n{shown}"
    );
    assert!(shown.contains("to: lead@example.com"), "{shown}");
    // The invitations go before the digest is due.
    wait_for(|| (inbox.mails().len() >= 2).then_some(())).expect("two invitations");
    daemon.stop();
    assert!(digests(&inbox).is_empty(), "nothing was due yet");

    // Down over 07:00; then started again: the digest goes once.
    let past_due = clock.origin_real + Duration::from_millis(11_500);
    if let Ok(wait) = past_due.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(wait);
    }
    let daemon = site.start(Some(&clock));
    let digest = wait_for(|| digests(&inbox).pop()).expect("the digest arrives after the start");
    assert!(digest.contains("lead@example.com"), "{digest}");
    let funnel: Vec<Vec<&str>> = digest
        .lines()
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert!(
        funnel.contains(&vec!["enrolled", "2"]),
        "the funnel counts both enrollments:\n{digest}"
    );
    assert!(funnel.contains(&vec!["invited", "2"]), "{digest}");
    assert!(digest.contains("2 enrolled"), "{digest}");

    // Recorded as sent: a restart right after does not send it again, and
    // the next is a week on.
    daemon.stop();
    let daemon = site.start(Some(&clock));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(digests(&inbox).len(), 1, "one digest, however many starts");
    let shown = site.ok(&["digest"]);
    assert!(shown.contains("next due: 2026-12-07T07:00:00Z"), "{shown}");
    let text = site.ok(&["digest", "--now"]);
    assert!(text.starts_with("Subject: nudge weekly digest"), "{text}");
    assert!(text.contains("enrolled"), "{text}");
    daemon.stop();

    // Another schedule: the waiting digest moves to its next instant
    // (Friday 9:00 in Paris).
    let config = std::fs::read_to_string(site.config()).unwrap();
    site.write(
        "nudge.toml",
        &config.replace("schedule = \"0 8 * * MON\"", "schedule = \"0 9 * * FRI\""),
    );
    let daemon = site.start(Some(&clock));
    let moved = wait_for(|| {
        let shown = site.ok(&["digest"]);
        shown
            .contains("next due: 2026-12-04T08:00:00Z")
            .then_some(())
    });
    assert!(moved.is_some(), "{}", site.ok(&["digest"]));
    assert_eq!(digests(&inbox).len(), 1);
    daemon.stop();
}

#[test]
fn a_bad_digest_table_is_refused_at_its_keys_naming_what_is_wrong() {
    let text = "[digest]\nschedule = \"0 8 * MON\"\ntimezone = \"Europe/Pariss\"\nto = [\"lead@example.com\", \"lead\"]\n";
    let error = nudge::config::parse_str("nudge.toml", text)
        .expect_err("the digest cannot work")
        .render(false);
    for expected in [
        "`digest.schedule`: `0 8 * MON` has 4 fields",
        " --> nudge.toml:2:12",
        "`digest.timezone` is `Europe/Pariss`, not an IANA time zone",
        " --> nudge.toml:3:12",
        "`digest.to` has `lead`, which is not one email address",
    ] {
        assert!(error.contains(expected), "no `{expected}` in\n{error}");
    }
    let unknown = nudge::config::parse_str(
        "nudge.toml",
        "[digest]\nschedule = \"0 8 * * MON\"\nto = [\"a@example.com\"]\nevery = \"week\"\n",
    )
    .expect_err("an unknown key")
    .render(false);
    assert!(unknown.contains("unknown field `every`"), "{unknown}");
}
