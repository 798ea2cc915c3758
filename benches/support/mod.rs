//! Helpers the benchmarks share (each benchmark is a crate of its own and
//! takes this file in with `#[path]`).
#![allow(dead_code)]

use std::net::TcpListener;

/// A number from the environment, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A site folder for a benchmark: the campaign `bench` from `campaign`,
/// its invite template, and `nudge.toml` with `config`.
pub fn site_files(dir: &std::path::Path, campaign: &str, config: &str) {
    for sub in ["campaigns", "templates"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("campaigns/bench.nudge"), campaign).unwrap();
    std::fs::write(
        dir.join("templates/invite.email.j2"),
        "Subject: Your interview\n\nHi, here is your link: {{ link }}\n",
    )
    .unwrap();
    std::fs::write(dir.join("nudge.toml"), config).unwrap();
}
