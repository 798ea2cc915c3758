//! The template renderer against the repository's real `templates/` folder,
//! and against small folders written for one case each.

use crate::support::at;
use std::path::{Path, PathBuf};

use chrono::Duration;
use nudge::channels::segments::Encoding;
use nudge::engine::{Candidate, Channel};
use nudge::templates::{
    format_deadline, lookup_order, real_length_link, time_left, Rendered, TemplateError, Templates,
    Vars, REAL_LENGTH_TOKEN,
};

fn repo_templates() -> Templates {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    Templates::load(&dir).expect("the shipped templates compile")
}

/// A folder holding `files` (name, text).
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn every_shipped_template_renders_with_the_sample() {
    let templates = repo_templates();
    assert!(templates.files().count() >= 30);
    let errors = templates.check_all(&Vars::sample());
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn every_shipped_template_renders_on_its_channel() {
    let templates = repo_templates();
    let vars = Vars::sample();
    for file in templates.files().map(str::to_string).collect::<Vec<_>>() {
        if file.ends_with(".html.j2") {
            continue; // HTML alternatives: see the HTML test below.
        }
        let parts: Vec<&str> = file.trim_end_matches(".j2").split('.').collect();
        let (name, language, channel) = match parts.as_slice() {
            [name, channel] => (*name, None, *channel),
            [name, language, channel] => (*name, Some(*language), *channel),
            _ => panic!("unexpected file name {file}"),
        };
        let channel = Channel::from_name(channel).unwrap();
        assert_eq!(templates.resolve(name, channel, language), Some(&*file));
        let rendered = templates.render(name, channel, language, &vars).unwrap();
        assert!(!rendered.body.contains("{{"), "{file}: {}", rendered.body);
        assert!(rendered.body.contains("Ana"), "{file}: {}", rendered.body);
        assert_eq!(
            rendered.subject.is_some(),
            channel == Channel::Email,
            "{file}"
        );
    }
}

#[test]
fn invite_sms_reads_as_written() {
    let rendered = repo_templates()
        .render("invite-short", Channel::Sms, None, &Vars::sample())
        .unwrap();
    assert_eq!(
        rendered,
        Rendered {
            subject: None,
            body: "Acme Logistics: Ana, next: a 10-min interview on your phone \
                   https://jobs.example.com/i/sample Reply STOP to opt out"
                .to_string(),
        }
    );
}

#[test]
fn email_subject_is_taken_out_of_the_body() {
    let rendered = repo_templates()
        .render("reminder", Channel::Email, None, &Vars::sample())
        .unwrap();
    assert_eq!(
        rendered.subject.as_deref(),
        Some("Your interview for Warehouse Associate, Dallas DC is still open")
    );
    assert!(
        rendered.body.starts_with("Hi Ana,\n\nA quick reminder"),
        "{}",
        rendered.body
    );
    assert!(rendered
        .body
        .ends_with("Unsubscribe: https://jobs.example.com/u/sample"));
}

#[test]
fn spanish_is_chosen_for_es_and_es_mx() {
    let templates = repo_templates();
    for language in ["es", "es-MX", "ES", "es_MX"] {
        assert_eq!(
            templates.resolve("invite-short", Channel::Sms, Some(language)),
            Some("invite-short.es.sms.j2"),
            "{language}"
        );
        let rendered = templates
            .render(
                "invite-short",
                Channel::Sms,
                Some(language),
                &Vars::sample(),
            )
            .unwrap();
        assert!(rendered.body.contains("Hola Ana"), "{}", rendered.body);
    }
    // No Spanish `invite-direct`: the English file serves.
    assert_eq!(
        templates.resolve("invite-direct", Channel::Email, Some("es")),
        Some("invite-direct.email.j2")
    );
    assert_eq!(
        templates.resolve("invite-short", Channel::Sms, Some("fr")),
        Some("invite-short.sms.j2")
    );
}

#[test]
fn lookup_order_follows_the_language_then_the_channel() {
    assert_eq!(
        lookup_order("invite", Channel::Sms, Some("pt-BR")),
        [
            "invite.pt-BR.sms.j2",
            "invite.pt-BR.j2",
            "invite.pt.sms.j2",
            "invite.pt.j2",
            "invite.sms.j2",
            "invite.j2",
        ]
    );
    assert_eq!(
        lookup_order("invite", Channel::Email, None),
        ["invite.email.j2", "invite.j2"]
    );
}

#[test]
fn pt_br_falls_back_to_pt() {
    let dir = folder(&[
        ("invite.pt.j2", "Ola {{ candidate.first_name }}"),
        ("invite.j2", "Hi {{ candidate.first_name }}"),
        ("welcome.pt-BR.sms.j2", "Oi {{ candidate.first_name }}"),
        ("welcome.pt.sms.j2", "Ola {{ candidate.first_name }}"),
    ]);
    let templates = Templates::load(dir.path()).unwrap();
    let vars = Vars::sample();
    let render = |name, language| {
        templates
            .render(name, Channel::Sms, language, &vars)
            .unwrap()
            .body
    };
    assert_eq!(render("invite", Some("pt-BR")), "Ola Ana");
    assert_eq!(render("invite", Some("pt")), "Ola Ana");
    assert_eq!(render("invite", None), "Hi Ana");
    assert_eq!(render("welcome", Some("pt-BR")), "Oi Ana");
    assert_eq!(render("welcome", Some("pt-PT")), "Ola Ana");
}

#[test]
fn a_name_resolved_again_resolves_to_the_same_file() {
    // Resolutions are remembered per name, channel and language: asking in
    // another order, or again, must give what a fresh load gives.
    let dir = folder(&[
        ("invite.pt.j2", "Ola"),
        ("invite.j2", "Hi"),
        ("invite.email.j2", "Subject: Hi\n\nHi"),
        ("invite.email.html.j2", "<p>Hi</p>"),
        ("invite.pt.email.j2", "Subject: Ola\n\nOla"),
        ("welcome.pt-BR.sms.j2", "Oi"),
    ]);
    let asks: Vec<(&str, Channel, Option<&str>)> = ["invite", "welcome", "nothing"]
        .into_iter()
        .flat_map(|name| {
            [Channel::Sms, Channel::Email]
                .into_iter()
                .flat_map(move |channel| {
                    [None, Some("pt"), Some("pt-BR"), Some("PT_br"), Some("es")]
                        .into_iter()
                        .map(move |language| (name, channel, language))
                })
        })
        .collect();
    // The file a name resolves to, and the email's HTML alternative.
    let answer = |templates: &Templates,
                  (name, channel, language): (&str, Channel, Option<&str>)| {
        let file = templates
            .resolve(name, channel, language)
            .map(str::to_string);
        let html = templates.render_html(name, language, &Vars::sample());
        (file, html.ok().flatten())
    };
    let want: Vec<_> = asks
        .iter()
        .map(|&ask| answer(&Templates::load(dir.path()).unwrap(), ask))
        .collect();
    let templates = Templates::load(dir.path()).unwrap();
    for round in 0..2 {
        for (i, &ask) in asks.iter().enumerate().rev() {
            assert_eq!(answer(&templates, ask), want[i], "round {round}: {ask:?}");
        }
    }
    assert_eq!(want[0].0.as_deref(), Some("invite.j2"));
    assert_eq!(
        templates.resolve("invite", Channel::Email, Some("pt-BR")),
        Some("invite.pt.email.j2")
    );
    assert_eq!(
        templates.resolve("welcome", Channel::Sms, Some("PT_br")),
        Some("welcome.pt-BR.sms.j2")
    );
}

#[test]
fn a_missing_variable_names_template_line_and_variable() {
    let dir = folder(&[(
        "invite.sms.j2",
        "Hi {{ candidate.first_name }},\nyour link: {{ linkk }}\n",
    )]);
    let templates = Templates::load(dir.path()).unwrap();
    let error = templates
        .render("invite", Channel::Sms, None, &Vars::sample())
        .unwrap_err();
    let TemplateError::Undefined {
        template,
        line,
        variable,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(
        (template.as_str(), *line, variable.as_str()),
        ("invite.sms.j2", Some(2), "linkk")
    );
    assert_eq!(
        error.to_string(),
        "template `invite.sms.j2` line 2: `linkk` is undefined"
    );
    assert_eq!(templates.check_all(&Vars::sample()).len(), 1);
}

#[test]
fn a_missing_candidate_field_fails_the_send_but_not_the_check() {
    let dir = folder(&[(
        "shift.sms.j2",
        "Hi {{ candidate.first_name }}, your {{ candidate.shift }} shift\n\
         {{ candidate.badge | default(\"no badge\") }}\n\
         {% if candidate.floor is defined %}floor {{ candidate.floor }}{% endif %}\
         {% if candidate.gate %}gate {{ candidate.gate }}{% endif %}",
    )]);
    let templates = Templates::load(dir.path()).unwrap();
    assert!(templates.check_all(&Vars::sample()).is_empty());

    let mut vars = Vars::sample();
    let error = templates
        .render("shift", Channel::Sms, None, &vars)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "template `shift.sms.j2` line 1: `candidate.shift` is undefined"
    );
    vars.candidate.insert("shift".into(), "night".into());
    let rendered = templates
        .render("shift", Channel::Sms, None, &vars)
        .unwrap();
    assert_eq!(rendered.body, "Hi Ana, your night shift\nno badge");
}

#[test]
fn check_finds_unknown_names_that_only_a_test_uses() {
    let dir = folder(&[(
        "invite.sms.j2",
        "Hi {{ candidate.first_name }}\n{% if linkk %}{{ linkk }}{% endif %}\n\
         {% for x in range(2) %}{{ x }}{% endfor %}{{ link }}{% if deadline %}!{% endif %}",
    )]);
    let templates = Templates::load(dir.path()).unwrap();
    // Rendering succeeds: a test of an unknown name is false.
    assert!(templates
        .render("invite", Channel::Sms, None, &Vars::sample())
        .is_ok());
    let errors: Vec<String> = templates
        .check_all(&Vars::sample())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        ["template `invite.sms.j2` line 2: `linkk` is undefined"]
    );
    // A sample without a deadline still knows `deadline` is a variable.
    let sample = Vars {
        deadline: None,
        ..Vars::sample()
    };
    assert_eq!(templates.check_all(&sample).len(), 1);
}

#[test]
fn unset_optional_variables_are_undefined_not_none() {
    let dir = folder(&[("last.sms.j2", "Open until {{ deadline }}")]);
    let templates = Templates::load(dir.path()).unwrap();
    let vars = Vars {
        deadline: None,
        ..Vars::sample()
    };
    let error = templates
        .render("last", Channel::Sms, None, &vars)
        .unwrap_err();
    assert!(
        matches!(&error, TemplateError::Undefined { variable, .. } if variable == "deadline"),
        "{error:?}"
    );
}

#[test]
fn a_missing_template_lists_the_files_tried() {
    let error = repo_templates()
        .render("reminder", Channel::Sms, Some("es-MX"), &Vars::sample())
        .unwrap_err();
    let TemplateError::Missing {
        name,
        channel,
        tried,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!((name.as_str(), *channel), ("reminder", Channel::Sms));
    assert_eq!(
        tried,
        &[
            "reminder.es-MX.sms.j2",
            "reminder.es-MX.j2",
            "reminder.es.sms.j2",
            "reminder.es.j2",
            "reminder.sms.j2",
            "reminder.j2",
        ]
    );
    assert!(error.to_string().starts_with(
        "no template `reminder` for sms: tried `reminder.es-MX.sms.j2`, `reminder.es-MX.j2`"
    ));
}

#[test]
fn a_syntax_error_names_file_and_line() {
    let dir = folder(&[
        ("fine.sms.j2", "Hi {{ candidate.first_name }}"),
        ("broken.sms.j2", "Hi\n{{ candidate.first_name }\n"),
        ("open.j2", "{% if link %}\nno end\n"),
    ]);
    let error = Templates::load(dir.path()).unwrap_err();
    let TemplateError::Syntax { file, line, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!((file.as_str(), *line), ("broken.sms.j2", Some(2)));
    assert!(error
        .to_string()
        .starts_with("syntax error in template `broken.sms.j2` line 2: "));

    let (templates, errors) = Templates::load_partial(dir.path()).unwrap();
    let files: Vec<String> = errors
        .iter()
        .map(|e| match e {
            TemplateError::Syntax { file, .. } => file.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(files, ["broken.sms.j2", "open.j2"]);
    assert_eq!(templates.check_all(&Vars::sample()).len(), 2);
    assert!(templates
        .render("fine", Channel::Sms, None, &Vars::sample())
        .is_ok());
    assert!(matches!(
        templates.render("broken", Channel::Sms, None, &Vars::sample()),
        Err(TemplateError::Syntax { .. })
    ));
}

#[test]
fn subject_lines_by_channel() {
    let dir = folder(&[
        (
            "shared.j2",
            "Subject: Hello {{ candidate.first_name }}\n\nBody for {{ candidate.name }}\n",
        ),
        ("plain.email.j2", "No subject here\n"),
        ("empty.sms.j2", "{% if false %}x{% endif %}\n"),
    ]);
    let templates = Templates::load(dir.path()).unwrap();
    let vars = Vars::sample();
    for channel in [Channel::Email, Channel::Sms] {
        let rendered = templates.render("shared", channel, None, &vars).unwrap();
        assert_eq!(rendered.subject.as_deref(), Some("Hello Ana"));
        assert_eq!(rendered.body, "Body for Ana Ruiz");
    }
    let error = templates
        .render("plain", Channel::Email, None, &vars)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "email template `plain.email.j2` does not start with a `Subject:` line"
    );
    assert!(matches!(
        templates.render("empty", Channel::Sms, None, &vars),
        Err(TemplateError::EmptyBody { .. })
    ));
    assert_eq!(templates.check_all(&vars).len(), 2);
}

#[test]
fn plain_text_is_not_escaped() {
    let dir = folder(&[
        ("note.sms.j2", "{{ candidate.name }}"),
        ("note.html.j2", "{{ candidate.name }}"),
    ]);
    let templates = Templates::load(dir.path()).unwrap();
    let mut vars = Vars::sample();
    vars.candidate.insert("name".into(), "Ana <b>& Co".into());
    let rendered = templates.render("note", Channel::Sms, None, &vars).unwrap();
    assert_eq!(rendered.body, "Ana <b>& Co");
    let errors = templates.check_all(&vars);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn candidate_fields_derive_first_name() {
    let candidate = Candidate::from_pairs([("name", "Ana Maria Ruiz"), ("shift", "night")], "a-1");
    let fields = Vars::candidate_fields(&candidate);
    assert_eq!(fields["first_name"], "Ana");
    assert_eq!(fields["shift"], "night");
    assert_eq!(fields["id"], "a-1");
    let given = Candidate::from_pairs([("name", "Ana Ruiz"), ("first_name", "Anita")], "a-2");
    assert_eq!(Vars::candidate_fields(&given)["first_name"], "Anita");
}

#[test]
fn deadlines_read_in_the_candidates_zone() {
    let deadline = at("2026-12-03T20:00:00Z");
    assert_eq!(
        format_deadline(deadline, chrono_tz::America::Chicago),
        "Thu 3 Dec, 14:00 CST"
    );
    assert_eq!(
        format_deadline(deadline, chrono_tz::Europe::Madrid),
        "Thu 3 Dec, 21:00 CET"
    );
    assert_eq!(
        format_deadline(deadline, chrono_tz::UTC),
        "Thu 3 Dec, 20:00 UTC"
    );
}

#[test]
fn time_left_in_words() {
    let now = at("2026-12-01T00:00:00Z");
    let cases = [
        (Duration::hours(72), "3 days"),
        (Duration::hours(60), "2 days"),
        (Duration::hours(61), "3 days"),
        (Duration::hours(48), "2 days"),
        (Duration::minutes(47 * 60 + 31), "2 days"),
        (Duration::hours(47), "47 hours"),
        (Duration::hours(36), "36 hours"),
        (Duration::hours(25), "25 hours"),
        (Duration::minutes(24 * 60 + 20), "1 day"),
        (Duration::hours(24), "1 day"),
        (Duration::minutes(23 * 60 + 40), "1 day"),
        (Duration::hours(23), "23 hours"),
        (Duration::hours(5), "5 hours"),
        (Duration::minutes(90), "1 hour"),
        (Duration::minutes(91), "2 hours"),
        (Duration::minutes(60), "1 hour"),
        (Duration::seconds(59 * 60 + 40), "1 hour"),
        (Duration::minutes(45), "45 minutes"),
        (Duration::seconds(61), "1 minute"),
        (Duration::seconds(59), "less than a minute"),
        (Duration::zero(), "less than a minute"),
        (Duration::hours(-3), "less than a minute"),
    ];
    for (left, words) in cases {
        assert_eq!(time_left(now, now + left), words, "{left}");
    }
}

#[test]
fn templates_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Templates>();
    let _: PathBuf = repo_templates().dir().to_path_buf();
}

#[test]
fn an_email_with_an_html_file_gets_an_escaped_html_alternative() {
    let templates =
        Templates::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"))
            .unwrap();
    let mut vars = Vars::sample();
    vars.candidate
        .insert("first_name".into(), "<Ana & Co>".into());
    let html = templates
        .render_html("invite-direct", None, &vars)
        .unwrap()
        .expect("an HTML file exists");
    assert!(html.contains("&lt;Ana &amp; Co&gt;"), "{html}");
    assert!(
        html.contains(&format!("href=\"{}\"", vars.link.replace('/', "&#x2f;")))
            || html.contains(&vars.link),
        "{html}"
    );
    assert_eq!(
        templates.render_html("reminder", None, &vars).unwrap(),
        None
    );
}

/// The interview link of templates/README.md, as a deployment would have it.
const REAL_URL: &str = "https://jobs.example.com/i/{token}";

#[test]
fn a_real_length_link_has_a_real_token() {
    // `c`, a seven-digit candidate number, `-`, 128 bits in hex.
    let (id, secret) = REAL_LENGTH_TOKEN.split_once('-').unwrap();
    assert!(id
        .strip_prefix('c')
        .is_some_and(|n| n.len() == 7 && n.bytes().all(|b| b.is_ascii_digit())));
    assert!(secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()));
    let link = real_length_link(REAL_URL);
    assert_eq!(link.len(), 68, "{link}");
    let longest = Vars::longest(REAL_URL);
    assert_eq!(longest.link, link);
    assert_eq!(longest.deadline.as_deref(), Some("Wed 30 Sep, 23:59 +0545"));
    assert_eq!(longest.time_left.as_deref(), Some("less than a minute"));
    assert_eq!(longest.candidate["first_name"], "Christopher");
}

#[test]
fn every_shipped_sms_fits_one_segment_with_a_real_length_link() {
    let templates = repo_templates();
    let sms = templates.files().filter(|f| f.ends_with(".sms.j2")).count();
    assert!(sms >= 12, "{sms} SMS templates");
    let long: Vec<String> = templates
        .check_lengths(&Vars::longest(REAL_URL))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

#[test]
fn an_sms_past_one_segment_warns_and_one_within_does_not() {
    // 92 characters of text and a 68-character link: 160, one segment;
    // one character more is two.
    let within = format!("{}{{{{ link }}}}", "a".repeat(92));
    let over = format!("{}{{{{ link }}}}", "a".repeat(93));
    // `á` is outside GSM-7: the whole text is UCS-2, 70 to a segment.
    let accented = "Hola, tu entrevista está lista: {{ link }}";
    let dir = folder(&[
        ("within.sms.j2", &within),
        ("over.sms.j2", &over),
        ("accented.es.sms.j2", accented),
        // WhatsApp and email are not cut into segments.
        ("over.whatsapp.j2", &over),
        ("over.email.j2", &format!("Subject: s\n\n{over}")),
    ]);
    let templates = Templates::load(dir.path()).unwrap();
    let long = templates.check_lengths(&Vars::longest(REAL_URL));
    let files: Vec<&str> = long.iter().map(|l| l.file.as_str()).collect();
    assert_eq!(files, ["accented.es.sms.j2", "over.sms.j2"]);
    assert_eq!(
        long[1].to_string(),
        "sms `over.sms.j2` can render to 161 characters, over the 160 of one segment"
    );
    assert_eq!(long[1].size.segments, 2);
    assert_eq!(long[0].size.encoding, Encoding::Ucs2);
    assert_eq!(
        long[0].to_string(),
        "sms `accented.es.sms.j2` can render to 100 UTF-16 units, over the 70 of one segment"
    );
}
