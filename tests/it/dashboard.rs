//! The live dashboard (issue 15 item 6) on the real `nudge run`: its
//! login and session over plain HTTP, its data with the bearer token, and
//! the page in a real browser, whose numbers must equal `nudge report
//! --format json` over the same store and follow it as events arrive.

use std::io::Write as _;
use std::process::Stdio;

use fantoccini::Locator;
use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::site::*;
use crate::support::{stderr, stdout};

/// A campaign whose first message goes at once, with an experiment.
const HIRING: &str = r#"campaign hiring {
  title    "Hiring, Austin"
  channels email
  goal     completed

  experiment copy { short 50, warm 50 }

  state invite {
    send "invite-{copy}"
    on clicked -> clicked
    after 72h -> done
  }

  state clicked {
    on started -> started
    after 72h -> done
  }

  state started {
    after 72h -> done
  }

  state done {
    end
  }
}
"#;

const PASSWORD: &str = "a long dashboard password";

/// A site with the hiring campaign and a dashboard user `ana`, whose
/// line comes from `nudge dashboard-user` (the real binary).
fn site() -> Site {
    let site = Site::empty();
    site.write("campaigns/hiring.nudge", HIRING);
    for name in ["invite-short", "invite-warm"] {
        site.write(&format!("templates/{name}.email.j2"), &email_template(name));
    }
    let mut child = site
        .command(&["dashboard-user", "ana"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    let line = printed
        .lines()
        .find(|l| l.starts_with("ana = \"$argon2id$"))
        .unwrap_or_else(|| panic!("no user line in {printed:?}"));
    assert!(!printed.contains(PASSWORD), "the password is never printed");
    let config = std::fs::read_to_string(site.config()).unwrap();
    site.write(
        "nudge.toml",
        &format!("{config}\n[dashboard]\nrefresh_secs = 2\n\n[dashboard.users]\n{line}\n"),
    );
    site
}

/// POSTs `body` to the admin API's `path` with the token; it must be
/// answered 200 (`what` names the request when it is not).
async fn post_admin(site: &Site, token: &str, path: &str, body: serde_json::Value, what: &str) {
    let answer = no_redirects()
        .post(site.admin_url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status().as_u16(),
        200,
        "{what}: {}",
        answer.text().await.unwrap()
    );
}

/// Enrolls `n` candidates (`p0`, `p1`, ...) through the admin API and
/// waits until each has been sent their invitation.
async fn enroll(site: &Site, token: &str, n: usize) {
    for i in 0..n {
        let body = serde_json::json!({
            "campaign": "hiring",
            "external_id": format!("p{i}"),
            "fields": {"name": format!("Person {i}"), "email": format!("p{i}@example.com"),
                       "source": if i % 3 == 0 { "indeed" } else { "linkedin" }},
        });
        post_admin(site, token, "/v1/enroll", body, &format!("enroll p{i}")).await;
    }
    wait_for(|| (site.sent().len() >= n).then_some(()))
        .unwrap_or_else(|| panic!("only {} of {n} sent", site.sent().len()));
}

/// Posts `event` for each candidate in `who` through the admin API.
async fn events(site: &Site, token: &str, event: &str, who: impl IntoIterator<Item = usize>) {
    for i in who {
        let body = serde_json::json!({"candidate": format!("p{i}"), "event": event});
        post_admin(
            site,
            token,
            "/v1/events",
            body,
            &format!("{event} for p{i}"),
        )
        .await;
    }
}

/// The funnel the tests build: 40 invited, 36 opened, 34 clicked, 32
/// started, 10 completed (a red flag: most who start do not finish).
async fn fill(site: &Site, token: &str) {
    enroll(site, token, 40).await;
    events(site, token, "opened", 0..36).await;
    events(site, token, "clicked", 0..34).await;
    events(site, token, "started", 0..32).await;
    events(site, token, "completed", 0..10).await;
}

/// `nudge report --format json`, the real binary, against the running
/// daemon.
fn report(site: &Site) -> Value {
    let out = site.nudge(&["report", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The session cookie's `name=value` from a login's answer.
fn session_cookie(answer: &reqwest::Response) -> Option<String> {
    let set = answer.headers().get("set-cookie")?.to_str().ok()?;
    Some(set.split(';').next()?.to_string())
}

async fn login(site: &Site, user: &str, password: &str) -> reqwest::Response {
    no_redirects()
        .post(site.admin_url("/dashboard/login"))
        .form(&[("user", user), ("password", password)])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_wants_a_login_and_its_data_takes_the_token() {
    let site = site();
    let daemon = site.start(None);
    let token = site.token();
    enroll(&site, &token, 3).await;
    let client = no_redirects();

    // No cookie: to the login, whose form is a page with a strict policy.
    let page = client
        .get(site.admin_url("/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 303);
    assert_eq!(page.headers()["location"], "/dashboard/login");
    let form = client
        .get(site.admin_url("/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 200);
    let policy = form.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(form.text().await.unwrap().contains("name=\"password\""));

    // Wrong logins: 401, the form again, no cookie.
    for (user, password) in [
        ("ana", "not her password"),
        ("bob", PASSWORD),
        ("", "not the token"),
        ("", ""),
        ("admin", token.as_str()),
    ] {
        let answer = login(&site, user, password).await;
        assert_eq!(answer.status().as_u16(), 401, "{user:?} {password:?}");
        assert!(answer.headers().get("set-cookie").is_none());
        assert!(answer
            .text()
            .await
            .unwrap()
            .contains("Wrong name or password"));
    }

    // The data: 401 without anything, with the bearer token the report,
    // the states and today's sends.
    let data = site.admin_url("/dashboard/data.json");
    let refused = client.get(&data).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["status"], 401);
    let wrong = client
        .get(&data)
        .bearer_auth("x".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let answer = client.get(&data).bearer_auth(&token).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let json: Value = answer.json().await.unwrap();
    assert_eq!(json["refresh_secs"], 2);
    assert_eq!(json["sends_today"]["total"]["email"], 3, "{json}");
    assert_eq!(
        json["sends_today"]["campaigns"]["hiring"]["email"], 3,
        "{json}"
    );
    assert_eq!(json["sends_today"]["total"]["sms"], 0, "{json}");
    let hiring = &json["status"]["campaigns"][0];
    assert_eq!(hiring["name"], "hiring");
    assert_eq!(
        hiring["states"][0],
        serde_json::json!(["invite", 3]),
        "{json}"
    );
    assert_eq!(
        json["report"],
        report(&site),
        "the report is `nudge report`'s"
    );

    // A user's login and the token's: a session cookie, HttpOnly and
    // SameSite=Strict, that opens the page and the data.
    for (user, password) in [("ana", PASSWORD), ("", token.as_str())] {
        let answer = login(&site, user, password).await;
        assert_eq!(answer.status().as_u16(), 303, "{user:?}");
        assert_eq!(answer.headers()["location"], "/dashboard");
        let set = answer.headers()["set-cookie"].to_str().unwrap().to_string();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/dashboard",
            "Max-Age=43200",
        ] {
            assert!(set.contains(part), "{part} in {set}");
        }
        let cookie = session_cookie(&answer).unwrap();
        let page = client
            .get(site.admin_url("/dashboard"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let policy = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let html = page.text().await.unwrap();
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no nonce in {policy}"));
        assert!(
            html.contains(&format!("<script nonce=\"{nonce}\">")),
            "{html}"
        );
        assert_eq!(html.matches("<script").count(), 1, "one script");
        assert!(!html.contains(" src="), "nothing loaded from elsewhere");
        let data = client
            .get(site.admin_url("/dashboard/data.json"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(data.status().as_u16(), 200);

        // An altered cookie is no session.
        let forged = format!("{}0", cookie);
        let refused = client
            .get(site.admin_url("/dashboard/data.json"))
            .header("cookie", &forged)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 401);
    }

    // Logging out clears the cookie.
    let out = client
        .post(site.admin_url("/dashboard/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 303);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_at_start_has_the_first_reading_taken_before_anyone_asks() {
    let site = site();
    let config = std::fs::read_to_string(site.config()).unwrap();
    site.write(
        "nudge.toml",
        &config.replace(
            "refresh_secs = 2\n",
            "refresh_secs = 2\nread_at_start = true\n",
        ),
    );
    let daemon = site.start(None);
    let token = site.token();
    let read = wait_for(|| {
        daemon
            .log()
            .contains("the dashboard's data was read at start")
            .then_some(())
    });
    assert!(read.is_some(), "no reading at start:\n{}", daemon.log());
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let asked = chrono::Utc::now();
    let answer = no_redirects()
        .get(site.admin_url("/dashboard/data.json"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let json: Value = answer.json().await.unwrap();
    let at: chrono::DateTime<chrono::Utc> = json["at"].as_str().unwrap().parse().unwrap();
    assert!(
        at < asked,
        "read at {at}, asked at {asked}: not the reading at start"
    );
}

#[test]
fn a_password_in_place_of_its_hash_is_refused_by_check() {
    let site = Site::probe();
    let config = std::fs::read_to_string(site.config()).unwrap();
    site.write(
        "nudge.toml",
        &format!(
            "{config}\n[dashboard]\nrefresh_secs = 1\n\n[dashboard.users]\nana = \"hunter2\"\n"
        ),
    );
    let out = site.nudge(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("`dashboard.users.ana` is not an Argon2 password hash"),
        "{text}"
    );
    assert!(text.contains("`dashboard.refresh_secs` is 1"), "{text}");
    assert!(!text.contains("hunter2\n  |"), "{text}");
}

/// The text of the element whose `data-v` is `key`, on the page.
async fn figure(browser: &Browser, key: &str) -> String {
    browser
        .client
        .find(Locator::Css(&format!("[data-v=\"{key}\"]")))
        .await
        .unwrap_or_else(|e| panic!("no figure {key} on the page: {e}"))
        .text()
        .await
        .unwrap()
}

/// A rate as the page shows it, read back as a fraction.
fn percent(text: &str) -> Option<f64> {
    text.strip_suffix('%')?
        .parse::<f64>()
        .ok()
        .map(|p| p / 100.0)
}

/// Every figure of the report on the page equals the report's: the
/// funnel's counts and rates, the outcomes, the experiments' variants
/// and verdicts, and the red flags.
async fn page_shows(browser: &Browser, report: &Value) {
    let campaigns = report["campaigns"].as_array().unwrap();
    assert!(!campaigns.is_empty());
    for c in campaigns {
        let name = c["campaign"].as_str().unwrap();
        for step in c["funnel"].as_array().unwrap() {
            let key = format!("{name}|funnel|{}", step["step"].as_str().unwrap());
            assert_eq!(
                figure(browser, &format!("{key}|count")).await,
                step["count"].to_string(),
                "{key}"
            );
            for (suffix, field) in [
                ("from_previous", "rate_from_previous"),
                ("from_enrolled", "rate_from_enrolled"),
            ] {
                let shown = figure(browser, &format!("{key}|{suffix}")).await;
                match step[field].as_f64() {
                    None => assert_eq!(shown, "–", "{key} {field}"),
                    Some(rate) => {
                        let read = percent(&shown).unwrap_or_else(|| panic!("{key}: {shown}"));
                        assert!(
                            (read - rate).abs() <= 0.0005 + 1e-9,
                            "{key} {field}: {shown} against {rate}"
                        );
                    }
                }
            }
        }
        let outcomes = &c["outcomes"];
        for key in ["opted_out", "bounced", "failed", "running"] {
            assert_eq!(
                figure(browser, &format!("{name}|outcomes|{key}")).await,
                outcomes[key].to_string(),
                "{key}"
            );
        }
        for (state, n) in outcomes["exited"].as_object().unwrap() {
            assert_eq!(
                figure(browser, &format!("{name}|outcomes|exited|{state}")).await,
                n.to_string()
            );
        }
        assert_eq!(
            figure(browser, &format!("{name}|ttc|count")).await,
            c["time_to_completion"]["count"].to_string()
        );
        for e in c["experiments"].as_array().unwrap() {
            let key = format!("{name}|exp|{}", e["name"].as_str().unwrap());
            for v in e["variants"].as_array().unwrap() {
                let vk = format!("{key}|{}", v["name"].as_str().unwrap());
                assert_eq!(
                    figure(browser, &format!("{vk}|n")).await,
                    v["n"].to_string()
                );
                assert_eq!(
                    figure(browser, &format!("{vk}|completed")).await,
                    v["completed"].to_string()
                );
            }
            for cmp in e["comparisons"].as_array().unwrap() {
                let ck = format!("{key}|vs|{}", cmp["variant"].as_str().unwrap());
                let verdict = cmp["verdict"].as_str().unwrap().replace('_', " ");
                assert_eq!(figure(browser, &format!("{ck}|verdict")).await, verdict);
                assert_eq!(
                    figure(browser, &format!("{ck}|text")).await,
                    cmp["text"].as_str().unwrap()
                );
            }
            assert_eq!(
                figure(browser, &format!("{key}|sample_needed")).await,
                match e["sample_needed"].as_u64() {
                    Some(n) => n.to_string(),
                    None => "–".to_string(),
                }
            );
        }
        let flags = c["red_flags"].as_array().unwrap();
        if flags.is_empty() {
            assert_eq!(figure(browser, &format!("{name}|flags")).await, "none");
        }
        for f in flags {
            let mut key = format!("{name}|flag|{}", f["kind"].as_str().unwrap());
            if let Some(channel) = f["channel"].as_str() {
                key.push('|');
                key.push_str(channel);
            }
            assert_eq!(
                figure(browser, &format!("{key}|base")).await,
                f["base"].to_string()
            );
            let shown = figure(browser, &format!("{key}|value")).await;
            let value = f["value"].as_f64().unwrap();
            assert!(
                (percent(&shown).unwrap() - value).abs() <= 0.0005 + 1e-9,
                "{key}: {shown}"
            );
        }
    }
}

/// The errors the browser's console holds (chromedriver's `SEVERE`), and
/// the page's own error line must be hidden.
async fn no_errors(browser: &Browser) {
    let severe: Vec<Value> = browser
        .console()
        .await
        .into_iter()
        .filter(|m| m["level"] == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");
    let shown = browser
        .client
        .execute("return document.getElementById('error').hidden", vec![])
        .await
        .unwrap();
    assert_eq!(shown, Value::Bool(true), "the page shows an error");
}

async fn refreshes(browser: &Browser) -> u64 {
    browser
        .client
        .execute(
            "return Number(document.getElementById('main').dataset.refreshes)",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(0)
}

/// Logs in through the page's form.
async fn fill_login(browser: &Browser, user: &str, password: &str) {
    browser.type_into("user", user).await;
    browser.type_into("password", password).await;
    browser.submit().await;
}

/// The bar: in a real browser, after a login through the form, the page
/// shows what `nudge report --format json` says about the same store, logs
/// no error, and follows new events by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_browser_shows_the_report_and_follows_it() {
    let Some(browser) =
        Browser::phone("dashboard::the_dashboard_in_a_browser_shows_the_report_and_follows_it")
            .await
    else {
        return;
    };
    let site = site();
    let daemon = site.start(None);
    let token = site.token();
    fill(&site, &token).await;
    let c = &browser.client;

    // Not logged in: the login form; a wrong password says so.
    c.goto(&site.admin_url("/dashboard")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/dashboard/login");
    fill_login(&browser, "ana", "wrong password!").await;
    let refused = browser.appears(Locator::Id("error")).await;
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("Wrong name or password"));
    // The 401 itself is a console message of the browser's own; the
    // dashboard must add none.
    let _ = browser.console().await;
    fill_login(&browser, "ana", PASSWORD).await;
    c.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("main[data-refreshes=\"1\"]"))
        .await
        .unwrap_or_else(|e| panic!("the page never loaded its data: {e}\n{}", daemon.log()));
    assert_eq!(c.current_url().await.unwrap().path(), "/dashboard");

    let first = report(&site);
    page_shows(&browser, &first).await;
    assert_eq!(figure(&browser, "sends|email").await, "40");
    assert_eq!(figure(&browser, "hiring|state|started").await, "22");
    let flags: Vec<&str> = first["campaigns"][0]["red_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(flags.contains(&"high_start_low_completion"), "{first}");
    let updated = browser.text(Locator::Id("updated")).await;
    let hhmmss = updated.strip_prefix("last updated ").unwrap_or("");
    assert!(
        hhmmss.len() == 8 && hhmmss.chars().filter(|ch| *ch == ':').count() == 2,
        "{updated}"
    );

    let shot = browser
        .screenshot_to(&site.path().join("dashboard.png"))
        .await;
    let width = u32::from_be_bytes(shot[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(shot[20..24].try_into().unwrap());
    assert!(width >= 390 && height >= 600, "{width}x{height}");
    assert!(
        shot.len() > 20_000,
        "a page with something on it: {} bytes",
        shot.len()
    );
    no_errors(&browser).await;

    // New events: the page follows by itself, in place (the element keeps
    // a mark the test puts on it).
    let completed = "[data-v=\"hiring|funnel|completed|count\"]";
    c.execute(
        &format!("document.querySelector('{completed}').dataset.mark = 'kept'"),
        vec![],
    )
    .await
    .unwrap();
    let before = refreshes(&browser).await;
    events(&site, &token, "completed", 10..13).await;
    let second = report(&site);
    assert_ne!(first, second);
    wait_for_async(|| async {
        (figure(&browser, "hiring|funnel|completed|count").await == "13").then_some(())
    })
    .await
    .expect("the page never showed 13 completed");
    assert!(refreshes(&browser).await > before);
    let mark = c
        .execute(
            &format!("return document.querySelector('{completed}').dataset.mark"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(mark, Value::from("kept"), "updated in place");
    page_shows(&browser, &second).await;
    no_errors(&browser).await;

    // The daemon goes away: the page says its refresh failed, and keeps
    // the numbers it had.
    daemon.stop();
    let error = browser.appears(Locator::Css("#error:not([hidden])")).await;
    assert!(error
        .text()
        .await
        .unwrap()
        .starts_with("Refresh failed at "));
    assert_eq!(
        figure(&browser, "hiring|funnel|completed|count").await,
        "13"
    );
    browser.close().await;
}
