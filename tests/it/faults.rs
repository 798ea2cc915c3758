//! The real daemon when its store fails under it: writes that fail (a full
//! disk, an I/O error on write or on flush) and writes that never return (a
//! stalled disk). Every caller is answered, health and status say why,
//! nothing acknowledged is lost, the same process resumes once writing
//! works again, and SIGTERM still stops it.
//!
//! Faults are injected through `NUDGE_STORE_FAULTS` (a file whose word the
//! store reads before each write), and a full disk is also made for real on
//! a small tmpfs where the test may mount one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration as StdDuration;

use crate::support::site::*;
use crate::support::{stderr, stdout};

/// A CLI command that must end by itself (a wedged daemon would hold it).
fn answered(site: &Site, args: &[&str]) -> Output {
    ends(site.command(args), args)
}

fn ends(mut command: Command, what: &[&str]) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ended = wait_for(|| child.try_wait().unwrap());
    if ended.is_none() {
        let _ = child.kill();
        panic!("`nudge {}` got no answer", what.join(" "));
    }
    child.wait_with_output().unwrap()
}

fn enroll(site: &Site, id: &str) -> Output {
    let email = format!("{id}@example.com");
    ends(
        site.enroll_command(id, "Ana Ruiz", &email, &[]),
        &["enroll", id],
    )
}

fn enroll_over_api(site: &Site, id: &str) -> (u16, String) {
    let body = format!(
        r#"{{"campaign": "probe", "external_id": "{id}", "fields": {{"name": "Ana Ruiz", "email": "{id}@example.com"}}}}"#
    );
    http(site.port, "POST", "/v1/enroll", Some(&site.token()), &body)
}

/// Waits until the candidate enrolled as `id` was sent the first message.
fn wait_pinged(site: &Site, id: &str) {
    let to = format!("{id}@example.com");
    wait_for(|| {
        site.sent()
            .iter()
            .any(|(m, _)| m.to == to && m.template == "ping")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("{id} was never sent ping: {:?}", site.sent()));
}

fn health(site: &Site) -> (u16, String) {
    http(site.port, "GET", "/v1/health", Some(&site.token()), "")
}

fn known(site: &Site, id: &str) -> bool {
    let out = answered(site, &["show", id]);
    out.status.success()
}

/// While writes fail: every way in answers at once that nothing was
/// recorded, and why.
fn assert_refused_while_failing(site: &Site, id: &str, cause: &str) {
    let out = enroll(site, id);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not recorded") && err.contains(cause),
        "the refusal says why: {err}"
    );
    let (status, body) = enroll_over_api(site, &format!("{id}-api"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cannot be written"), "{body}");
    let (status, body) = health(site);
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(r#""ok":false"#) && body.contains(cause),
        "{body}"
    );
    let out = answered(site, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("STORE NOT WRITABLE"),
        "{}",
        stdout(&out)
    );
    // The refused change may sit in the store's memory until it resumes:
    // shown, it comes with the warning.
    let out = answered(site, &["show", id]);
    if out.status.success() {
        let shown = stdout(&out);
        assert!(
            shown.starts_with("STORE NOT WRITABLE") && shown.contains("never acknowledged"),
            "{shown}"
        );
    }
}

/// After writes fail with `word`, the same process resumes when they work.
fn failed_writes_resume(word: &str, cause: &str) {
    let site = Site::probe();
    let daemon = site.start_faulty();
    let pid = daemon.child.id();
    for id in ["a1", "a2"] {
        let out = enroll(&site, id);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    site.set_fault(word);
    let mark = daemon.mark();
    assert_refused_while_failing(&site, "b1", cause);
    let line = daemon.wait_line(mark, &["ERROR", cause]);
    assert!(line.contains("could not be written"), "{line}");

    site.set_fault("none");
    wait_for(|| (health(&site).0 == 200).then_some(()))
        .unwrap_or_else(|| panic!("never writable again:\n{}", daemon.log()));
    daemon.wait_line(mark, &["can be written again"]);
    let out = enroll(&site, "d1");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(daemon.child.id(), pid);
    for id in ["a1", "a2", "d1"] {
        assert!(known(&site, id), "{id} was acknowledged and is kept");
    }
    if word == "fail" {
        // Failed before anything was written: not there.
        assert!(!known(&site, "b1"));
    }
    // Sends go on once the store can write.
    wait_pinged(&site, "d1");
    daemon.stop();
}

#[test]
fn a_write_that_fails_is_answered_at_once_and_the_daemon_resumes_by_itself() {
    failed_writes_resume("fail", "No space left on device");
}

#[test]
fn a_flush_that_fails_is_answered_at_once_and_the_daemon_resumes_by_itself() {
    failed_writes_resume("fail-flush", "Input/output error");
}

#[test]
fn a_stalled_write_answers_callers_and_sigterm_still_stops_the_daemon() {
    let site = Site::probe();
    let daemon = site.start_faulty();
    let out = enroll(&site, "a1");
    assert!(out.status.success(), "{}", stderr(&out));

    site.set_fault("stall");
    // This one is caught inside the write; it is answered all the same.
    let out = enroll(&site, "b1");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("has not finished"),
        "{}",
        stderr(&out)
    );
    let (status, body) = health(&site);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stalled"), "{body}");
    let (status, body) = enroll_over_api(&site, "b2");
    assert_eq!(status, 503, "{body}");

    let asked = std::time::Instant::now();
    daemon.signal("TERM");
    let (status, log) = daemon.wait_exit();
    let took = asked.elapsed();
    assert!(
        !status.success(),
        "a stop that could not finish says so:\n{log}"
    );
    assert!(log.contains("did not stop in time"), "{log}");
    assert!(
        took < StdDuration::from_secs(15),
        "SIGTERM took {took:?} with the store stuck:\n{log}"
    );

    // The disk comes back: the next start finds everything acknowledged.
    site.set_fault("none");
    let daemon = site.start_faulty();
    assert!(known(&site, "a1"));
    wait_pinged(&site, "a1");
    daemon.stop();
}

/// A tmpfs of `bytes` mounted on `dir` for as long as it lives.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// None when this process may not mount (not root, or no mount
    /// namespace rights).
    fn mount(dir: &Path, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_for_real_is_answered_and_the_daemon_resumes_when_space_returns() {
    let site = Site::probe();
    let Some(_disk) = SmallDisk::mount(&site.store(), 6 << 20) else {
        // The injected fault above covers the same path; this one needs
        // root to mount a filesystem small enough to fill.
        eprintln!("SKIPPED a_full_disk_for_real: cannot mount a tmpfs here (not root)");
        return;
    };
    let daemon = site.start(None);
    let out = enroll(&site, "k0");
    assert!(out.status.success(), "{}", stderr(&out));
    // Leave a few hundred KiB, then enroll until the disk is full.
    let free = free_bytes(&site.store());
    let filler = site.store().join("filler");
    std::fs::write(&filler, vec![0u8; free.saturating_sub(300 << 10) as usize]).unwrap();
    let mut acknowledged = vec!["k0".to_string()];
    let mut refused = None;
    for i in 1..5000 {
        let id = format!("k{i}");
        let out = enroll(&site, &id);
        if out.status.success() {
            acknowledged.push(id);
        } else {
            refused = Some(stderr(&out));
            break;
        }
    }
    let refused = refused.expect("the disk never filled");
    assert!(refused.contains("No space left on device"), "{refused}");
    assert_refused_while_failing(&site, "full", "No space left on device");

    std::fs::remove_file(&filler).unwrap();
    wait_for(|| (health(&site).0 == 200).then_some(()))
        .unwrap_or_else(|| panic!("never writable again:\n{}", daemon.log()));
    let out = enroll(&site, "after");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = answered(&site, &["status", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let waiting: i64 = report["campaigns"][0]["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[1].as_i64().unwrap())
        .sum::<i64>();
    assert!(
        waiting > acknowledged.len() as i64,
        "{waiting} candidates, {} acknowledged before the disk filled",
        acknowledged.len()
    );
    for id in acknowledged.iter().step_by(25) {
        assert!(known(&site, id), "{id} was acknowledged");
    }
    daemon.stop();
}

/// Bytes free on `path`'s filesystem, as `df` reports them.
fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    stdout(&out)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df prints the free bytes")
}

#[test]
fn a_channel_that_panics_fails_that_send_and_it_is_retried() {
    let site = Site::probe();
    let config = std::fs::read_to_string(site.config()).unwrap();
    site.write(
        "nudge.toml",
        &config.replace("[runtime]\n", "[runtime]\nretry_base_secs = 1\n"),
    );
    let fault = site.path().join("channel-fault");
    std::fs::write(&fault, "panic").unwrap();
    let daemon = site.start_env("NUDGE_CHANNEL_FAULTS", &fault);
    let mark = daemon.mark();
    let out = enroll(&site, "a1");
    assert!(out.status.success(), "{}", stderr(&out));
    let line = daemon.wait_line(mark, &["ERROR", "failed inside nudge"]);
    assert!(line.contains("retried"), "{line}");
    assert_eq!(health(&site).0, 200, "one send failing is not the store");

    std::fs::write(&fault, "none").unwrap();
    wait_pinged(&site, "a1");
    let pings = site
        .sent()
        .iter()
        .filter(|(m, _)| m.to == "a1@example.com" && m.template == "ping")
        .count();
    assert_eq!(pings, 1);
    let out = answered(&site, &["show", "a1"]);
    assert!(
        stdout(&out).contains("failed inside nudge"),
        "the history says what happened: {}",
        stdout(&out)
    );
    daemon.stop();
}
