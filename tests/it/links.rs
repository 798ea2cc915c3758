//! The links every message carries, through the real `nudge run` and its
//! public server on loopback (reqwest, redirects not followed): the
//! tracked link (`/i/TOKEN`: `clicked` with the device, 302 to the
//! interview), the open pixel (`/o/TOKEN.gif`: `opened`) and unsubscribe
//! (`/u/TOKEN`: a page, then `opted_out` by its button or RFC 8058
//! one-click), and an email received by a loopback SMTP server carrying
//! them. Also the public server's generic answers (item 1 of issue 14):
//! 404 pages and JSON, 413 before the body is read. That the admin API
//! refuses a request without its token (401) is
//! `daemon::the_admin_api_wants_its_token_and_names_the_campaigns_it_has`;
//! a request here checks it once more beside the public server.

use std::io::{Read, Write};
use std::net::TcpStream;

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, USER_AGENT};
use reqwest::StatusCode;

use crate::support::dkim::{verify, PublicKey};
use crate::support::site::*;
use crate::support::smtp::Inbox;
use crate::support::{stderr, stdout};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const ROBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// The default interview address of these sites, with every placeholder.
const INTERVIEW: &str = "https://interview.example/start?t={token}&c={candidate}&k={campaign}";

/// The probe site with [`INTERVIEW`] as `interview_url` (or none).
fn site_with(interview_url: Option<&str>) -> Site {
    let site = Site::probe();
    let config = std::fs::read_to_string(site.config()).unwrap();
    let line = "interview_url = \"https://interview.example/i/{token}\"\n";
    assert!(config.contains(line));
    let replaced = match interview_url {
        Some(url) => format!("interview_url = \"{url}\"\n"),
        None => String::new(),
    };
    site.write("nudge.toml", &config.replace(line, &replaced));
    site
}

/// Enrolls `id` in `campaign`; the candidate id and link token.
fn enroll_in(site: &Site, campaign: &str, id: &str) -> (String, String) {
    let email = format!("{id}@example.com");
    let out = site
        .command(&[
            "enroll",
            "--campaign",
            campaign,
            "--id",
            id,
            "--name",
            "Ana Ruiz",
            "--email",
            &email,
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let link = answer["link"].as_str().unwrap();
    let prefix = site.public_url("/i/");
    let token = link
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("the link {link} is {prefix}TOKEN"));
    (
        answer["candidate"].as_str().unwrap().to_string(),
        token.to_string(),
    )
}

/// `nudge show --json`.
fn show(site: &Site, who: &str) -> serde_json::Value {
    let out = site.nudge(&["show", who, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The texts of the events received for `who`, in order, that start with
/// `event`.
fn received(site: &Site, who: &str, event: &str) -> Vec<String> {
    show(site, who)["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "event")
        .map(|l| l["text"].as_str().unwrap().to_string())
        .filter(|t| t.starts_with(&format!("{event} received")))
        .collect()
}

async fn get(site: &Site, path: &str, agent: &str) -> reqwest::Response {
    no_redirects()
        .get(site.public_url(path))
        .header(USER_AGENT, agent)
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no Location in {response:?}"))
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------- the tracked link

#[tokio::test]
async fn a_click_records_the_device_and_redirects_to_the_filled_interview_address() {
    let site = site_with(Some(INTERVIEW));
    let daemon = site.start(None);
    let (id, token) = enroll_in(&site, "probe", "k1");
    let interview = format!("https://interview.example/start?t={token}&c={id}&k=probe");

    for agent in [IPHONE, IPAD, DESKTOP] {
        let response = get(&site, &format!("/i/{token}"), agent).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{agent}");
        assert_eq!(location(&response), interview);
        let cache = response.headers()[CACHE_CONTROL].to_str().unwrap();
        assert!(cache.contains("no-store"), "{cache}");
    }
    // A robot (a link preview) and a HEAD are sent on, and are no click.
    let response = get(&site, &format!("/i/{token}"), ROBOT).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let response = no_redirects()
        .head(site.public_url(&format!("/i/{token}")))
        .header(USER_AGENT, IPHONE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);

    assert_eq!(
        received(&site, "k1", "clicked"),
        [
            "clicked received (device=mobile)",
            "clicked received (device=tablet)",
            "clicked received (device=desktop)",
        ]
    );
    // The click moved the candidate on (`on clicked -> clicked`), and the
    // people's `show` says which device.
    let view = show(&site, "k1");
    assert_eq!(view["enrollments"][0]["state"], "clicked", "{view}");
    let out = site.nudge(&["show", "k1"]);
    assert!(
        stdout(&out).contains("clicked received (device=tablet)"),
        "{}",
        stdout(&out)
    );
    daemon.stop();
}

#[tokio::test]
async fn the_campaigns_link_comes_before_interview_url_and_without_either_nudge_says_so() {
    let site = site_with(Some(INTERVIEW));
    site.write(
        "campaigns/night.nudge",
        r#"campaign night_shift {
  title "Night Shift"
  channels email
  link "https://night.example/{campaign}/{candidate}?t={token}"
  goal completed

  state invite {
    send "ping"
    on clicked -> done
    after 72h -> done
  }

  state done {
    end
  }
}
"#,
    );
    let daemon = site.start(None);
    // In both: the campaign with a `link` leads.
    let (both, both_token) = enroll_in(&site, "probe", "both");
    enroll_in(&site, "night_shift", "both");
    let response = get(&site, &format!("/i/{both_token}"), IPHONE).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response),
        format!("https://night.example/night_shift/{both}?t={both_token}")
    );
    // Only in the campaign without one: `interview_url`.
    let (plain, plain_token) = enroll_in(&site, "probe", "plain");
    let response = get(&site, &format!("/i/{plain_token}"), IPHONE).await;
    assert_eq!(
        location(&response),
        format!("https://interview.example/start?t={plain_token}&c={plain}&k=probe")
    );
    daemon.stop();

    // Neither: nudge's own page, and the click is still recorded.
    let bare = site_with(None);
    let daemon = bare.start(None);
    let (_, token) = enroll_in(&bare, "probe", "bare");
    let response = get(&bare, &format!("/i/{token}"), DESKTOP).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/html"));
    let page = response.text().await.unwrap();
    assert!(page.contains("Your interview link works"), "{page}");
    assert!(page.contains("not connected the interview"), "{page}");
    assert_eq!(
        received(&bare, "bare", "clicked"),
        ["clicked received (device=desktop)"]
    );
    daemon.stop();
}

#[tokio::test]
async fn a_click_while_the_store_cannot_write_still_reaches_the_interview() {
    let site = site_with(Some(INTERVIEW));
    let daemon = site.start_faulty();
    let (id, token) = enroll_in(&site, "probe", "t1");
    site.set_fault("fail");
    let mark = daemon.mark();
    let response = get(&site, &format!("/i/{token}"), IPHONE).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response),
        format!("https://interview.example/start?t={token}&c={id}&k=probe")
    );
    daemon.wait_line(mark, &["the click was not recorded"]);
    // An unsubscribe that cannot be recorded says so (and is not lost in
    // silence): 503, to be tried again.
    let response = no_redirects()
        .post(site.public_url(&format!("/u/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = response.text().await.unwrap();
    assert!(page.contains("try again"), "{page}");
    assert!(!page.contains("panicked"), "{page}");

    site.set_fault("none");
    wait_for(|| {
        (http(site.port, "GET", "/v1/health", Some(&site.token()), "").0 == 200).then_some(())
    })
    .expect("writable again");
    assert!(received(&site, "t1", "clicked").is_empty());
    assert!(received(&site, "t1", "opted_out").is_empty());
    daemon.stop();
}

// ------------------------------------------ unknown tokens, generic answers

/// A raw request that declares a body of `length` bytes and sends none:
/// the status and body of the answer.
fn declared(port: u16, path: &str, length: usize) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[tokio::test]
async fn unknown_tokens_get_a_page_the_pixel_answers_every_token_and_the_server_answers_people_and_machines(
) {
    let site = site_with(Some(INTERVIEW));
    let daemon = site.start(None);
    let (id, token) = enroll_in(&site, "probe", "p1");

    // Not a token: an id, an external id, a wrong secret, no UTF-8.
    let wrong = format!("{id}-{}", "0".repeat(32));
    for path in [
        format!("/i/{id}"),
        "/i/p1".to_string(),
        format!("/i/{wrong}"),
        format!("/i/{}", token.to_uppercase()),
        format!("/u/{wrong}"),
        "/i/%FF%FE".to_string(),
    ] {
        let response = get(&site, &path, IPHONE).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(content_type(&response).starts_with("text/html"), "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("This link does not work"), "{path}: {page}");
    }
    let response = no_redirects()
        .post(site.public_url(&format!("/u/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The pixel: the same GIF for a real token, a wrong one and nonsense;
    // only the real one is an open.
    let mut bodies = Vec::new();
    for path in [
        format!("/o/{token}.gif"),
        format!("/o/{wrong}.gif"),
        "/o/nothing".to_string(),
        "/o/%FF.gif".to_string(),
    ] {
        let response = get(&site, &path, DESKTOP).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(content_type(&response), "image/gif");
        let cache = response.headers()[CACHE_CONTROL].to_str().unwrap();
        assert!(
            cache.contains("no-store") && cache.contains("no-cache"),
            "{cache}"
        );
        bodies.push(response.bytes().await.unwrap());
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]));
    assert!(bodies[0].starts_with(b"GIF89a"), "{:?}", bodies[0]);
    assert_eq!(&bodies[0][6..10], &[1, 0, 1, 0], "1x1");
    assert_eq!(received(&site, "p1", "opened"), ["opened received"]);
    let view = show(&site, "p1");
    assert_eq!(view["opted_out"], false);
    assert!(received(&site, "p1", "clicked").is_empty());

    // People get pages; machines get JSON.
    let response = get(&site, "/no/such/page", IPHONE).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(content_type(&response).starts_with("text/html"));
    let response = get(&site, "/v1/webhooks/nope", "curl/8").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("/v1/webhooks/nope"));
    // A body declared over 1 MiB is refused before it is read.
    let (status, body) = declared(site.public_port, "/v1/webhooks/interview", (1 << 20) + 1);
    assert_eq!(status, 413, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("at most"),
        "{body}"
    );
    // The admin API still wants its token.
    let (status, _) = http(site.port, "GET", "/v1/status", None, "");
    assert_eq!(status, 401);
    daemon.stop();
}

// ------------------------------------------------------------- unsubscribe

#[tokio::test]
async fn unsubscribing_by_the_page_or_one_click_opts_out_once_and_nothing_more_is_sent() {
    let site = site_with(Some(INTERVIEW));
    // Two virtual hours (the probe's `after 2h`) in six real seconds.
    let clock = VirtualClock::new("2026-03-02T09:00:00Z", 1200.0);
    let daemon = site.start(Some(&clock));
    let (page_id, page_token) = enroll_in(&site, "probe", "u1");
    let (click_id, _) = enroll_in(&site, "probe", "u2");
    let (kept_id, _) = enroll_in(&site, "probe", "u3");
    for id in [&page_id, &click_id, &kept_id] {
        site.wait_sent(id, "ping");
    }

    // The page names the company and has the button; opening it records
    // nothing (mail scanners open links).
    let response = get(&site, &format!("/u/{page_token}"), IPHONE).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("Example Co"), "{page}");
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert!(page.contains("<button"), "{page}");
    assert_eq!(show(&site, "u1")["opted_out"], false);

    // The button (an empty form), twice: recorded once.
    for _ in 0..2 {
        let response = no_redirects()
            .post(site.public_url(&format!("/u/{page_token}")))
            .form(&[] as &[(&str, &str)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page = response.text().await.unwrap();
        assert!(page.contains("You are unsubscribed"), "{page}");
        assert!(page.contains("Example Co"), "{page}");
    }
    assert_eq!(show(&site, "u1")["opted_out"], true);
    assert_eq!(
        received(&site, "u1", "opted_out"),
        ["opted_out received (via=page)"]
    );

    // One-click, at the address the email's `List-Unsubscribe` gave.
    let sent = site.sent();
    let email = sent
        .iter()
        .map(|(m, _)| m)
        .find(|m| m.candidate == click_id)
        .unwrap();
    let header_url = email.unsubscribe_url.clone().expect("List-Unsubscribe");
    assert!(
        header_url.starts_with(&site.public_url("/u/")),
        "{header_url}"
    );
    let response = no_redirects()
        .post(&header_url)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        received(&site, "u2", "opted_out"),
        ["opted_out received (via=one-click)"]
    );
    // The text says the same address (`unsubscribe_link`).
    assert!(email.body.contains(&header_url), "{}", email.body);

    // Who opted out still reaches the interview.
    let response = get(&site, &format!("/i/{page_token}"), IPHONE).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(location(&response).starts_with("https://interview.example/start?"));

    // Two hours on, the one who stayed gets the next message; the others
    // never do.
    site.wait_sent(&kept_id, "pong");
    std::thread::sleep(std::time::Duration::from_millis(500));
    for id in [&page_id, &click_id] {
        let templates: Vec<String> = site.sent_to(id).into_iter().map(|(t, _)| t).collect();
        assert_eq!(templates, ["ping"], "{id}");
    }
    daemon.stop();
}

// --------------------------------------------------- an email over SMTP

/// A header's value, unfolded.
fn header(mail: &str, name: &str) -> Option<String> {
    let head = mail.split_once("\r\n\r\n")?.0;
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        match &mut value {
            Some(v) if line.starts_with([' ', '\t']) => {
                v.push(' ');
                v.push_str(line.trim());
            }
            Some(_) => break,
            None => {
                if let Some((n, v)) = line.split_once(':') {
                    if n.eq_ignore_ascii_case(name) {
                        value = Some(v.trim().to_string());
                    }
                }
            }
        }
    }
    value
}

/// The body of the MIME part of `content_type`, its quoted-printable
/// undone.
fn part(mail: &str, content_type: &str) -> String {
    let start = mail
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part in\n{mail}"));
    let body = &mail[start..];
    let body = &body[body.find("\r\n\r\n").unwrap() + 4..];
    unquote(&body[..body.find("\r\n--").unwrap_or(body.len())])
}

/// Quoted-printable undone (soft breaks and `=XX`).
fn unquote(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn an_email_carries_list_unsubscribe_and_the_open_pixel_and_both_work() {
    let site = site_with(Some(INTERVIEW));
    let inbox = Inbox::default();
    let smtp = inbox.start();
    let config = std::fs::read_to_string(site.config()).unwrap();
    let file_email = "[channels.email]\ntransport = \"file\"\npath = \"out/email.jsonl\"\n";
    assert!(config.contains(file_email));
    site.write(
        "nudge.toml",
        &config.replace(
            file_email,
            &format!(
                "[channels.email]\ntransport = \"smtp\"\nhost = \"{}\"\nport = {}\nsecurity = \"plain\"\n\
                 from = \"Jobs <jobs@example.com>\"\n\
                 dkim = {{ domain = \"example.com\", selector = \"nudge\", algorithm = \"rsa\", private_key_path = \"dkim.key\" }}\n",
                smtp.ip(),
                smtp.port()
            ),
        ),
    );
    std::fs::copy(
        crate::support::repo().join("tests/it/fixtures/smtp/dkim-test-pkcs8.pem"),
        site.path().join("dkim.key"),
    )
    .unwrap();
    site.write(
        "templates/ping.email.html.j2",
        "<html><body><p>Hi {{ candidate.first_name }}, <a href=\"{{ link }}\">your interview</a>.</p>\n\
         <p><a href=\"{{ unsubscribe_link }}\">Unsubscribe</a></p></body></html>\n",
    );
    let daemon = site.start(None);
    let (_, token) = enroll_in(&site, "probe", "m1");
    let mail = wait_for(|| inbox.mails().first().cloned())
        .unwrap_or_else(|| panic!("no email arrived:\n{}", daemon.log()));
    let text = String::from_utf8(mail.data.clone()).unwrap();

    let unsubscribe = site.public_url(&format!("/u/{token}"));
    assert_eq!(
        header(&text, "List-Unsubscribe"),
        Some(format!("<{unsubscribe}>"))
    );
    assert_eq!(
        header(&text, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let signature = header(&text, "DKIM-Signature").expect("signed");
    let signed = signature.to_ascii_lowercase().replace([' ', '\t'], "");
    assert!(
        signed.contains("list-unsubscribe:list-unsubscribe-post"),
        "{signature}"
    );
    let public = PublicKey::fixture("dkim-test-pkcs8.pem", "nudge", "example.com");
    if let Err(why) = verify(&mail.data, &public) {
        panic!("does not verify: {why}\n{text}");
    }

    // The HTML part has the pixel before `</body>`; the text part has none.
    let pixel = site.public_url(&format!("/o/{token}.gif"));
    let (plain, html) = (part(&text, "text/plain"), part(&text, "text/html"));
    let img = format!("<img src=\"{pixel}\" width=\"1\" height=\"1\"");
    let at = html
        .find(&img)
        .unwrap_or_else(|| panic!("no pixel in\n{html}"));
    assert!(at < html.find("</body>").unwrap(), "{html}");
    assert_eq!(html.matches(&pixel).count(), 1, "{html}");
    assert!(!plain.contains("/o/"), "{plain}");

    // Both addresses work as the mail client would use them.
    let response = get(&site, &format!("/o/{token}.gif"), DESKTOP).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(received(&site, "m1", "opened"), ["opened received"]);
    let response = no_redirects()
        .post(&unsubscribe)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(show(&site, "m1")["opted_out"], true);
    daemon.stop();
}
