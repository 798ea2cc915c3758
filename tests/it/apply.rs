//! The shared apply link (`/apply/{campaign}`) through the real daemon:
//! over HTTP for every answer it gives, and in a real browser at a
//! phone's size for what an applicant goes through.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;

use crate::support::browser::{Browser, PHONE};
use crate::support::site::*;
use crate::support::{stderr, Reply, Server};

/// A Monday, 10:00 in Dallas: the warehouse invite goes out at once.
const MONDAY: &str = "2026-11-23T16:00:00Z";

const INTERVIEW_TITLE: &str = "Your interview: Warehouse Associate";

/// The warehouse site, its tracked links leading to `interview`.
fn warehouse(interview: &str) -> Site {
    let site = Site::warehouse();
    let toml = std::fs::read_to_string(site.config()).unwrap();
    let line = "interview_url = \"https://interview.example/i/{token}\"";
    assert!(toml.contains(line), "{toml}");
    site.write(
        "nudge.toml",
        &toml.replace(
            line,
            &format!("interview_url = \"{interview}/start?t={{token}}\""),
        ),
    );
    site
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

async fn get(site: &Site, path: &str) -> Answer {
    answer(
        no_redirects()
            .get(site.public_url(path))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn post(site: &Site, campaign: &str, form: &[(&str, &str)]) -> Answer {
    let response = no_redirects()
        .post(site.public_url(&format!("/apply/{campaign}")))
        .form(form)
        .send()
        .await
        .unwrap();
    answer(response).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    Answer {
        status,
        location,
        body: response.text().await.unwrap(),
    }
}

/// `nudge show WHO --json`, or `None` when there is no such candidate.
fn show(site: &Site, who: &str) -> Option<Value> {
    let out = site.nudge(&["show", who, "--json"]);
    if !out.status.success() {
        assert!(
            stderr(&out).contains("no candidate"),
            "`nudge show {who}`: {}",
            stderr(&out)
        );
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// Candidates in the warehouse campaign, in any state or outcome.
fn enrolled(site: &Site) -> i64 {
    let (status, body) = http(site.port, "GET", "/v1/status", Some(&site.token()), "");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let campaign = &report["campaigns"][0];
    assert_eq!(campaign["name"], "warehouse_associate");
    ["states", "outcomes"]
        .iter()
        .flat_map(|k| campaign[k].as_array().unwrap().iter())
        .map(|pair| pair[1].as_i64().unwrap())
        .sum()
}

/// The `<input>` tag of field `id` in a page.
fn input_tag<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!("<input id=\"{id}\""))
        .or_else(|| body.find(&format!("<input type=\"checkbox\" id=\"{id}\"")))
        .unwrap_or_else(|| panic!("no input {id}: {body}"));
    let end = start + body[start..].find('>').unwrap();
    &body[start..=end]
}

/// The error shown under field `id`, if any.
fn error_of(body: &str, id: &str) -> Option<String> {
    let open = format!("<p class=\"error\" id=\"{id}-error\">");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find("</p>").unwrap();
    Some(body[start..end].to_string())
}

fn assert_invalid(body: &str, id: &str, says: &str) {
    let tag = input_tag(body, id);
    assert!(tag.contains("aria-invalid=\"true\""), "{tag}");
    assert!(
        tag.contains(&format!("{id}-error")),
        "described by its error: {tag}"
    );
    let error = error_of(body, id).unwrap_or_else(|| panic!("no error beside {id}: {body}"));
    assert!(error.contains(says), "{id}: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_applications_come_back_with_each_error_beside_its_field_and_nothing_is_stored() {
    let site = Site::warehouse();
    let daemon = site.start(None);

    let unknown = get(&site, "/apply/no_such_job").await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("not taking applications"),
        "{}",
        unknown.body
    );
    assert_eq!(
        post(&site, "no_such_job", &[("name", "Ana")]).await.status,
        404
    );

    let form = get(&site, "/apply/warehouse_associate").await;
    assert_eq!(form.status, 200);
    let body = &form.body;
    assert!(
        body.contains("<title>Warehouse Associate, Dallas DC</title>"),
        "{body}"
    );
    assert!(
        body.contains("<h1>Warehouse Associate, Dallas DC</h1>"),
        "{body}"
    );
    assert!(body.contains("Example Co"), "the company: {body}");
    assert!(body.contains("name=\"viewport\""), "{body}");
    for field in ["name", "email", "phone", "sms_consent"] {
        assert!(
            body.contains(&format!("name=\"{field}\"")),
            "{field}: {body}"
        );
    }
    assert!(!body.contains("aria-invalid=\"true\""), "{body}");
    for external in ["<script", "src=", "href=\"http", "<link"] {
        assert!(
            !body.contains(external),
            "no script, no external asset: {body}"
        );
    }

    let bad_email = post(
        &site,
        "warehouse_associate",
        &[("name", "Ana Ruiz"), ("email", "ana@localhost")],
    )
    .await;
    assert_eq!(bad_email.status, 422);
    assert_invalid(&bad_email.body, "email", "no dot");
    assert!(input_tag(&bad_email.body, "email").contains("value=\"ana@localhost\""));
    assert!(input_tag(&bad_email.body, "name").contains("value=\"Ana Ruiz\""));
    assert!(!input_tag(&bad_email.body, "name").contains("aria-invalid"));

    let neither = post(&site, "warehouse_associate", &[("name", "Ana Ruiz")]).await;
    assert_eq!(neither.status, 422);
    assert_invalid(
        &neither.body,
        "email",
        "email address or your mobile number",
    );
    assert_invalid(&neither.body, "phone", "mobile number");

    let nameless = post(
        &site,
        "warehouse_associate",
        &[("email", "ana@example.com")],
    )
    .await;
    assert_eq!(nameless.status, 422);
    assert_invalid(&nameless.body, "name", "Enter your name");

    let bad_phone = post(
        &site,
        "warehouse_associate",
        &[
            ("name", "Ana"),
            ("phone", "call me"),
            ("sms_consent", "yes"),
        ],
    )
    .await;
    assert_eq!(bad_phone.status, 422);
    assert_invalid(&bad_phone.body, "phone", "digits");
    assert!(input_tag(&bad_phone.body, "sms_consent").contains("checked"));

    // The warehouse campaign texts first: a number needs the consent box.
    let no_consent = post(
        &site,
        "warehouse_associate",
        &[("name", "Ana"), ("phone", "+1 214 555 0100")],
    )
    .await;
    assert_eq!(no_consent.status, 422);
    assert_invalid(&no_consent.body, "sms_consent", "Tick this box");
    assert!(input_tag(&no_consent.body, "phone").contains("value=\"+1 214 555 0100\""));

    let hostile = "<script>alert(\"x\")</script>'&";
    let escaped = post(
        &site,
        "warehouse_associate",
        &[("name", hostile), ("email", hostile), ("phone", hostile)],
    )
    .await;
    assert_eq!(escaped.status, 422);
    assert!(!escaped.body.contains("<script"), "{}", escaped.body);
    let kept = "value=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;\"";
    for id in ["name", "email", "phone"] {
        assert!(
            input_tag(&escaped.body, id).contains(kept),
            "{id}: {}",
            escaped.body
        );
    }
    assert!(
        error_of(&escaped.body, "email").is_some(),
        "{}",
        escaped.body
    );
    assert!(
        error_of(&escaped.body, "phone").is_some(),
        "{}",
        escaped.body
    );

    // Not a form at all.
    let garbled = no_redirects()
        .post(site.public_url("/apply/warehouse_associate"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status().as_u16(), 400);

    assert_eq!(enrolled(&site), 0, "nothing refused is stored");
    for who in ["ana@localhost", "ana@example.com", "+12145550100"] {
        assert!(show(&site, who).is_none(), "{who} was stored");
    }

    // A paused campaign takes no application.
    let out = site.nudge(&["pause", "warehouse_associate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(get(&site, "/apply/warehouse_associate").await.status, 404);
    let paused = post(
        &site,
        "warehouse_associate",
        &[("name", "Ana"), ("email", "ana@example.com")],
    )
    .await;
    assert_eq!(paused.status, 404);
    assert_eq!(enrolled(&site), 0);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_is_enrolled_with_its_source_and_sent_to_its_own_link() {
    let site = Site::warehouse();
    let clock = VirtualClock::new(MONDAY, 1.0);
    let daemon = site.start(Some(&clock));

    let form = get(&site, "/apply/warehouse_associate?source=instagram-story").await;
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains("<input type=\"hidden\" name=\"source\" value=\"instagram-story\">"),
        "{}",
        form.body
    );
    let hostile = get(&site, "/apply/warehouse_associate?source=%3Cb%3Eoops").await;
    assert_eq!(hostile.status, 200);
    assert!(
        !hostile.body.contains("name=\"source\""),
        "not a word: ignored"
    );

    let applied = post(
        &site,
        "warehouse_associate",
        &[
            ("name", "Ana Ruiz"),
            ("email", "ana@example.com"),
            ("phone", "+1 (214) 555-0100"),
            ("sms_consent", "yes"),
            ("source", "instagram-story"),
        ],
    )
    .await;
    assert_eq!(applied.status, 303, "{}", applied.body);
    let location = applied.location.unwrap();
    let ana = show(&site, "ana@example.com").expect("enrolled");
    assert_eq!(location, ana["link"].as_str().unwrap());
    assert!(location.starts_with(&site.public_url("/i/")), "{location}");
    let fields = &ana["fields"];
    assert_eq!(fields["name"], "Ana Ruiz");
    assert_eq!(fields["phone"], "+12145550100");
    assert_eq!(fields["source"], "instagram-story");
    assert_eq!(fields["role"], "Warehouse Associate");
    assert_eq!(fields["sms_consent"], "yes");
    assert_eq!(ana["enrollments"][0]["campaign"], "warehouse_associate");
    let id = ana["id"].as_str().unwrap().to_string();
    wait_for(|| (!site.sent_to(&id).is_empty()).then_some(()))
        .unwrap_or_else(|| panic!("no invite for {id}: {:?}", site.sent()));
    assert!(site.sent_to(&id)[0].0.starts_with("invite-"));

    // A source that is not a word is the default; email alone needs no consent.
    let plain = post(
        &site,
        "warehouse_associate",
        &[
            ("name", "Bo"),
            ("email", "bo@example.com"),
            ("source", "a b"),
        ],
    )
    .await;
    assert_eq!(plain.status, 303, "{}", plain.body);
    let bo = show(&site, "bo@example.com").unwrap();
    assert_eq!(bo["fields"]["source"], "apply-link");
    assert_eq!(bo["fields"]["sms_consent"], "no");

    // The campaign's filter turns referrals away: thanked, not enrolled.
    let referral = post(
        &site,
        "warehouse_associate",
        &[
            ("name", "Cy"),
            ("email", "cy@example.com"),
            ("source", "referral"),
        ],
    )
    .await;
    assert_eq!(referral.status, 200, "{}", referral.body);
    assert!(referral
        .body
        .contains("recruiter at Example Co will be in touch"));
    assert_eq!(enrolled(&site), 2);
    let cy = show(&site, "cy@example.com").expect("kept as a candidate");
    assert_eq!(cy["fields"]["source"], "referral");
    assert_eq!(cy["enrollments"], serde_json::json!([]));
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_email_or_phone_twice_is_one_candidate_and_one_invite() {
    let site = Site::warehouse();
    let clock = VirtualClock::new(MONDAY, 1.0);
    let daemon = site.start(Some(&clock));

    let first = post(
        &site,
        "warehouse_associate",
        &[("name", "Ana Ruiz"), ("email", "ana@example.com")],
    )
    .await;
    let again = post(
        &site,
        "warehouse_associate",
        &[("name", "Ana Ruiz"), ("email", "Ana@Example.com")],
    )
    .await;
    assert_eq!((first.status, again.status), (303, 303), "{}", again.body);
    assert_eq!(first.location, again.location, "one candidate, one link");

    let texts = [
        ("name", "Bo"),
        ("phone", "+1 214 555 0199"),
        ("sms_consent", "yes"),
    ];
    let first_phone = post(&site, "warehouse_associate", &texts).await;
    let again_phone = post(
        &site,
        "warehouse_associate",
        &[
            ("name", "Bo"),
            ("phone", "+1-214-555-0199"),
            ("sms_consent", "yes"),
        ],
    )
    .await;
    assert_eq!((first_phone.status, again_phone.status), (303, 303));
    assert_eq!(first_phone.location, again_phone.location);
    assert_ne!(first.location, first_phone.location);

    // Someone new after them: once their invite is out, any second invite
    // to the first two would be out too.
    let last = post(
        &site,
        "warehouse_associate",
        &[("name", "Cy"), ("email", "cy@example.com")],
    )
    .await;
    assert_eq!(last.status, 303);
    let cy = show(&site, "cy@example.com").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(|| (!site.sent_to(&cy).is_empty()).then_some(()))
        .unwrap_or_else(|| panic!("no invite for {cy}: {:?}", site.sent()));
    std::thread::sleep(Duration::from_millis(300));
    let ana = show(&site, "ana@example.com").unwrap();
    let bo = show(&site, "+12145550199").unwrap();
    for who in [&ana, &bo] {
        let id = who["id"].as_str().unwrap();
        let sent = site.sent_to(id);
        assert_eq!(sent.len(), 1, "one invite to {id}: {sent:?}");
        assert!(sent[0].0.starts_with("invite-"), "{sent:?}");
    }
    assert_eq!(enrolled(&site), 3);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_write_keeps_the_application_for_another_try() {
    let site = Site::warehouse();
    let daemon = site.start_faulty();
    site.set_fault("fail");
    let form = [("name", "Ana Ruiz"), ("email", "ana@example.com")];
    let refused = post(&site, "warehouse_associate", &form).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("try again"), "{}", refused.body);
    assert!(input_tag(&refused.body, "name").contains("value=\"Ana Ruiz\""));
    assert!(input_tag(&refused.body, "email").contains("value=\"ana@example.com\""));

    site.set_fault("none");
    let taken = wait_for(|| {
        let answer = block_on(post(&site, "warehouse_associate", &form));
        (answer.status == 303).then_some(answer)
    })
    .unwrap_or_else(|| panic!("never taken again:\n{}", daemon.log()));
    assert!(taken.location.unwrap().contains("/i/"));
    daemon.stop();
}

/// Runs a future to its end from blocking code inside the test's runtime.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// The bar: an applicant on a phone opens the link, makes a mistake, sees
/// it, fixes it and lands on the interview through their tracked link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applicant_on_a_phone_fixes_a_mistake_applies_and_lands_on_the_interview() {
    let Some(browser) = Browser::phone(
        "apply::an_applicant_on_a_phone_fixes_a_mistake_applies_and_lands_on_the_interview",
    )
    .await
    else {
        return;
    };
    let interview = Server::start(
        Reply::text(
            200,
            &format!(
                "<!doctype html><html><head><title>{INTERVIEW_TITLE}</title></head>\
                 <body><h1>Welcome</h1></body></html>"
            ),
        )
        .with_header("content-type", "text/html; charset=utf-8"),
    )
    .await;
    let site = warehouse(&interview.url());
    let clock = VirtualClock::new(MONDAY, 1.0);
    let daemon = site.start(Some(&clock));
    let c = &browser.client;

    c.goto(&site.public_url("/apply/warehouse_associate?source=instagram-story"))
        .await
        .unwrap();
    assert_eq!(c.title().await.unwrap(), "Warehouse Associate, Dallas DC");
    let width = c.execute("return window.innerWidth", vec![]).await.unwrap();
    assert_eq!(width, Value::from(PHONE.0), "a phone's width");
    browser.fits_the_width().await;
    browser
        .screenshot_to(&site.path().join("apply-form.png"))
        .await;

    // A mistake: shown beside the field, the input kept.
    browser.type_into("name", "Ana Ruiz").await;
    browser.type_into("email", "ana@localhost").await;
    browser.submit().await;
    let error = browser.appears(Locator::Id("email-error")).await;
    assert!(error.text().await.unwrap().contains("no dot"));
    assert!(error.is_displayed().await.unwrap());
    let email = c.find(Locator::Id("email")).await.unwrap();
    assert_eq!(
        email.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        email.prop("value").await.unwrap().as_deref(),
        Some("ana@localhost")
    );
    let name = c.find(Locator::Id("name")).await.unwrap();
    assert_eq!(
        name.prop("value").await.unwrap().as_deref(),
        Some("Ana Ruiz")
    );
    browser
        .screenshot_to(&site.path().join("apply-error.png"))
        .await;
    assert!(show(&site, "ana@localhost").is_none());

    // Fixed: through the tracked link to the interview.
    email.clear().await.unwrap();
    email.send_keys("ana.ruiz@example.com").await.unwrap();
    browser.submit().await;
    let landed = wait_for_async(|| async {
        let url = c.current_url().await.ok()?;
        (!url.path().starts_with("/apply/")).then_some(url)
    })
    .await
    .unwrap_or_else(|| panic!("never left the form:\n{}", daemon.log()));
    let ana = show(&site, "ana.ruiz@example.com").expect("enrolled");
    assert_eq!(ana["fields"]["source"], "instagram-story");
    let link = ana["link"].as_str().unwrap();
    let token = link.rsplit('/').next().unwrap();
    links_lead_to_the_interview(&site, &browser, &interview, &landed, token).await;

    browser.close().await;
    daemon.stop();
}

/// After the apply form's 303: the tracked link records the click and
/// leads to the interview.
async fn links_lead_to_the_interview(
    site: &Site,
    browser: &Browser,
    interview: &Server,
    landed: &reqwest::Url,
    token: &str,
) {
    let c = &browser.client;
    assert_eq!(
        format!("{}{}", landed.origin().ascii_serialization(), landed.path()),
        format!("{}/start", interview.url()),
        "landed on the interview"
    );
    assert_eq!(landed.query(), Some(format!("t={token}").as_str()));
    assert_eq!(c.title().await.unwrap(), INTERVIEW_TITLE);
    // The click is recorded from the phone, and moves Ana on.
    let ana = wait_for(|| {
        let ana = show(site, token)?;
        let clicks: Vec<&str> = ana["timeline"]
            .as_array()?
            .iter()
            .filter_map(|line| line["text"].as_str())
            .filter(|text| text.starts_with("clicked received"))
            .collect();
        (!clicks.is_empty()).then(|| {
            assert_eq!(clicks, ["clicked received (device=mobile)"], "{ana}");
            ana.clone()
        })
    })
    .unwrap_or_else(|| panic!("no click in `nudge show`: {:?}", show(site, token)));
    assert_eq!(ana["enrollments"][0]["state"], "clicked", "{ana}");
}
