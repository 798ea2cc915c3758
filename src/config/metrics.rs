//! The `[metrics]` table: who may read `GET /metrics`, the Prometheus
//! text served on the admin API's (loopback) listener.

use serde::{Deserialize, Serialize};

/// The `[metrics]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether `GET /metrics` asks for the admin token, as every admin
    /// route does (`Authorization: Bearer TOKEN`; Prometheus sends it with
    /// `authorization: { credentials_file: ... }`). `false` serves it to
    /// anyone who reaches the admin listener, which is always a loopback
    /// address: for a scraper on the same machine that cannot hold the
    /// token (default `true`).
    #[serde(default = "default_token")]
    pub token: bool,
}

fn default_token() -> bool {
    true
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            token: default_token(),
        }
    }
}
