//! An independent DKIM verifier for the tests: dkimpy, run by `python3`
//! in a child process, with a DNS function that answers the selector's
//! query with the test key's TXT record (`tests/it/fixtures/smtp/*.txt`).
//!
//! A machine without dkimpy (or PyNaCl, which it needs for Ed25519) fails
//! the test with the command that installs them: a signature nobody
//! checked is not a passing test.

use std::io::Write;
use std::process::{Command, Stdio};

/// Verifies the first DKIM signature of `message`; exits 0 when it
/// verifies, 1 when it does not (dkimpy's log on stderr says why), 2 when
/// dkimpy cannot be imported.
const VERIFY: &str = r#"
import logging, os, sys
try:
    import dkim
    import nacl.signing
except ImportError as e:
    sys.stderr.write("cannot import %s: install dkimpy with `python3 -m pip install dkimpy pynacl`\n" % e.name)
    sys.exit(2)
record = os.environ["DKIM_TXT"].encode()
expected = os.environ["DKIM_NAME"]
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    if name.rstrip(".") != expected:
        sys.stderr.write("the verifier asked for %s, not %s\n" % (name, expected))
        return None
    return record
logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="dkimpy: %(message)s")
ok = dkim.verify(sys.stdin.buffer.read(), logger=logging.getLogger("dkim"), dnsfunc=dnsfunc)
sys.exit(0 if ok else 1)
"#;

/// A DKIM public key as published: where, and the TXT record.
pub struct PublicKey {
    /// `<selector>._domainkey.<domain>`.
    pub name: String,
    /// `v=DKIM1; k=rsa; p=...` or `k=ed25519`.
    pub record: String,
}

impl PublicKey {
    /// The record of the fixture key `file` (`dkim-test.pem` has its
    /// record in `dkim-test.txt`), published for `selector` at `domain`.
    pub fn fixture(file: &str, selector: &str, domain: &str) -> PublicKey {
        let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
        let path = super::repo().join(format!("tests/it/fixtures/smtp/{stem}.txt"));
        let record =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        PublicKey {
            name: format!("{selector}._domainkey.{domain}"),
            record: record.trim().to_string(),
        }
    }
}

/// Whether dkimpy verifies `message` (as received, without the SMTP
/// dot-stuffing) with `key`: `Ok` when it does, else dkimpy's account of
/// why not. Panics when python3 or dkimpy is missing.
pub fn verify(message: &[u8], key: &PublicKey) -> Result<(), String> {
    let mut child = Command::new("python3")
        .args(["-c", VERIFY])
        .env("DKIM_TXT", &key.record)
        .env("DKIM_NAME", &key.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 for dkimpy ({e}): install python3, then `python3 -m pip install dkimpy pynacl`")
        });
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(message)
        .expect("the message goes to dkimpy");
    let out = child.wait_with_output().expect("dkimpy finishes");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(2) => panic!("dkimpy is not installed: {log}"),
        _ => Err(log),
    }
}
