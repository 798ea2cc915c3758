//! The commented configuration `nudge init` writes; its tests keep it
//! equal to [`Config::default`] and showing every setting.

pub fn starter_toml() -> String {
    STARTER.to_string()
}

const STARTER: &str = r#"# nudge.toml: configuration for nudge. Every setting is optional; each is
# shown here with its default. Relative paths are relative to this file's
# folder.

# The sled store folder: candidates, enrollments, timers, the outbox and the
# event log.
store = "nudge-data"

# The folder of campaign files (*.nudge).
campaigns = "campaigns"

# The folder of message templates.
templates = "templates"

# The company name, {{ company }} in templates.
company = "Example Co"

# Who signs the messages, {{ sender }} in templates: a person's name, as
# the templates say "I'm {{ sender }}" and "{{ sender }} at {{ company }}".
sender = "Alex"

# Where a candidate's tracked link ({{ link }} in templates, which is
# [server] public_url + /i/TOKEN) takes them when their campaign has no
# `link` setting: the interview platform. {token}, {candidate} and
# {campaign} are filled in. Without it the link shows nudge's own page
# saying the interview is not connected yet.
# interview_url = "https://interview.example.com/start?t={token}"

# The global switch: "off" stops every candidate message; each send is
# recorded as suppressed and nothing leaves the machine.
communications = "on"

# The country calling code that completes phone numbers written without one
# when candidates are enrolled ("1" for North America, "44" for the UK).
# Without it, every number must start with + (or 00).
# phone_country_code = "1"

[admin]
# The address the admin API listens on. It must be a loopback address: the
# admin API is not for the open internet.
listen = "127.0.0.1:7777"

# The name of an environment variable holding the admin token, of at least 32
# characters. Without it (or when the variable is unset or empty) a token of
# 64 is generated into <store>/admin-token, readable by you only, and read
# from there.
# token_env = "NUDGE_ADMIN_TOKEN"

[server]
# The public server: candidate pages (the tracked link, the open pixel,
# unsubscribe, the apply form) and provider webhooks. Keep it on loopback
# behind a reverse proxy with TLS; port 0 takes any free port.
listen = "127.0.0.1:8080"

# The address people and providers reach it at, without a path. Every
# tracked link is public_url/i/TOKEN.
public_url = "http://127.0.0.1:8080"

# How long a request may take, in seconds (1 to 300).
timeout_secs = 15

# How each channel's messages leave: transport "console" prints them,
# "file" appends them as JSON lines to `path` (path = "outbox/email.jsonl"),
# "null" drops them (for benchmarks). SMS and WhatsApp can go through
# "twilio" (account_sid, auth_token_env, from or messaging_service_sid;
# optional base_url, status_callback, timeout_secs from 1 to 300), and any
# channel to "http": a signed JSON POST to `url`, with the secret in the
# environment variable `secret_env`. Secrets never go in this file. Those URLs
# must be https://, or http:// to this machine; `plain_http = "allowed"` in
# the channel's table lets them be plain http to another host.

[channels.email]
transport = "console"
# Email through an SMTP server instead (the password is read from the
# environment variable named by password_env, never from this file):
# transport = "smtp"
# host = "smtp.example.com"
# security = "starttls"          # "plain", "starttls" (port 587) or "tls" (465)
# port = 587                     # optional: the usual port of `security` when left out
# tls_ca_path = "private-ca.pem" # roots to trust besides the public ones
# username = "jobs@example.com"
# password_env = "NUDGE_SMTP_PASSWORD"
# from = "Dana Ruiz <jobs@example.com>"
# reply_to = "Dana Ruiz <dana@example.com>"
# pool_size = 8                  # connections used at once, 1 to 64
# timeout_secs = 30              # 1 to 600
# hello_name = "mail.example.com" # optional: the name given in EHLO (default: this machine's)
# DKIM signing (optional): the key is PEM, PKCS#8 ("BEGIN PRIVATE KEY", as
# `openssl genpkey` writes) or PKCS#1; algorithm is "rsa" (the default,
# checked by every receiver) or "ed25519".
# dkim = { domain = "example.com", selector = "nudge", private_key_path = "dkim.pem", algorithm = "rsa" }
# [channels.email.campaigns.warehouse_associate]
# from = "Dallas DC Hiring <dallas-jobs@example.com>"

[channels.sms]
transport = "console"

[channels.whatsapp]
transport = "console"

[channels.webhook]
transport = "console"

[runtime]
# Sends in flight at once per channel, from 1 to 1024.
concurrency = 16

# Timers fired per batch, from 1 to 65536.
batch = 1024

# A timer found more than this many seconds late (after downtime, say) runs
# at the current time instead of its due time, so a long outage never sends
# at a stale hour. From 0 to 315360000 (ten years).
catch_up_secs = 900

# A send that could only go more than this many seconds after it was due
# (after downtime, a long retry, a paced backlog) is skipped as `late`, never
# sent; so is one due before the candidate's deadline that could only go
# after it. From 60 to 31536000 (a year).
stale_after_secs = 43200

# Deliveries tried in all before a send that keeps failing for a passing
# reason (a timeout, a 4xx from SMTP, a 5xx or 429 from an API) is given up
# and the next channel of the campaign tried. From 1 to 100.
max_attempts = 8

# The first retry waits up to this many seconds, each further one up to twice
# as long (a random time below that: full jitter), never more than the cap:
# the base from 1 to 86400 (a day), the cap from the base to 604800 (a week).
retry_base_secs = 30
retry_cap_secs = 3600

# Prune the history of candidates who finished every campaign this many days
# after they finished, keeping their outcome; kept forever when unset.
# history_days = 365

# The pace each channel may be fed at, in any second (1 to 10000) and any
# minute (1 to 600000); no limit where unset. For example:
# [rates.sms]
# per_second = 10
# per_minute = 300

[webhooks]
# Signals from the interview platform and the providers, at public_url +
# /v1/webhooks/... (see the README). Secrets never go in this file: name the
# environment variables holding them.
# The secret the interview platform signs its events with, as nudge's own
# webhook channel signs (X-Nudge-Timestamp, X-Nudge-Signature).
# interview_secret_env = "NUDGE_INTERVIEW_SECRET"

# How far a signed request's timestamp may be from now, in seconds (10 to 3600).
tolerance_secs = 300

# The reply to a candidate who texts HELP. Twilio's requests are checked with
# the auth token of [channels.sms] (or [channels.whatsapp]).
sms_help = "These messages are about your job application. Reply STOP to stop them, START to get them again."

# The basic-auth password (or ?token=) in the webhook URLs given to Postmark
# and SendGrid.
# postmark_secret_env = "NUDGE_POSTMARK_SECRET"
# sendgrid_secret_env = "NUDGE_SENDGRID_SECRET"
# The verification key of SendGrid's signed event webhook (a public key): with
# it, every SendGrid post must carry a valid signature.
# sendgrid_verification_key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE..."

[report]
# The red flags of `nudge report`: each is raised when its rate passes its
# threshold (a fraction from 0 to 1) over at least its base of enrollments.
# Opened among those first invited by email, below:
low_open_rate = 0.2
low_open_rate_base = 50
# Completed among those who started the interview, below:
high_start_low_completion = 0.5
high_start_low_completion_base = 30
# Bounced among those sent to on a channel, above (per channel):
high_bounce_rate = 0.05
high_bounce_rate_base = 50
# Opted out among those enrolled, above:
high_opt_out_rate = 0.02
high_opt_out_rate_base = 100
# A send failed among those invited, above:
high_failure_rate = 0.05
high_failure_rate_base = 50

[metrics]
# GET /metrics on the admin listener (Prometheus text). With `true` it asks for
# the admin token like every admin route; `false` serves it to anything on
# this machine (the admin listener is loopback only).
token = true

# The weekly digest: each campaign's funnel, experiment verdicts and red flags
# by email to recruiters, through [channels.email] (printed by the console
# transport). `nudge digest --now` shows it as it would go now.
# [digest]
# schedule = "0 8 * * MON"      # cron: minute hour day-of-month month day-of-week
# timezone = "Europe/London"    # the schedule is read in this zone (default UTC)
# to = ["lead@example.com"]
# campaigns = ["warehouse"]     # default: every campaign

[decided]
# How often, in seconds, the daemon reads the table of each `until decided`
# experiment not yet decided (and once when it starts):
every_secs = 60
# The planned enrollments per comparison of the always-valid interval the
# decision is taken on (as `nudge report --plan`):
plan = 1000

[dashboard]
# The live dashboard at http://<admin listen>/dashboard: log in with the admin
# token, or a name and password listed below.
# Seconds between two refreshes of its numbers (2 to 3600).
refresh_secs = 10
# Hours a login lasts (1 to 720).
session_hours = 12
# The zone "today" begins in, for today's sends.
timezone = "UTC"
# Read its numbers as the daemon starts, so the first look (and the first
# report through the daemon) does not wait; costs memory: about 75 MB per
# million candidates, and a store cache filled by the reading.
read_at_start = false
# Name = the password's Argon2 hash, as `nudge dashboard-user NAME` prints it.
# [dashboard.users]
# ana = "$argon2id$v=19$m=19456,t=2,p=1$..."
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, Config, FILE_NAME};

    #[test]
    fn starter_parses_to_the_defaults() {
        let config = parse_str(FILE_NAME, &starter_toml()).unwrap();
        assert_eq!(config, Config::default());
    }

    /// Every setting the defaults serialize is spelled out in the starter,
    /// and it sets nothing else, so a new field cannot go undocumented.
    #[test]
    fn starter_shows_every_setting() {
        fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
            for (key, value) in table {
                let path = format!("{prefix}{key}");
                match value {
                    toml::Value::Table(inner) => keys(inner, &format!("{path}."), out),
                    _ => out.push(path),
                }
            }
        }
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let starter: toml::Table = toml::from_str(STARTER).unwrap();
        let (mut expected, mut written) = (Vec::new(), Vec::new());
        keys(&defaults, "", &mut expected);
        keys(&starter, "", &mut written);
        expected.sort();
        written.sort();
        assert_eq!(written, expected);
        assert!(STARTER.contains("\n# token_env = "));
    }

    /// Every setting of the SMTP transport and of its `dkim` table is
    /// shown, commented out, in the starter's `[channels.email]`.
    #[test]
    fn starter_shows_every_smtp_setting() {
        use crate::config::{DkimSettings, SenderSettings, SmtpConfig};
        let smtp = SmtpConfig {
            host: "h".into(),
            port: Some(1),
            security: Default::default(),
            tls_ca_path: Some("ca.pem".into()),
            username: Some("u".into()),
            password_env: Some("P".into()),
            from: "f".into(),
            reply_to: Some("r".into()),
            pool_size: 1,
            timeout_secs: 1,
            hello_name: Some("n".into()),
            dkim: Some(DkimSettings {
                domain: "d".into(),
                selector: "s".into(),
                private_key_path: "k".into(),
                algorithm: Default::default(),
            }),
            campaigns: [(
                "c".to_string(),
                SenderSettings {
                    from: None,
                    reply_to: None,
                },
            )]
            .into(),
        };
        let table = toml::Table::try_from(smtp).unwrap();
        let dkim = table["dkim"].as_table().unwrap();
        for key in table.keys().filter(|k| *k != "campaigns") {
            assert!(STARTER.contains(&format!("\n# {key} = ")), "{key}");
        }
        let line = STARTER
            .lines()
            .find(|l| l.starts_with("# dkim = "))
            .unwrap();
        for key in dkim.keys() {
            assert!(line.contains(&format!(" {key} = ")), "dkim.{key}");
        }
    }
}
