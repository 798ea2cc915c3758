//! The configuration file and `nudge init`, through the library API:
//! defaults, path resolution, the exact rendered error for each kind of bad
//! file, the admin token, and the folder `nudge init` writes.

use crate::support::unindent;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nudge::config::{
    load, parse_str, starter_toml, Config, ConfigError, FileConfig, Transport, ADMIN_TOKEN_FILE,
    FILE_NAME,
};
use nudge::init::{init, InitError};

/// The text with trailing blanks removed from every line and the end.
fn trimmed(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_string()
}

#[test]
fn an_absent_file_means_the_defaults() {
    // Integration tests run in the package root, which holds no
    // `nudge.toml`.
    assert!(!Path::new(FILE_NAME).exists());
    assert!(std::env::var_os("NUDGE_CONFIG").is_none());
    let (config, file) = load(None).unwrap();
    assert_eq!(file, None);
    assert_eq!(config, Config::default());
    assert_eq!(parse_str(FILE_NAME, "").unwrap(), Config::default());
    assert_eq!(config.store, PathBuf::from("nudge-data"));
    assert_eq!(config.campaigns, PathBuf::from("campaigns"));
    assert_eq!(config.templates, PathBuf::from("templates"));
    assert_eq!(config.company, "Example Co");
    assert_eq!(config.sender, "Alex");
    assert_eq!(config.interview_url, None);
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        config.server.tracked_link(),
        "http://127.0.0.1:8080/i/{token}"
    );
    assert_eq!(config.admin.listen.to_string(), "127.0.0.1:7777");
    assert_eq!(config.admin.token_env, None);
    assert_eq!(config.channels.email, Transport::Console);
    assert_eq!(config.channels.webhook, Transport::Console);
    assert_eq!(config.runtime.concurrency, 16);
    assert_eq!(config.runtime.batch, 1024);
    assert_eq!(config.runtime.catch_up_secs, 900);

    // Named explicitly, a missing file is an error naming it.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join(FILE_NAME);
    let err = load(Some(&missing)).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read `{}`: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

#[test]
fn the_starter_is_the_defaults() {
    assert_eq!(
        parse_str(FILE_NAME, &starter_toml()).unwrap(),
        Config::default()
    );
}

#[test]
fn relative_paths_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site").join(FILE_NAME);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = r#"
        store = "/var/lib/nudge"
        templates = "../shared/templates"
        company = "Acme Logistics"

        [channels.email]
        transport = "file"
        path = "outbox/email.jsonl"

        [channels.sms]
        transport = "null"
    "#;
    fs::write(&path, unindent(text)).unwrap();
    let (config, file) = load(Some(&path)).unwrap();
    let site = dir.path().join("site");
    assert_eq!(file, Some(path.clone()));
    assert_eq!(config.store, PathBuf::from("/var/lib/nudge"));
    assert_eq!(config.campaigns, site.join("campaigns"));
    assert_eq!(config.templates, site.join("../shared/templates"));
    assert_eq!(config.company, "Acme Logistics");
    assert_eq!(
        config.channels.email,
        Transport::File(FileConfig {
            path: site.join("outbox/email.jsonl")
        })
    );
    assert_eq!(config.channels.sms, Transport::Null);
    assert_eq!(config.channels.whatsapp, Transport::Console);

    // A bare file name keeps paths relative to the current directory.
    let bare = Config::default().resolve(Path::new(""));
    assert_eq!(bare.store, PathBuf::from("nudge-data"));
}

#[track_caller]
fn assert_rendered(input: &str, expected: &str) {
    let err = parse_str(FILE_NAME, &unindent(input)).unwrap_err();
    let actual = err.render(false);
    assert_eq!(trimmed(&err.to_string()), trimmed(&actual));
    let expected = unindent(expected);
    if trimmed(&actual) != trimmed(&expected) {
        panic!("input:\n{input}\nexpected:\n{expected}\nactual:\n{actual}");
    }
}

macro_rules! case {
    ($name:ident, $input:expr, $expected:expr $(,)?) => {
        #[test]
        fn $name() {
            assert_rendered($input, $expected);
        }
    };
}

case!(
    unknown_key_with_a_suggestion,
    r#"
    store = "data"
    company = "Acme"
    compnay = "Acme Logistics"
    "#,
    r#"
    error: `compnay`: unknown field `compnay`, expected one of `store`, `campaigns`, `templates`, `company`, `sender`, `interview_url`, `phone_country_code`, `admin`, `server`, `runtime`, `communications`, `rates`, `webhooks`, `ats`, `metrics`, `digest`, `report`, `decided`, `dashboard`
     --> nudge.toml:3:1
      |
    3 | compnay = "Acme Logistics"
      | ^^^^^^^
    "#,
);

case!(
    unknown_key_in_a_table,
    r#"
    [runtime]
    concurency = 8
    "#,
    r#"
    error: `runtime.concurency`: unknown field `concurency`, expected one of `concurrency`, `batch`, `catch_up_secs`, `stale_after_secs`, `max_attempts`, `retry_base_secs`, `retry_cap_secs`, `history_days`
     --> nudge.toml:2:1
      |
    2 | concurency = 8
      | ^^^^^^^^^^
    "#,
);

case!(
    unknown_channel,
    r#"
    [channels.fax]
    transport = "console"
    "#,
    r#"
    error: unknown channel `channels.fax`
     --> nudge.toml:1:11
      |
    1 | [channels.fax]
      |           ^^^ not a channel
      |
      = help: expected one of `email`, `sms`, `whatsapp` or `webhook`
    "#,
);

case!(
    wrong_type,
    r#"
    [runtime]
    concurrency = "16"
    "#,
    r#"
    error: `runtime.concurrency`: invalid type: string "16", expected usize
     --> nudge.toml:2:15
      |
    2 | concurrency = "16"
      |               ^^^^
    "#,
);

case!(
    negative_number,
    r#"
    [runtime]
    catch_up_secs = -5
    "#,
    r#"
    error: `runtime.catch_up_secs`: invalid value: integer `-5`, expected u64
     --> nudge.toml:2:17
      |
    2 | catch_up_secs = -5
      |                 ^^
    "#,
);

case!(
    bad_toml_syntax_every_error,
    r#"
    store = "nudge-data
    company = Acme
    "#,
    r#"
    error: invalid TOML: invalid basic string, expected `"`
     --> nudge.toml:1:20
      |
    1 | store = "nudge-data
      |                    ^

    error: invalid TOML: string values must be quoted, expected literal string
     --> nudge.toml:2:11
      |
    2 | company = Acme
      |           ^^^^
    "#,
);

case!(
    admin_not_on_loopback,
    r#"
    [admin]
    listen = "0.0.0.0:7777"
    "#,
    r#"
    error: `admin.listen` is `0.0.0.0:7777`, not a loopback address
     --> nudge.toml:2:10
      |
    2 | listen = "0.0.0.0:7777"
      |          ^^^^^^^^^^^^^^ the admin API is not for the open internet
      |
      = help: use 127.0.0.1 or [::1], and a reverse proxy with TLS if others must reach it
    "#,
);

case!(
    interview_url_with_an_unknown_placeholder,
    r#"
    interview_url = "https://i.example.com/{tokn}"
    "#,
    r#"
    error: `interview_url` has `{tokn}`, which nudge does not fill in (it fills in {token}, {candidate}, {campaign})
     --> nudge.toml:1:17
      |
    1 | interview_url = "https://i.example.com/{tokn}"
      |                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ candidates are sent here from their tracked link
      |
      = help: give the interview's address, with `{token}`, `{candidate}` or `{campaign}` where they go, as in "https://interview.example.com/start?t={token}"
    "#,
);

case!(
    unknown_transport,
    r#"
    [channels.sms]
    transport = "pigeon"
    "#,
    r#"
    error: unknown transport `pigeon` for `channels.sms`
     --> nudge.toml:2:13
      |
    2 | transport = "pigeon"
      |             ^^^^^^^^ no such transport
      |
      = help: expected one of `console`, `file`, `null`, `twilio`, `http` or `smtp`
    "#,
);

case!(
    misspelt_transport,
    r#"
    channels.email = { transport = "consol" }
    "#,
    r#"
    error: unknown transport `consol` for `channels.email`
     --> nudge.toml:1:32
      |
    1 | channels.email = { transport = "consol" }
      |                                ^^^^^^^^ no such transport
      |
      = help: did you mean `console`?
    "#,
);

case!(
    file_transport_without_path,
    r#"
    [channels.email]
    transport = "file"
    "#,
    r#"
    error: `channels.email`: missing field `path`
     --> nudge.toml:1:1
      |
    1 | [channels.email]
      | ^^^^^^^^^^^^^^^^
    "#,
);

case!(
    setting_of_another_transport,
    r#"
    [channels.email]
    transport = "console"
    path = "outbox/email.jsonl"
    "#,
    r#"
    error: `channels.email.path`: unknown field `path`, there are no fields
     --> nudge.toml:3:1
      |
    3 | path = "outbox/email.jsonl"
      | ^^^^
    "#,
);

case!(
    a_stale_limit_out_of_range,
    r#"
    [runtime]
    stale_after_secs = 30
    "#,
    r#"
    error: `runtime.stale_after_secs` is 30; it must be from 60 to 31536000
     --> nudge.toml:2:20
      |
    2 | stale_after_secs = 30
      |                    ^^ out of range
      |
      = help: leave it out for the default, 43200
    "#,
);

case!(
    every_invalid_value_at_once,
    r#"
    [runtime]
    concurrency = 0
    batch = 0

    [channels.webhook]
    transport = "file"
    path = ""
    "#,
    r#"
    error: `runtime.concurrency` is 0; it must be from 1 to 1024
     --> nudge.toml:2:15
      |
    2 | concurrency = 0
      |               ^ out of range
      |
      = help: leave it out for the default, 16

    error: `runtime.batch` is 0; it must be from 1 to 65536
     --> nudge.toml:3:9
      |
    3 | batch = 0
      |         ^ out of range
      |
      = help: leave it out for the default, 1024

    error: `channels.webhook.path` is empty
     --> nudge.toml:7:8
      |
    7 | path = ""
      |        ^^ no file to write to
      |
      = help: name a file, such as "outbox/email.jsonl"
    "#,
);

case!(
    twilio_settings_that_cannot_work,
    r#"
    [channels.sms]
    transport = "twilio"
    base_url = "api.twilio.com"
    account_sid = "AC123"
    auth_token_env = "my token"
    "#,
    r#"
    error: `channels.sms` needs `from` or `messaging_service_sid`
     --> nudge.toml:1:1
      |
    1 | [channels.sms]
      | ^^^^^^^^^^^^^^ no sender
      |
      = help: set `from` to your Twilio number, or `messaging_service_sid` to a Messaging Service ("MG…")

    error: `channels.sms.base_url` is not a URL: relative URL without a base
     --> nudge.toml:3:12
      |
    3 | base_url = "api.twilio.com"
      |            ^^^^^^^^^^^^^^^^ not an http(s) URL
      |
      = help: leave it out for "https://api.twilio.com"

    error: `channels.sms.auth_token_env` is not an environment variable name
     --> nudge.toml:5:18
      |
    5 | auth_token_env = "my token"
      |                  ^^^^^^^^^^ not a variable name
      |
      = help: name the variable holding the token, such as "TWILIO_AUTH_TOKEN"; the token itself never goes in this file
    "#,
);

case!(
    twilio_typo,
    r#"
    [channels.whatsapp]
    transport = "twilio"
    account_sid = "AC123"
    auth_token_env = "TWILIO_AUTH_TOKEN"
    form = "+14155238886"
    "#,
    r#"
    error: `channels.whatsapp` needs `from` or `messaging_service_sid`
     --> nudge.toml:1:1
      |
    1 | [channels.whatsapp]
      | ^^^^^^^^^^^^^^^^^^^ no sender
      |
      = help: set `from` to your Twilio number, or `messaging_service_sid` to a Messaging Service ("MG…")

    error: `channels.whatsapp.form`: unknown field `form`, expected one of `base_url`, `account_sid`, `auth_token_env`, `from`, `messaging_service_sid`, `status_callback`, `timeout_secs`, `plain_http`
     --> nudge.toml:5:1
      |
    5 | form = "+14155238886"
      | ^^^^
    "#,
);

case!(
    twilio_missing_sid,
    r#"
    channels.sms = { transport = "twilio", auth_token_env = "T", from = "AcmeJobs" }
    "#,
    r#"
    error: `channels.sms`: missing field `account_sid`
     --> nudge.toml:1:16
      |
    1 | channels.sms = { transport = "twilio", auth_token_env = "T", from = "AcmeJobs" }
      |                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
    "#,
);

case!(
    twilio_for_email,
    r#"
    [channels.email]
    transport = "twilio"
    account_sid = "AC123"
    auth_token_env = "TWILIO_AUTH_TOKEN"
    from = "+14155238886"
    "#,
    r#"
    error: `channels.email` cannot use the twilio transport
     --> nudge.toml:2:13
      |
    2 | transport = "twilio"
      |             ^^^^^^^^ twilio sends SMS and WhatsApp only
      |
      = help: use "http" for a webhook, "console" or "file"
    "#,
);

case!(
    whatsapp_from_must_be_a_number,
    r#"
    [channels.whatsapp]
    transport = "twilio"
    account_sid = "AC123"
    auth_token_env = "TWILIO_AUTH_TOKEN"
    from = "AcmeJobs"
    "#,
    r#"
    error: `channels.whatsapp.from` is not a WhatsApp number: the phone number `AcmeJobs` has `A`, not a digit
     --> nudge.toml:5:8
      |
    5 | from = "AcmeJobs"
      |        ^^^^^^^^^^ not a sender
      |
      = help: give the WhatsApp number in E.164 form, such as "+14155238886"
    "#,
);

case!(
    http_settings_that_cannot_work,
    r#"
    [channels.webhook]
    transport = "http"
    url = "ftp://ats.example.com/nudge"
    secret_env = ""
    timeout_secs = 0
    "#,
    r#"
    error: `channels.webhook.url` is not an http or https URL
     --> nudge.toml:3:7
      |
    3 | url = "ftp://ats.example.com/nudge"
      |       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ not an http(s) URL
      |
      = help: give the receiver's URL, such as "https://ats.example.com/nudge"

    error: `channels.webhook.secret_env` is not an environment variable name
     --> nudge.toml:4:14
      |
    4 | secret_env = ""
      |              ^^ not a variable name
      |
      = help: name the variable holding the secret, such as "NUDGE_WEBHOOK_SECRET"; the secret itself never goes in this file

    error: `channels.webhook.timeout_secs` is 0; it must be from 1 to 300
     --> nudge.toml:5:16
      |
    5 | timeout_secs = 0
      |                ^ out of range
      |
      = help: leave it out for the default, 10
    "#,
);

case!(
    phone_country_code_with_its_trunk_prefix,
    r#"
    phone_country_code = "044"
    "#,
    r#"
    error: `phone_country_code` is `044`, not a country calling code
     --> nudge.toml:1:22
      |
    1 | phone_country_code = "044"
      |                      ^^^^^ 1 to 3 digits, the first not 0
      |
      = help: write the code without the trunk prefix, such as "1" or "44"
    "#,
);

case!(
    every_number_out_of_its_bounds,
    r#"
    [runtime]
    concurrency = 18446744073709551615
    catch_up_secs = 99999999999
    max_attempts = 0
    retry_cap_secs = 1000000

    [rates.sms]
    per_second = 0

    [channels.email]
    transport = "smtp"
    host = "smtp.example.com"
    from = "jobs@example.com"
    pool_size = 1000
    timeout_secs = 0
    port = 0
    "#,
    r#"
    error: `runtime.concurrency` is 18446744073709551615; it must be from 1 to 1024
     --> nudge.toml:2:15
      |
    2 | concurrency = 18446744073709551615
      |               ^^^^^^^^^^^^^^^^^^^^ out of range
      |
      = help: leave it out for the default, 16

    error: `runtime.catch_up_secs` is 99999999999; it must be from 0 to 315360000
     --> nudge.toml:3:17
      |
    3 | catch_up_secs = 99999999999
      |                 ^^^^^^^^^^^ out of range
      |
      = help: leave it out for the default, 900

    error: `runtime.max_attempts` is 0; it must be from 1 to 100
     --> nudge.toml:4:16
      |
    4 | max_attempts = 0
      |                ^ out of range
      |
      = help: leave it out for the default, 8

    error: `runtime.retry_cap_secs` is 1000000; it must be from 1 to 604800
     --> nudge.toml:5:18
      |
    5 | retry_cap_secs = 1000000
      |                  ^^^^^^^ out of range
      |
      = help: leave it out for the default, 3600

    error: `rates.sms.per_second` is 0; it must be from 1 to 10000
     --> nudge.toml:8:14
      |
    8 | per_second = 0
      |              ^ out of range
      |
      = help: leave it out for no limit

    error: `channels.email.pool_size` is 1000; it must be from 1 to 64
      --> nudge.toml:14:13
       |
    14 | pool_size = 1000
       |             ^^^^ out of range
       |
       = help: leave it out for the default, 8

    error: `channels.email.timeout_secs` is 0; it must be from 1 to 600
      --> nudge.toml:15:16
       |
    15 | timeout_secs = 0
       |                ^ out of range
       |
       = help: leave it out for the default, 30

    error: `channels.email.port` is 0; it must be from 1 to 65535
      --> nudge.toml:16:8
       |
    16 | port = 0
       |        ^ out of range
       |
       = help: leave it out for the usual port of `security`
    "#,
);

case!(
    retry_cap_below_the_first_wait,
    r#"
    [runtime]
    retry_base_secs = 600
    retry_cap_secs = 60
    "#,
    r#"
    error: `runtime.retry_cap_secs` is 60, below `runtime.retry_base_secs` (600)
     --> nudge.toml:3:18
      |
    3 | retry_cap_secs = 60
      |                  ^^ the longest wait is shorter than the first
      |
      = help: raise `retry_cap_secs` or lower `retry_base_secs`
    "#,
);

case!(
    admin_on_port_zero,
    r#"
    [admin]
    listen = "127.0.0.1:0"
    "#,
    r#"
    error: `admin.listen` is `127.0.0.1:0`, with port 0
     --> nudge.toml:2:10
      |
    2 | listen = "127.0.0.1:0"
      |          ^^^^^^^^^^^^^ port 0 is one chosen at random, which the CLI cannot find
      |
      = help: give a port, such as 127.0.0.1:7777
    "#,
);

case!(
    a_word_setting_names_its_words,
    r#"
    communications = "maybe"

    [channels.email]
    transport = "smtp"
    host = "smtp.example.com"
    from = "jobs@example.com"
    security = "startls"
    dkim = { domain = "example.com", selector = "s", private_key_path = "k.pem", algorithm = "dsa" }
    "#,
    r#"
    error: `communications` is `maybe`; it must be `on` or `off`
     --> nudge.toml:1:18
      |
    1 | communications = "maybe"
      |                  ^^^^^^^ not `on` or `off`
      |
      = help: write `on` or `off`

    error: `channels.email.security` is `startls`; it must be `plain`, `starttls` or `tls`
     --> nudge.toml:7:12
      |
    7 | security = "startls"
      |            ^^^^^^^^^ not `plain`, `starttls` or `tls`
      |
      = help: did you mean `starttls`?

    error: `channels.email.dkim.algorithm` is `dsa`; it must be `rsa` or `ed25519`
     --> nudge.toml:8:90
      |
    8 | dkim = { domain = "example.com", selector = "s", private_key_path = "k.pem", algorithm = "dsa" }
      |                                                                                          ^^^^^ not `rsa` or `ed25519`
      |
      = help: write `rsa` or `ed25519`
    "#,
);

case!(
    plain_http_to_another_host,
    r#"
    [channels.sms]
    transport = "twilio"
    base_url = "http://sms.example.com"
    account_sid = "AC123"
    auth_token_env = "TWILIO_AUTH_TOKEN"
    from = "+14155238886"
    status_callback = "http://hooks.example.com/status"

    [channels.webhook]
    transport = "http"
    url = "http://ats.example.com/nudge"
    secret_env = "NUDGE_WEBHOOK_SECRET"
    plain_http = "yes"
    "#,
    r#"
    error: `channels.sms.base_url` is plain http to `sms.example.com`: the auth token and the messages would cross the network in clear
     --> nudge.toml:3:12
      |
    3 | base_url = "http://sms.example.com"
      |            ^^^^^^^^^^^^^^^^^^^^^^^^ not https, and not this machine
      |
      = help: use https://, or, if every network between is trusted, write plain_http = "allowed" in [channels.sms]

    error: `channels.sms.status_callback` is plain http to `hooks.example.com`: the candidates' numbers and delivery statuses would cross the network in clear
     --> nudge.toml:7:19
      |
    7 | status_callback = "http://hooks.example.com/status"
      |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ not https, and not this machine
      |
      = help: use https://, or, if every network between is trusted, write plain_http = "allowed" in [channels.sms]

    error: `channels.webhook.url` is plain http to `ats.example.com`: the messages and the candidates' addresses would cross the network in clear
      --> nudge.toml:11:7
       |
    11 | url = "http://ats.example.com/nudge"
       |       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ not https, and not this machine
       |
       = help: use https://, or, if every network between is trusted, write plain_http = "allowed" in [channels.webhook]

    error: `channels.webhook.plain_http` is `yes`; it must be `refused` or `allowed`
      --> nudge.toml:13:14
       |
    13 | plain_http = "yes"
       |              ^^^^^ not `refused` or `allowed`
       |
       = help: write `refused` or `allowed`
    "#,
);

/// Plain http is taken to this machine, and to another when the file says
/// so in words beside the URL.
#[test]
fn plain_http_where_allowed() {
    let text = r#"
        [channels.sms]
        transport = "twilio"
        base_url = "http://sms.example.com"
        account_sid = "AC123"
        auth_token_env = "TWILIO_AUTH_TOKEN"
        from = "+14155238886"
        plain_http = "allowed"

        [channels.webhook]
        transport = "http"
        url = "http://127.0.0.1:8080/nudge"
        secret_env = "NUDGE_WEBHOOK_SECRET"

        [channels.whatsapp]
        transport = "twilio"
        base_url = "http://localhost:9000"
        account_sid = "AC123"
        auth_token_env = "TWILIO_AUTH_TOKEN"
        from = "+14155238886"
    "#;
    let config = parse_str(FILE_NAME, &unindent(text)).unwrap();
    let Transport::Twilio(sms) = &config.channels.sms else {
        panic!("{:?}", config.channels.sms)
    };
    assert_eq!(sms.plain_http, nudge::config::PlainHttp::Allowed);
}

/// `nudge check` and `nudge run`, the real binary: a number out of its
/// bounds is an error naming the file, the line, the key, the value and
/// the range; `run` starts nothing and makes no store.
#[test]
fn the_binary_refuses_a_number_out_of_bounds_at_check_and_at_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("hiring");
    init(&root).unwrap();
    let text = fs::read_to_string(root.join(FILE_NAME)).unwrap();
    let text = text.replace("concurrency = 16", "concurrency = 18446744073709551615");
    let line = text
        .lines()
        .position(|l| l.starts_with("concurrency = "))
        .unwrap()
        + 1;
    fs::write(root.join(FILE_NAME), text).unwrap();
    let expected = [
        "error: `runtime.concurrency` is 18446744073709551615; it must be from 1 to 1024"
            .to_string(),
        format!("--> nudge.toml:{line}:15"),
    ];
    for args in [&["check"][..], &["run"][..]] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"))
            .args(args)
            .current_dir(&root)
            .env_remove("NUDGE_CONFIG")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        for expected in &expected {
            assert!(
                stderr.contains(expected.as_str()),
                "{args:?}: {expected} missing from:\n{stderr}"
            );
        }
        assert!(!root.join("nudge-data").exists(), "{args:?} made a store");
    }
}

/// A configuration whose store is a fresh temporary folder.
fn in_store(store: &Path, token_env: Option<&str>) -> Config {
    let mut config = Config {
        store: store.to_path_buf(),
        ..Config::default()
    };
    config.admin.token_env = token_env.map(str::to_string);
    config
}

#[test]
fn admin_token_is_generated_once_for_the_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let config = in_store(&store, None);
    let token = config.admin_token().unwrap();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let file = store.join(ADMIN_TOKEN_FILE);
    let mode = fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(config.admin_token().unwrap(), token);
    // Only the token file is left behind, no temporary file.
    assert_eq!(fs::read_dir(&store).unwrap().count(), 1);
}

#[test]
fn admin_token_from_the_environment_wins() {
    const VAR: &str = "NUDGE_TEST_CONFIG_ADMIN_TOKEN";
    let dir = tempfile::tempdir().unwrap();
    let config = in_store(dir.path(), Some(VAR));
    // Unset: the generated token.
    let generated = config.admin_token().unwrap();
    // This variable is used by this test only.
    let set = "s3cret-s3cret-s3cret-s3cret-s3cret";
    std::env::set_var(VAR, set);
    assert_eq!(config.admin_token().unwrap(), set);
    std::env::set_var(VAR, "");
    assert_eq!(config.admin_token().unwrap(), generated);
    std::env::remove_var(VAR);
}

/// A token of fewer than 32 characters is refused, from the environment
/// or from the token file, saying where it came from and never quoting it.
#[test]
fn a_short_admin_token_is_refused_wherever_it_comes_from() {
    const VAR: &str = "NUDGE_TEST_CONFIG_SHORT_ADMIN_TOKEN";
    let dir = tempfile::tempdir().unwrap();
    let config = in_store(&dir.path().join("data"), Some(VAR));
    // This variable is used by this test only.
    std::env::set_var(VAR, "x");
    let err = config.admin_token().unwrap_err();
    std::env::remove_var(VAR);
    assert_eq!(
        err.to_string(),
        format!(
            "the admin token in environment variable `{VAR}` (named by `admin.token_env`) \
             has 1 characters, too few to be safe; give one of at least 32 random visible \
             characters, such as the output of `openssl rand -hex 32`, or leave \
             `admin.token_env` out to use a generated one"
        )
    );
    // Refused before any file was made.
    assert!(!dir.path().join("data").exists());

    let file = dir.path().join("data").join(ADMIN_TOKEN_FILE);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, "hunter2\n").unwrap();
    let err = config.admin_token().unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "the admin token in file `{}` has 7 characters, too few to be safe",
            file.display()
        )),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn init_writes_a_campaign_that_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("hiring");
    let report = init(&target).unwrap();
    assert_eq!(report.dir, target);
    for file in [
        "nudge.toml",
        "README.md",
        "campaigns/warehouse.nudge",
        "templates/invite-short.sms.j2",
        "templates/expired.es.email.j2",
    ] {
        assert!(
            report.files.contains(&PathBuf::from(file)),
            "{file} missing from {:?}",
            report.files
        );
    }
    for file in &report.files {
        assert!(
            target.join(file).is_file(),
            "{} not written",
            file.display()
        );
    }

    let (config, file) = load(Some(&target.join(FILE_NAME))).unwrap();
    assert_eq!(file, Some(target.join(FILE_NAME)));
    assert_eq!(config, Config::default().resolve(&target));

    let loaded = nudge::dsl::load::load(std::slice::from_ref(&config.campaigns)).unwrap();
    let report = nudge::dsl::check::check(&loaded, Some(&config.templates));
    assert!(
        matches!(
            report.templates,
            nudge::dsl::check::TemplateCheck::Checked { .. }
        ),
        "{}",
        report.templates
    );
    let rendered = nudge::dsl::report::render(&loaded.sources, &report.diagnostics, false);
    assert!(report.diagnostics.is_empty(), "{rendered}");
}

#[test]
fn init_refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("hiring");
    init(&target).unwrap();
    let before = fs::read_to_string(target.join(FILE_NAME)).unwrap();
    fs::write(target.join(FILE_NAME), "company = \"Mine\"\n").unwrap();

    let count = |dir: &Path| walk(dir).len();
    let files = count(&target);

    let err = init(&target).unwrap_err();
    assert!(matches!(err, InitError::NotEmpty { .. }), "{err}");
    assert_eq!(count(&target), files);
    assert!(err
        .to_string()
        .starts_with(&format!("`{}` is not empty (it holds `", target.display())));
    assert_eq!(
        fs::read_to_string(target.join(FILE_NAME)).unwrap(),
        "company = \"Mine\"\n"
    );
    assert_ne!(before, "company = \"Mine\"\n");

    // A file where the folder should be.
    let file = dir.path().join("plain");
    fs::write(&file, "x").unwrap();
    let err = init(&file).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("`{}` exists and is not a folder", file.display())
    );

    // An empty folder is fine.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    init(&empty).unwrap();
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

case!(
    every_table_and_channel_reports_its_own_problem,
    r#"
    compnay = "Acme"

    [admin]
    listen = "0.0.0.0:7777"

    [runtime]
    concurrency = "16"

    [channels.email]
    transport = "pigeon"

    [channels.sms]
    transport = "twilio"
    account_sid = "AC1"
    auth_token_env = "TWILIO_AUTH_TOKEN"
    from = "+14155238886"
    timeout_secs = "ten"

    [channels.webhook]
    transport = "http"
    url = "ftp://ats.example.com/nudge"
    secret_env = "NUDGE_WEBHOOK_SECRET"
    "#,
    r#"
    error: `compnay`: unknown field `compnay`, expected one of `store`, `campaigns`, `templates`, `company`, `sender`, `interview_url`, `phone_country_code`, `admin`, `server`, `runtime`, `communications`, `rates`, `webhooks`, `ats`, `metrics`, `digest`, `report`, `decided`, `dashboard`
     --> nudge.toml:1:1
      |
    1 | compnay = "Acme"
      | ^^^^^^^

    error: `admin.listen` is `0.0.0.0:7777`, not a loopback address
     --> nudge.toml:4:10
      |
    4 | listen = "0.0.0.0:7777"
      |          ^^^^^^^^^^^^^^ the admin API is not for the open internet
      |
      = help: use 127.0.0.1 or [::1], and a reverse proxy with TLS if others must reach it

    error: `runtime.concurrency`: invalid type: string "16", expected usize
     --> nudge.toml:7:15
      |
    7 | concurrency = "16"
      |               ^^^^

    error: unknown transport `pigeon` for `channels.email`
      --> nudge.toml:10:13
       |
    10 | transport = "pigeon"
       |             ^^^^^^^^ no such transport
       |
       = help: expected one of `console`, `file`, `null`, `twilio`, `http` or `smtp`

    error: `channels.sms.timeout_secs`: invalid type: string "ten", expected u64
      --> nudge.toml:17:16
       |
    17 | timeout_secs = "ten"
       |                ^^^^^

    error: `channels.webhook.url` is not an http or https URL
      --> nudge.toml:21:7
       |
    21 | url = "ftp://ats.example.com/nudge"
       |       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ not an http(s) URL
       |
       = help: give the receiver's URL, such as "https://ats.example.com/nudge"
    "#,
);

/// `nudge check` with a configuration that has errors reports them with
/// the campaigns' findings, counts them in its summary, and fails; it
/// never closes with "no problems found".
#[test]
fn check_counts_configuration_errors_in_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("hiring");
    init(&root).unwrap();
    let text = "compnay = \"Acme\"\n\n[channels.email]\ntransport = \"pigeon\"\n\n\
                [runtime]\nconcurrency = 0\n";
    fs::write(root.join(FILE_NAME), text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("check")
        .current_dir(&root)
        .env_remove("NUDGE_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("no problems found"), "{stderr}");
    for expected in [
        "error: `compnay`: unknown field `compnay`",
        "error: unknown transport `pigeon` for `channels.email`",
        "error: `runtime.concurrency` is 0",
        "error: could not check 2 files due to 3 errors",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected} missing from:\n{stderr}"
        );
    }
}

case!(
    history_days_out_of_bounds,
    r#"
    [runtime]
    history_days = 0
    "#,
    r#"
    error: `runtime.history_days` is 0
     --> nudge.toml:2:16
      |
    2 | history_days = 0
      |                ^ must be between 1 and 36500
      |
      = help: leave it out to keep history forever
    "#,
);

case!(
    webhooks_settings_that_cannot_work,
    r#"
    [webhooks]
    interview_secret_env = "my secret"
    tolerance_secs = 5
    sendgrid_verification_key = "not a key"
    "#,
    r#"
    error: `webhooks.interview_secret_env` is `my secret`, not an environment variable name
     --> nudge.toml:2:24
      |
    2 | interview_secret_env = "my secret"
      |                        ^^^^^^^^^^^ not a variable name
      |
      = help: name the variable holding the secret, such as "NUDGE_HOOK_SECRET"; the secret itself never goes in this file

    error: `webhooks.tolerance_secs` is 5
     --> nudge.toml:3:18
      |
    3 | tolerance_secs = 5
      |                  ^ must be from 10 to 3600
      |
      = help: 300 (five minutes) allows for clocks a little apart

    error: `webhooks.sendgrid_verification_key` is not base64 (Invalid symbol 32, offset 3.)
     --> nudge.toml:4:29
      |
    4 | sendgrid_verification_key = "not a key"
      |                             ^^^^^^^^^^^ not a verification key
      |
      = help: copy the key SendGrid shows for its signed event webhook (base64, `MFkw…`)
    "#,
);
