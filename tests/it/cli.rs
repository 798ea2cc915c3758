//! The real `nudge` binary: exit statuses, simulate's JSON contract, the
//! candidate-list summary, graph and fmt, as a user meets them.

use crate::support::{stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nudge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run nudge")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path
}

const WAREHOUSE: &str = "campaigns/warehouse.nudge";

#[test]
fn check_passes_on_the_examples() {
    let out = nudge(&["check", "campaigns/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn check_reports_every_error_with_position_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "broken.nudge",
        "campaign broken {\n  channels sms\n  state invite {\n    send \"invite\"\n    after 24h -> remnder\n  }\n  state reminder {\n    on clicked -> nowhere\n  }\n}\n",
    );
    let out = nudge(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("broken.nudge:5:18"), "{err}");
    assert!(err.contains("did you mean `reminder`?"), "{err}");
    assert!(err.contains("broken.nudge:8:19"), "{err}");
}

#[test]
fn check_json_gives_one_object_per_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "zone.nudge",
        "campaign z {\n  channels email\n  timezone \"Mars/Olympus\"\n  state a { send \"x\" after 1h -> a }\n}\n",
    );
    let out = nudge(&["check", "--format", "json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let zone = lines
        .iter()
        .find(|l| l["severity"] == "error")
        .expect("an error");
    assert_eq!(zone["line"], 3);
    assert_eq!(zone["column"], 12);
}

#[test]
fn bad_usage_exits_2_and_bad_input_1() {
    let out = nudge(&["simulate", WAREHOUSE, "--start", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));
    let out = nudge(&[
        "simulate",
        WAREHOUSE,
        "--start",
        "2026-11-26T20:30:00Z",
        "--variant",
        "copy=loud",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no variant `loud`"),
        "{}",
        stderr(&out)
    );
    let out = nudge(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A folder made by `nudge init`: a configuration, the sample campaign
/// and its templates, and (once a command opens it) a store of its own.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = nudge_in(dir.path(), &["init", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dir
}

fn nudge_in(dir: &Path, args: &[&str]) -> Output {
    command_in(dir, args).output().expect("run nudge")
}

fn command_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("NUDGE_CONFIG")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn every_command_exits_1_on_bad_input_and_2_on_bad_usage() {
    let site = site();
    let warehouse = "campaigns/warehouse.nudge";
    let start = "2026-11-26T20:30:00Z";
    let table: &[(&[&str], i32, &str)] = &[
        // Arguments clap rejects: usage, 2.
        (&["frobnicate"], 2, "unrecognized subcommand"),
        (&["enroll", "--phone", "5550123"], 2, "--campaign"),
        (&["graph"], 2, "<FILE>"),
        (
            &["simulate", warehouse, "--start", "yesterday"],
            2,
            "RFC 3339",
        ),
        (
            &["event", "c1", "clicked", "--at", "yesterday"],
            2,
            "RFC 3339",
        ),
        (
            &["enroll", "--campaign", "x", "--field", "role"],
            2,
            "KEY=VALUE",
        ),
        (
            &[
                "simulate", warehouse, "--start", start, "--event", "clicked",
            ],
            2,
            "NAME@OFFSET",
        ),
        (
            &["simulate", warehouse, "--start", start, "--until", "soon"],
            2,
            "duration",
        ),
        (
            &[
                "render",
                "warehouse_associate",
                "reminder",
                "--variant",
                "copy",
            ],
            2,
            "EXPERIMENT=VARIANT",
        ),
        (&["run", "--speed", "0"], 2, "positive factor"),
        // Everything a command finds wrong: input, 1.
        (
            &[
                "enroll",
                "--campaign",
                "warehouse_associate",
                "--phone",
                "5550123",
            ],
            1,
            "country code",
        ),
        (
            &["enroll", "--campaign", "nope", "--email", "a@example.com"],
            1,
            "no campaign `nope`",
        ),
        (
            &["graph", warehouse, "--campaign", "nope"],
            1,
            "no campaign `nope`",
        ),
        (
            &[
                "simulate",
                warehouse,
                "--start",
                start,
                "--campaign",
                "nope",
            ],
            1,
            "no campaign `nope`",
        ),
        (
            &[
                "simulate",
                warehouse,
                "--start",
                start,
                "--variant",
                "copy=loud",
            ],
            1,
            "no variant `loud`",
        ),
        (
            &[
                "simulate",
                warehouse,
                "--start",
                start,
                "--event",
                "clicked@2026-11-20T00:00:00Z",
            ],
            1,
            "before `--start`",
        ),
        (
            &["simulate", "missing.nudge", "--start", start],
            1,
            "missing.nudge",
        ),
        (&["render", "nope", "reminder"], 1, "no campaign `nope`"),
        (
            &[
                "render",
                "warehouse_associate",
                "reminder",
                "--channel",
                "pigeon",
            ],
            1,
            "pigeon",
        ),
        (
            &[
                "render",
                "warehouse_associate",
                "invite-{copy}",
                "--variant",
                "copy=loud",
            ],
            1,
            "loud",
        ),
        (&["status", "nope"], 1, "no campaign `nope`"),
        (&["show", "nobody"], 1, "no candidate `nobody`"),
        (&["event", "nobody", "clicked"], 1, "no candidate `nobody`"),
        (&["pause", "nope"], 1, "no campaign `nope`"),
        (&["resume", "nope"], 1, "no campaign `nope`"),
        (&["reload"], 1, "no daemon is running"),
        (&["check", "missing.nudge"], 1, "missing.nudge"),
        (&["fmt", "missing.nudge"], 1, "missing.nudge"),
        (&["init", "campaigns"], 1, "campaigns"),
    ];
    for (args, code, says) in table {
        let out = nudge_in(site.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "nudge {args:?}: {err}");
        assert!(err.contains(says), "nudge {args:?}: {err}");
        assert!(!err.contains("panicked"), "nudge {args:?}: {err}");
    }
}

#[test]
fn graph_refuses_a_campaign_that_does_not_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "broken.nudge",
        "campaign broken {\n  channels sms\n  state invite {\n    send \"invite\"\n    after 24h -> remnder\n  }\n  state reminder {\n    end\n  }\n}\n",
    );
    for format in ["dot", "mermaid"] {
        let out = nudge(&["graph", file.to_str().unwrap(), "--format", format]);
        assert_eq!(out.status.code(), Some(1), "{format}: {}", stdout(&out));
        assert_eq!(stdout(&out), "", "{format}: nothing is drawn");
        let err = stderr(&out);
        assert!(err.contains("broken.nudge:5:18"), "{err}");
        assert!(err.contains("did you mean `reminder`?"), "{err}");
    }
}

#[test]
fn commands_in_a_folder_without_campaigns_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["status"][..],
        &["show", "c1"],
        &["event", "c1", "clicked"],
        &[
            "enroll",
            "--campaign",
            "warehouse_associate",
            "--email",
            "a@example.com",
        ],
        &["pause", "warehouse_associate"],
        &["run"],
    ] {
        let out = nudge_in(dir.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "nudge {args:?}: {err}");
        assert!(err.contains("campaigns"), "nudge {args:?}: {err}");
        let made: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(made.is_empty(), "nudge {args:?} made {made:?}");
    }
}

/// Runs `nudge` with a stdout whose reader is gone before it starts, so
/// every write meets a closed pipe (`nudge ... | head -1` once head has
/// read its line).
fn nudge_closed_stdout(dir: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = command_in(dir, args);
    cmd.stdout(writer).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("run nudge");
    drop(cmd);
    child.wait_with_output().expect("wait for nudge")
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let site = site();
    let out = nudge_in(
        site.path(),
        &[
            "enroll",
            "--campaign",
            "warehouse_associate",
            "--id",
            "ana",
            "--email",
            "ana@example.com",
            "--field",
            "role=Warehouse Associate",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    write(
        site.path(),
        "messy.nudge",
        "campaign  m{channels email\nstate a{\nsend \"x\"   after 1h->a}}\n",
    );
    let warehouse = "campaigns/warehouse.nudge";
    let start = "2026-11-26T20:30:00-06:00";
    let table: &[&[&str]] = &[
        &["show", "ana"],
        &["show", "ana", "--json"],
        &["status"],
        &["event", "ana", "clicked"],
        &[
            "simulate",
            warehouse,
            "--start",
            start,
            "--candidate",
            "phone=+15550100",
        ],
        &[
            "simulate",
            warehouse,
            "--start",
            start,
            "--candidate",
            "phone=+15550100",
            "--json",
        ],
        &["graph", warehouse],
        &["render", "warehouse_associate", "reminder"],
        &["fmt", "--check", "messy.nudge"],
        &["check", "--format", "json", "messy.nudge"],
        &["init", "other"],
    ];
    for args in table {
        // The status the command gives when its output is read.
        let expected = if args[0] == "event" || args[0] == "init" {
            Some(0)
        } else {
            nudge_in(site.path(), args).status.code()
        };
        let out = nudge_closed_stdout(site.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), expected, "nudge {args:?}: {err}");
        assert!(!err.contains("panicked"), "nudge {args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "nudge {args:?}: {err}");
    }
}

#[test]
fn every_argument_of_every_subcommand_has_a_description() {
    let top = nudge(&["--help"]);
    let text = stdout(&top);
    let commands: Vec<String> = text
        .split("Commands:\n")
        .nth(1)
        .expect("a list of commands")
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() > 10, "{text}");
    let mut missing = Vec::new();
    for command in &commands {
        let help = stdout(&nudge(&[command, "--help"]));
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let indent = line.len() - line.trim_start().len();
            let spec = line.trim();
            let is_argument = (2..10).contains(&indent)
                && (spec.starts_with('-') || spec.starts_with('<') || spec.starts_with('['));
            if !is_argument {
                continue;
            }
            // Described on the same line (after a gap of two spaces or
            // more) or on the next, indented further.
            let inline = spec.contains("  ");
            let below = lines.get(i + 1).is_some_and(|next| {
                next.len() - next.trim_start().len() >= 10 && !next.trim().is_empty()
            });
            if !inline && !below {
                missing.push(format!("nudge {command}: {spec}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "arguments without a description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn simulate_prints_the_contract_json() {
    let out = nudge(&[
        "simulate",
        WAREHOUSE,
        "--start",
        "2026-11-26T20:30:00-06:00",
        "--candidate",
        "id=ana",
        "--candidate",
        "phone=+15550100",
        "--candidate",
        "role=Warehouse Associate",
        "--variant",
        "copy=warm",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines[0]["kind"], "enrolled");
    assert_eq!(lines[0]["at"], "2026-11-27T02:30:00Z");
    assert_eq!(lines[0]["variants"]["copy"], "warm");
    let first_sent = lines.iter().find(|l| l["kind"] == "sent").expect("a send");
    assert_eq!(first_sent["template"], "invite-warm");
    assert_eq!(first_sent["channel"], "sms");
    assert_eq!(first_sent["at"], "2026-11-28T15:00:00Z");
    let held = lines.iter().find(|l| l["kind"] == "held").expect("a hold");
    assert_eq!(held["until"], "2026-11-28T15:00:00Z");
    // The reminder goes `via email` and Ana has no email: skipped, with why.
    let skipped = lines
        .iter()
        .find(|l| l["kind"] == "skipped")
        .expect("a skip");
    assert_eq!(skipped["template"], "reminder");
    assert!(skipped["reason"].as_str().unwrap().contains("email"));
    assert_eq!(lines.last().unwrap()["kind"], "exited");
}

#[test]
fn simulate_reports_not_enrolled() {
    let out = nudge(&[
        "simulate",
        WAREHOUSE,
        "--start",
        "2026-11-26T20:30:00Z",
        "--candidate",
        "role=Driver",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["kind"], "not_enrolled");
    assert_eq!(line["at"], "2026-11-26T20:30:00Z");
}

#[test]
fn simulate_for_people_uses_local_times_and_says_why() {
    let out = nudge(&[
        "simulate",
        WAREHOUSE,
        "--start",
        "2026-11-26T20:30:00-06:00",
        "--candidate",
        "phone=+15550100",
        "--candidate",
        "role=Warehouse Associate",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Thu 2026-11-26 20:30 -06:00"), "{text}");
    assert!(
        text.contains("outside window mon-thu, sat 09:00-19:00"),
        "{text}"
    );
    assert!(text.contains("Sat 2026-11-28 09:00 -06:00  sent"), "{text}");
}

#[test]
fn simulate_rejects_events_before_start() {
    let out = nudge(&[
        "simulate",
        WAREHOUSE,
        "--start",
        "2026-11-26T20:30:00Z",
        "--event",
        "clicked@2026-11-20T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("before `--start`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn simulate_a_candidate_list_summarises_for_a_recruiter() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(
        dir.path(),
        "list.csv",
        "id,name,phone,email,timezone,role,source\n\
         a1,Ana Ruiz,+15550100,ana@example.com,America/Chicago,Warehouse Associate,indeed\n\
         b2,Bo Chen,,bo@example.com,America/New_York,Warehouse Associate,indeed\n\
         c3,Cy Diaz,,,America/Denver,Warehouse Associate,indeed\n\
         d4,Di Egan,+15550103,,,Warehouse Associate,referral\n",
    );
    let args = [
        "simulate",
        WAREHOUSE,
        "--candidates",
        list.to_str().unwrap(),
        "--start",
        "2026-11-23T15:00:00Z",
    ];
    let out = nudge(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("enrolled             3"), "{text}");
    assert!(text.contains("not enrolled         1"), "{text}");
    assert!(text.contains("who gets nothing: 2 candidates"), "{text}");
    assert!(
        text.contains("c3") && text.contains("no address on any channel (sms, email)"),
        "{text}"
    );
    assert!(
        text.contains("d4") && text.contains("filtered out"),
        "{text}"
    );

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = nudge(&json_args);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["id"], "a1");
    assert_eq!(lines[0]["first_channel"], "sms");
    assert_eq!(lines[1]["first_channel"], "email");
    assert_eq!(lines[2]["messages"], 0);
}

#[test]
fn simulate_list_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(
        dir.path(),
        "bad.csv",
        "id,applied_at\na,2026-11-23T15:00:00Z\nb,last tuesday\n",
    );
    let out = nudge(&[
        "simulate",
        WAREHOUSE,
        "--candidates",
        list.to_str().unwrap(),
        "--start",
        "2026-11-23T15:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.csv:3"), "{}", stderr(&out));
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let out = nudge(&["graph", WAREHOUSE]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("last_call"), "{dot}");
    let out = nudge(&["graph", WAREHOUSE, "--format", "mermaid"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("stateDiagram") || stdout(&out).contains("flowchart"));
}

#[test]
fn fmt_check_accepts_formatted_examples_and_fmt_rewrites() {
    let out = nudge(&["fmt", "--check", "campaigns/"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "messy.nudge",
        "campaign  m{channels email\nstate a{ # first\nsend \"x\"   after 1h->a}}\n",
    );
    let out = nudge(&["fmt", "--check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let name = file.display();
    let diff = format!("--- {name}\n+++ {name}\n@@ -1,3 +1,8 @@\n-campaign  m{{channels email\n");
    assert!(stdout(&out).contains(&diff), "{}", stdout(&out));
    let out = nudge(&["fmt", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let once = std::fs::read_to_string(&file).unwrap();
    assert!(once.contains("# first"), "{once}");
    let out = nudge(&["fmt", "--check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{once}");
}

#[test]
fn render_prints_a_message_as_the_candidate_gets_it() {
    let out = nudge(&[
        "render",
        "warehouse_associate",
        "invite-{copy}",
        "--candidate",
        "name=Ana Ruiz",
        "--variant",
        "copy=short",
        "--channel",
        "sms",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Ana, next"), "{text}");
    assert!(text.contains("Reply STOP"), "{text}");
    assert!(
        stderr(&out).contains("invite-short.sms.j2"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("characters, GSM-7, 1 segment (within the 160 of one SMS segment)"),
        "{}",
        stderr(&out)
    );
    // The link is as long as a real one: `c`, seven digits, `-`, 32 hex.
    let token = text
        .split_whitespace()
        .find_map(|word| word.split_once("/i/"))
        .map(|(_, token)| token)
        .unwrap_or_default();
    assert_eq!(token.len(), 41, "{text}");
    let out = nudge(&[
        "render",
        "warehouse_associate",
        "reminder",
        "--candidate",
        "name=Bo Chen",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("Subject: "), "{}", stdout(&out));
}

#[test]
fn check_renders_templates_and_reports_undefined_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("campaigns")).unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    write(
        &dir.path().join("campaigns"),
        "c.nudge",
        "campaign c {\n  channels sms\n  goal completed\n  state a {\n    send \"hello\"\n    after 1d -> b\n  }\n  state b { end }\n}\n",
    );
    write(
        &dir.path().join("templates"),
        "hello.sms.j2",
        "Hi {{ candidate.first_name }}, {{ lnk }}\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["check", "campaigns"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("lnk"), "{}", stderr(&out));
}

/// A folder with one SMS campaign sending `hello`, whose template is
/// `template`, and a configuration.
fn sms_campaign(template: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("campaigns")).unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    write(
        &dir.path().join("campaigns"),
        "c.nudge",
        "campaign c {\n  channels sms\n  goal completed\n  state a {\n    send \"hello\"\n    after 1d -> b\n  }\n  state b { end }\n}\n",
    );
    write(&dir.path().join("templates"), "hello.sms.j2", template);
    write(
        dir.path(),
        "nudge.toml",
        "company = \"Acme\"\n\n[server]\npublic_url = \"https://jobs.example.com\"\n",
    );
    dir
}

#[test]
fn check_warns_of_an_sms_longer_than_one_segment() {
    // "Acme: " and a 68-character link leave 86 characters for the rest.
    let over = format!("{{{{ company }}}}: {} {{{{ link }}}}\n", "a".repeat(86));
    let dir = sms_campaign(&over);
    let out = nudge_in(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = format!(
        "warning: sms `hello.sms.j2` can render to 161 characters, over the 160 of one segment
 --> templates/hello.sms.j2:1:1
  |
1 | {}
  | {} 161 characters, GSM-7, 2 segments with a real-length link and the longest names
  |
  = help: shorten it by 1: a longer text costs 2 messages and may arrive in parts
",
        over.trim_end(),
        "^".repeat(over.trim_end().len())
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));

    let within = format!("{{{{ company }}}}: {} {{{{ link }}}}\n", "a".repeat(85));
    let out = nudge_in(sms_campaign(&within).path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn check_channels_connects_without_sending_and_reports_what_fails() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = write(
        dir.path(),
        "nudge.toml",
        &format!(
            "campaigns = \"{}\"\ntemplates = \"{}\"\nstore = \"store\"\n\n[channels.email]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"plain\"\nfrom = \"Jobs <jobs@example.com>\"\ntimeout_secs = 2\n",
            root.join("campaigns").display(),
            root.join("templates").display()
        ),
    );
    let out = nudge(&["--config", config.to_str().unwrap(), "check", "--channels"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: channel email (smtp 127.0.0.1"),
        "{err}"
    );
    assert!(err.contains("channel sms (console): ok"), "{err}");
}
