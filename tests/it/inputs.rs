//! Input refused where it enters: candidate fields (email addresses, line
//! breaks, zones, languages, fields the templates print), event times, and
//! unknown fields in the admin API's bodies. Each case goes through the
//! real binary, with the CLI running the core itself and with a daemon
//! running (the CLI then talks to it), and through the admin API by HTTP;
//! each refusal names the field and leaves nothing stored.

use crate::support::site::{self, http, Daemon};
use crate::support::{stderr, stdout};
use chrono::SubsecRound;
use std::process::{Command, Output};

/// `strict` prints `first_name` in its email and `shift` in its SMS, with
/// no default; `kind` gives `first_name` a default.
const CAMPAIGNS: &str = r#"campaign strict {
  channels email, sms
  goal     completed

  state first {
    send "hello"
    on clicked -> done
    after 24h -> done
  }

  state done {
    end
  }
}

campaign later {
  enroll   on applied
  channels email
  goal     completed

  state first {
    send "hello"
    after 24h -> done
  }

  state done {
    end
  }
}

campaign kind {
  channels email
  goal     completed

  state first {
    send "greet"
    after 24h -> done
  }

  state done {
    end
  }
}
"#;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "hello.email.j2",
        "Subject: Hello {{ candidate.first_name }}\n\nHi {{ candidate.first_name }}: {{ link }}\nUnsubscribe: {{ unsubscribe_link }}\n",
    ),
    (
        "hello.sms.j2",
        "Your {{ candidate.shift }} shift interview: {{ link }}{% if candidate.role %} ({{ candidate.role }}){% endif %}\n",
    ),
    (
        "greet.email.j2",
        "Subject: Hello\n\nHi {{ candidate.first_name | default(\"there\") }}: {{ link }}\nUnsubscribe: {{ unsubscribe_link }}\n",
    ),
];

/// The shared test site with the campaigns and templates above.
struct Site(site::Site);

impl std::ops::Deref for Site {
    type Target = site::Site;

    fn deref(&self) -> &site::Site {
        &self.0
    }
}

impl Site {
    fn new() -> Site {
        let site = site::Site::empty();
        site.write("campaigns/inputs.nudge", CAMPAIGNS);
        for (name, text) in TEMPLATES {
            site.write(&format!("templates/{name}"), text);
        }
        Site(site)
    }

    /// `nudge run`, once it answers on the admin port.
    fn start(&self) -> Daemon {
        self.0.start(None)
    }

    /// An admin API request: status and JSON body.
    fn api(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, body) = http(self.port, method, path, Some(&self.token()), body);
        (status, serde_json::from_str(&body).unwrap_or_default())
    }

    /// How many candidates are in each campaign, all states together.
    fn candidates(&self) -> i64 {
        let out = self.nudge(&["status", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["states"].as_array().unwrap().clone())
            .map(|s| s[1].as_i64().unwrap())
            .sum()
    }

    fn show(&self, who: &str) -> Output {
        self.nudge(&["show", who, "--json"])
    }
}

/// A candidate who passes every check of `strict`.
const ANA: [&str; 4] = ["--name", "Ana Ruiz", "--email", "ana@example.com"];

/// Enrollments in `strict` that are refused, each with the words its
/// error must hold: the field, and the template when one needs it.
fn refused_enrollments() -> Vec<(Vec<&'static str>, Vec<&'static str>)> {
    let email = |address: &'static str| vec!["--name", "Ana Ruiz", "--email", address];
    let with = |extra: &[&'static str]| {
        let mut args = ANA.to_vec();
        args.extend_from_slice(extra);
        args
    };
    vec![
        (email("notanemail"), vec!["`email`", "notanemail"]),
        (email("a b@c"), vec!["`email`"]),
        (email("a b@example.com"), vec!["`email`"]),
        (email("@example.com"), vec!["`email`"]),
        (email("ana@localhost"), vec!["`email`", "no dot"]),
        (email("Ana <ana@example.com>"), vec!["`email`"]),
        (
            email("ana@example.com\nBcc: all@example.com"),
            vec!["`email`", "control character"],
        ),
        (
            vec![
                "--name",
                "Ana\r\nBcc: x@example.com",
                "--email",
                "ana@example.com",
            ],
            vec!["`name`", "control character"],
        ),
        (
            with(&["--field", "role=Picker\nX-Extra: 1"]),
            vec!["`role`", "control character"],
        ),
        (
            with(&["--field", "timezone=Mars/Olympus"]),
            vec!["`timezone`", "Mars/Olympus", "IANA"],
        ),
        (
            with(&["--field", "language=klingon"]),
            vec!["`language`", "klingon"],
        ),
        (
            vec!["--email", "ana@example.com"],
            vec!["`first_name`", "hello.email.j2", "strict"],
        ),
        (
            with(&["--phone", "+15550100"]),
            vec!["`shift`", "hello.sms.j2"],
        ),
    ]
}

fn enroll(site: &Site, campaign: &str, args: &[&str]) -> Output {
    let mut all = vec!["enroll", "--campaign", campaign, "--json"];
    all.extend_from_slice(args);
    site.nudge(&all)
}

/// Every refused enrollment through the CLI: exit 1, the field named,
/// nothing stored; then the accepted ones.
fn cli_enrollments(site: &Site) {
    for (args, words) in refused_enrollments() {
        let out = enroll(site, "strict", &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        for word in words {
            assert!(err.contains(word), "{args:?}: `{word}` not in {err}");
        }
    }
    assert_eq!(site.candidates(), 0);
    for who in ["c1", "ana@example.com"] {
        let out = site.show(who);
        assert_eq!(out.status.code(), Some(1), "{who}: {}", stdout(&out));
        assert!(stderr(&out).contains("no candidate"), "{}", stderr(&out));
    }

    let accepted: &[(&str, &[&str])] = &[
        ("strict", &["--field", "language=en", "--id", "en"]),
        ("strict", &["--field", "language=pt-BR", "--id", "pt"]),
        (
            "strict",
            &[
                "--field",
                "language=fr",
                "--field",
                "timezone=Europe/Paris",
                "--id",
                "fr",
            ],
        ),
        // `shift` is only needed on SMS: with a phone, it is given.
        (
            "strict",
            &[
                "--phone",
                "+15550101",
                "--field",
                "shift=night",
                "--id",
                "sms",
            ],
        ),
    ];
    for (campaign, extra) in accepted {
        let mut args = ANA.to_vec();
        args.extend_from_slice(extra);
        let out = enroll(site, campaign, &args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    // A template with a default takes a candidate without a name.
    let out = enroll(site, "kind", &["--email", "noname@example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(site.candidates(), 5);
    // An event that would enroll them where a template needs their name
    // says so, and leaves them out of that campaign.
    let out = site.nudge(&["event", "noname@example.com", "applied"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("later: not enrolled"), "{said}");
    assert!(said.contains("`first_name`"), "{said}");
    assert_eq!(site.candidates(), 5);
}

/// Events dated before what the enrollment processed, or in the future:
/// exit 1, both instants said, the candidate where they were.
fn cli_events(site: &Site) {
    let out = enroll(site, "strict", &[&ANA[..], &["--id", "ev"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let enrolled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let at = enrolled["at"].as_str().unwrap().to_string();
    for when in ["1970-01-01T00:00:00Z", "0000-01-01T00:00:00Z"] {
        let out = site.nudge(&["event", "ev", "clicked", "--at", when]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{when}: {err}");
        assert!(err.contains("earlier than"), "{err}");
        assert!(err.contains(&at), "{at} not in {err}");
        assert!(err.contains("`strict`"), "{err}");
    }
    // A second before the enrollment's second is earlier; its own second
    // is not (senders often give whole seconds).
    let second = crate::support::at(&at).trunc_subsecs(0);
    let before = (second - chrono::Duration::seconds(1)).to_rfc3339();
    let out = site.nudge(&["event", "ev", "clicked", "--at", &before]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("earlier than"), "{}", stderr(&out));
    let out = site.nudge(&["event", "ev", "clicked", "--at", "2100-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("in the future"), "{}", stderr(&out));
    let view: serde_json::Value = serde_json::from_slice(&site.show("ev").stdout).unwrap();
    assert_eq!(view["enrollments"][0]["state"], "first", "{view}");
    let out = site.nudge(&["event", "ev", "clicked", "--at", &second.to_rfc3339()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let view: serde_json::Value = serde_json::from_slice(&site.show("ev").stdout).unwrap();
    assert_ne!(view["enrollments"][0]["state"], "first", "{view}");
}

#[test]
fn the_cli_refuses_bad_candidate_fields_and_event_times_without_a_daemon() {
    let site = Site::new();
    cli_enrollments(&site);
    cli_events(&site);
}

#[test]
fn the_cli_refuses_the_same_through_a_running_daemon() {
    let site = Site::new();
    let _daemon = site.start();
    cli_enrollments(&site);
    cli_events(&site);
}

/// The JSON body of an enrollment in `strict` from `nudge enroll` flags.
fn body(args: &[&str]) -> serde_json::Value {
    let mut fields = serde_json::Map::new();
    let mut external_id = None;
    for pair in args.chunks(2) {
        let (flag, value) = (pair[0], pair[1]);
        match flag {
            "--id" => external_id = Some(value),
            "--field" => {
                let (k, v) = value.split_once('=').unwrap();
                fields.insert(k.into(), v.into());
            }
            _ => {
                fields.insert(flag.trim_start_matches("--").into(), value.into());
            }
        }
    }
    serde_json::json!({ "campaign": "strict", "external_id": external_id, "fields": fields })
}

#[test]
fn the_admin_api_refuses_them_with_a_4xx_naming_the_field() {
    let site = Site::new();
    let _daemon = site.start();
    for (args, words) in refused_enrollments() {
        let (status, answer) = site.api("POST", "/v1/enroll", &body(&args).to_string());
        assert_eq!(status, 400, "{args:?}: {answer}");
        assert_eq!(answer["status"], 400, "{answer}");
        let message = answer["message"].as_str().unwrap();
        for word in words {
            assert!(
                message.contains(word),
                "{args:?}: `{word}` not in {message}"
            );
        }
    }
    assert_eq!(site.candidates(), 0);
    let (status, _) = site.api("GET", "/v1/candidates/c1", "");
    assert_eq!(status, 404);

    // Unknown fields in a body are named, not ignored.
    let (status, answer) = site.api(
        "POST",
        "/v1/enroll",
        r#"{"campaign": "strict", "externl_id": "A-1", "fields": {"name": "Ana Ruiz", "email": "ana@example.com"}}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["status"], 400, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("externl_id"),
        "{answer}"
    );
    assert_eq!(site.candidates(), 0);

    // Custom fields still go in `fields`.
    let (status, enrolled) = site.api(
        "POST",
        "/v1/enroll",
        r#"{"campaign": "strict", "external_id": "A-1", "fields": {"name": "Ana Ruiz", "email": "ana@example.com", "phone": "+15550100", "shift": "night", "language": "pt-BR"}}"#,
    );
    assert_eq!(status, 200, "{enrolled}");
    let view: serde_json::Value = serde_json::from_slice(&site.show("A-1").stdout).unwrap();
    assert_eq!(view["fields"]["shift"], "night", "{view}");

    let (status, answer) = site.api(
        "POST",
        "/v1/events",
        r#"{"candidate": "A-1", "event": "clicked", "when": "2026-01-01T00:00:00Z"}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("when"),
        "{answer}"
    );
    for when in ["1970-01-01T00:00:00Z", "0000-01-01T00:00:00Z"] {
        let event = serde_json::json!({ "candidate": "A-1", "event": "clicked", "at": when });
        let (status, answer) = site.api("POST", "/v1/events", &event.to_string());
        assert_eq!(status, 409, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains("earlier than"), "{message}");
        assert!(
            message.contains(enrolled["at"].as_str().unwrap()),
            "{message}"
        );
    }
    let view: serde_json::Value = serde_json::from_slice(&site.show("A-1").stdout).unwrap();
    assert_eq!(view["enrollments"][0]["state"], "first", "{view}");
}

#[test]
fn check_says_which_candidate_fields_each_campaigns_templates_print() {
    let site = Site::new();
    let out = site.nudge(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("campaign `strict`: templates print candidate.first_name (required by hello.email.j2), candidate.role (optional), candidate.shift (required by hello.sms.j2)"),
        "{text}"
    );
    assert!(
        text.contains("campaign `kind`: templates print candidate.first_name (optional)"),
        "{text}"
    );
}

#[test]
fn the_example_templates_take_a_candidate_without_a_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["check", "campaigns/"])
        .current_dir(crate::support::repo())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for campaign in [
        "financial_analyst",
        "night_shift_picker",
        "warehouse_associate",
    ] {
        let line =
            format!("campaign `{campaign}`: templates print candidate.first_name (optional)");
        assert!(text.contains(&line), "{line} not in {text}");
    }
    assert!(!text.contains("required by"), "{text}");
}

/// The suppression list's and the backup's bodies are refused as every
/// other body is: a 400 in the API's JSON shape naming what is wrong, and
/// nothing suppressed or copied.
#[test]
fn suppression_and_backup_bodies_are_refused_in_the_apis_shape() {
    let site = Site::new();
    let _daemon = site.start();
    let backup_dir = site.path().join("never");
    let backup = serde_json::json!({ "dir": backup_dir, "folder": "x" }).to_string();
    for (path, body, named) in [
        (
            "/v1/suppressions",
            r#"{"contact": "ana@example.com", "raeson": "manual"}"#,
            "raeson",
        ),
        ("/v1/suppressions", r#"{"contact": 7}"#, "contact"),
        ("/v1/suppressions", "not json", "JSON"),
        (
            "/v1/suppressions/remove",
            r#"{"contakt": "ana@example.com"}"#,
            "contakt",
        ),
        ("/v1/backup", backup.as_str(), "folder"),
    ] {
        let (status, answer) = site.api("POST", path, body);
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["status"], 400, "{answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{path}: `{named}` not in {answer}");
    }
    let (status, list) = site.api("GET", "/v1/suppressions", "");
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    assert!(!backup_dir.exists());
}
