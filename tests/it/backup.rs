//! Backups through the real binary: `nudge backup` while the daemon runs,
//! more deliveries, the daemon stopped, `nudge restore`, and a new run:
//! nothing delivered after the backup is delivered again, and what the
//! backup did not hold (a later enrollment) is gone, as the README says.

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use super::damage::{Site, LATER, ORIGIN};
use super::support::{stderr, stdout};

#[test]
fn a_restored_backup_repeats_no_delivery_made_after_it() {
    let site = Site::new();
    let daemon = site.start(ORIGIN).expect("the daemon starts");
    site.enroll(0..4);
    site.wait_delivered(4);
    let backup = site.path().join("backup");
    let out = site.nudge(&["backup", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("through the running daemon"),
        "{}",
        stdout(&out)
    );
    let at_backup = site.delivered().len();
    site.enroll(4..6);
    site.wait_delivered(18);
    let refused = site.nudge(&["restore", backup.to_str().unwrap()]);
    assert!(!refused.status.success(), "restored under a running daemon");
    assert!(
        stderr(&refused).contains("stop the daemon"),
        "{}",
        stderr(&refused)
    );
    daemon.stop();
    let delivered: BTreeSet<String> = site.delivered().into_iter().collect();
    assert_eq!(delivered.len(), 18, "each message once");
    assert!(at_backup < 18, "every delivery came before the backup");

    let out = site.nudge(&["restore", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let verify = site.nudge(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    // Enrolled after the backup: lost with the restore.
    let show = site.nudge(&["show", "ext5"]);
    assert!(!show.status.success(), "{}", stdout(&show));

    // A fresh channel file: any delivery now is one made twice.
    std::fs::remove_file(site.path().join("out/email.jsonl")).unwrap();
    let daemon = site.start(LATER).expect("the restored store runs");
    std::thread::sleep(StdDuration::from_secs(3));
    daemon.stop();
    assert_eq!(
        site.delivered(),
        Vec::<String>::new(),
        "delivered again after the restore"
    );
    let status = site.nudge(&["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
}

#[test]
fn a_backup_without_a_daemon_is_a_store_that_verifies() {
    let site = Site::new();
    site.enroll(0..3);
    let backup = site.path().join("copy");
    let out = site.nudge(&["backup", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("store opened directly"),
        "{}",
        stdout(&out)
    );
    let verify = site.nudge(&["verify", "--store", backup.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains("3 candidates"),
        "{}",
        stdout(&verify)
    );
    let again = site.nudge(&["backup", backup.to_str().unwrap()]);
    assert!(!again.status.success(), "wrote over a backup");
}
