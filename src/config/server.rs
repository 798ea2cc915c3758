//! The `[server]` table: the public HTTP server of candidate pages and
//! provider webhooks (the tracked link, the open pixel, unsubscribe, the
//! apply form, signed webhooks), and the address people reach it at.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The `[server]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address the public server listens on (default
    /// `127.0.0.1:8080`). In production it stays on loopback behind a TLS
    /// reverse proxy; port 0 takes any free port (for tests; the port is
    /// logged).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The address people and providers reach the server at, `http://` or
    /// `https://` without a path: the tracked link in messages is
    /// `public_url/i/TOKEN` (default `http://127.0.0.1:8080`).
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// How long a request may take, in seconds, 1 to 300 (default 15).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

/// The bounds of [`ServerConfig::timeout_secs`].
pub const TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=300;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: default_public_url(),
            timeout_secs: default_timeout(),
        }
    }
}

impl ServerConfig {
    /// The public URL without a trailing `/`.
    pub fn base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    /// The tracked link pattern: `{token}` stands for a candidate's token.
    pub fn tracked_link(&self) -> String {
        format!("{}/i/{{token}}", self.base())
    }

    /// Why `public_url` is not a usable base address, if it is not.
    pub fn public_url_problem(&self) -> Option<String> {
        let url = self.public_url.trim();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let Some(rest) = rest else {
            return Some("it must start with `https://` or `http://`".into());
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() {
            return Some("it names no host".into());
        }
        if host.contains(['/', '?', '#']) {
            return Some(
                "it must be the server's address only, without a path: nudge adds `/i/TOKEN`, `/apply/CAMPAIGN`, ...".into(),
            );
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Some("it contains a space or a control character".into());
        }
        None
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))
}

fn default_public_url() -> String {
    "http://127.0.0.1:8080".to_string()
}

fn default_timeout() -> u64 {
    15
}

/// The placeholders an interview address may hold.
pub const LINK_PLACEHOLDERS: [&str; 3] = ["{token}", "{candidate}", "{campaign}"];

/// Why `pattern` is not a usable interview address (`interview_url`, or a
/// campaign's `link`), if it is not.
pub fn link_pattern_problem(pattern: &str) -> Option<String> {
    if !(pattern.starts_with("https://") || pattern.starts_with("http://")) {
        return Some("must start with `https://` or `http://`".into());
    }
    if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains a space or a control character".into());
    }
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        match LINK_PLACEHOLDERS.iter().find(|p| after.starts_with(**p)) {
            Some(p) => rest = &after[p.len()..],
            None => {
                let name: String = after.chars().take_while(|c| *c != '}').collect();
                return Some(format!(
                    "has `{name}}}`, which nudge does not fill in (it fills in {})",
                    LINK_PLACEHOLDERS.join(", ")
                ));
            }
        }
    }
    None
}

/// `pattern` with its placeholders filled in, each value percent-encoded
/// so that it stays one piece of the address.
pub fn fill_link(pattern: &str, token: &str, candidate: &str, campaign: &str) -> String {
    let encode = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    pattern
        .replace("{token}", &encode(token))
        .replace("{candidate}", &encode(candidate))
        .replace("{campaign}", &encode(campaign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interview_addresses_take_only_the_three_placeholders_and_fill_them_encoded() {
        assert_eq!(
            link_pattern_problem("https://i.example/s?t={token}&c={campaign}"),
            None
        );
        assert!(link_pattern_problem("https://i.example/{tokn}")
            .unwrap()
            .contains("{tokn}"));
        assert!(link_pattern_problem("ftp://i.example/").is_some());
        assert_eq!(
            fill_link(
                "https://i.example/{campaign}/{candidate}?t={token}",
                "ab12",
                "c 1/2",
                "night_shift"
            ),
            "https://i.example/night_shift/c%201%2F2?t=ab12"
        );
    }

    #[test]
    fn the_public_url_is_an_address_without_a_path() {
        let mut s = ServerConfig::default();
        assert_eq!(s.public_url_problem(), None);
        assert_eq!(s.tracked_link(), "http://127.0.0.1:8080/i/{token}");
        s.public_url = "https://jobs.example.com/".into();
        assert_eq!(s.public_url_problem(), None);
        assert_eq!(s.tracked_link(), "https://jobs.example.com/i/{token}");
        s.public_url = "https://jobs.example.com/nudge".into();
        assert!(s.public_url_problem().is_some());
        s.public_url = "jobs.example.com".into();
        assert!(s.public_url_problem().is_some());
    }
}
