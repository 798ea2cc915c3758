//! The dashboard's login session: a cookie a browser sends back, since a
//! browser cannot send the admin token itself. Its value says who logged
//! in and until when, signed with HMAC-SHA256 under a key derived from the
//! admin token, so nothing is stored for it, a forged or altered cookie
//! does not verify, and changing the token ends every session.
//!
//! The value: `base64url(who) "." expiry "." hex(mac)`, expiry in Unix
//! milliseconds, the MAC over `base64url(who) "." expiry`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "nudge_dashboard";

/// Signs and checks session cookies.
#[derive(Clone)]
pub struct Sessions {
    key: [u8; 32],
    /// How long a session lasts, in milliseconds.
    lifetime_ms: i64,
}

impl Sessions {
    /// Sessions signed under a key derived from the admin `token`, each
    /// lasting `hours`.
    pub fn new(token: &str, hours: u64) -> Sessions {
        let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"nudge dashboard session v1");
        Sessions {
            key: mac.finalize().into_bytes().into(),
            lifetime_ms: i64::try_from(hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX),
        }
    }

    /// How long a session lasts, in seconds (the cookie's `Max-Age`).
    pub fn lifetime_secs(&self) -> i64 {
        self.lifetime_ms / 1000
    }

    /// A cookie value for `who`, logged in at `now_ms`.
    pub fn issue(&self, who: &str, now_ms: i64) -> String {
        let body = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(who),
            now_ms.saturating_add(self.lifetime_ms)
        );
        format!("{body}.{}", hex::encode(self.mac(&body)))
    }

    /// Who a cookie value names, if it is one [`Sessions::issue`] made
    /// under this key and it has not expired at `now_ms`.
    pub fn check(&self, value: &str, now_ms: i64) -> Option<String> {
        let (body, mac) = value.rsplit_once('.')?;
        let given = hex::decode(mac).ok()?;
        if !bool::from(given.as_slice().ct_eq(&self.mac(body))) {
            return None;
        }
        let (who, expiry) = body.split_once('.')?;
        if expiry.parse::<i64>().ok()? <= now_ms {
            return None;
        }
        String::from_utf8(URL_SAFE_NO_PAD.decode(who).ok()?).ok()
    }

    fn mac(&self, body: &str) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_who_until_it_expires() {
        let sessions = Sessions::new("t".repeat(40).as_str(), 2);
        let value = sessions.issue("ana", 1_000);
        assert_eq!(sessions.check(&value, 1_000).as_deref(), Some("ana"));
        assert_eq!(
            sessions.check(&value, 1_000 + 2 * 3_600_000 - 1).as_deref(),
            Some("ana")
        );
        assert_eq!(sessions.check(&value, 1_000 + 2 * 3_600_000), None);
    }

    #[test]
    fn altered_or_foreign_cookies_do_not_verify() {
        let sessions = Sessions::new("t".repeat(40).as_str(), 2);
        let value = sessions.issue("ana", 1_000);
        // Another name, a later expiry, another token's key.
        let (_, rest) = value.split_once('.').unwrap();
        let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode("admin"));
        assert_eq!(sessions.check(&forged, 1_000), None);
        let (body, mac) = value.rsplit_once('.').unwrap();
        let (who, _) = body.split_once('.').unwrap();
        assert_eq!(
            sessions.check(&format!("{who}.99999999999999.{mac}"), 1_000),
            None
        );
        let other = Sessions::new("u".repeat(40).as_str(), 2);
        assert_eq!(other.check(&value, 1_000), None);
        for junk in ["", ".", "a.b.c", "YW5h.5.zz"] {
            assert_eq!(sessions.check(junk, 1_000), None, "{junk}");
        }
    }
}
