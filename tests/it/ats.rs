//! `POST /v1/webhooks/ats/{source}` through the real `nudge run` on
//! loopback: Greenhouse's, Lever's and Indeed's sample payloads
//! (`tests/fixtures/ats/`, written from each provider's documented shape)
//! become candidates enrolled by the warehouse campaign's `enroll on
//! applied`; signatures are computed here with the `hmac` crate, apart from
//! the code under test.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;

use super::support::site::Site;
use super::support::{repo, stderr, Reply, Server};

const GH: &str = "gh-secret-for-tests";
const LEVER: &str = "lever-signature-token";
const INDEED: &str = "indeed api secret &$%@";
const ICIMS: &str = "icims-shared-token";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures/ats").join(name)).unwrap()
}

fn sha256_hex(key: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn sha1_base64(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The warehouse site with the three ready-made sources and a generic
/// one (an iCIMS automation sending a token), Lever's API at `lever_api`.
fn site(lever_api: &str) -> Site {
    let site = Site::warehouse();
    let mut toml = std::fs::read_to_string(site.config()).unwrap();
    toml.push_str(&format!(
        r#"
[ats.greenhouse]
secret_env = "TEST_GH_SECRET"

[ats.lever]
secret_env = "TEST_LEVER_SECRET"
api_key_env = "TEST_LEVER_KEY"
api_url = "{lever_api}/v1"

[ats.indeed]
secret_env = "TEST_INDEED_SECRET"

[ats.icims]
secret_env = "TEST_ICIMS_TOKEN"
signature = "token"
signature_header = "X-Nudge-Token"
fields = {{ name = ["/person/first", "/person/last"], email = "/person/email", phone = "/person/mobile", role = "/job/title" }}
external_id = "/person/id"
application_id = "/applicationId"
"#
    ));
    site.write("nudge.toml", &toml);
    site
}

fn start(site: &Site) -> super::support::site::Daemon {
    site.start_with(
        &["run"],
        |c| {
            c.env("TEST_GH_SECRET", GH)
                .env("TEST_LEVER_SECRET", LEVER)
                .env("TEST_LEVER_KEY", "lever-api-key")
                .env("TEST_INDEED_SECRET", INDEED)
                .env("TEST_ICIMS_TOKEN", ICIMS);
        },
        &[": running"],
    )
}

async fn post(site: &Site, source: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/webhooks/ats/{source}",
            site.public_port
        ))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// `nudge show WHO --json`, or None when there is no such candidate.
fn show(site: &Site, who: &str) -> Option<Value> {
    let out = site.nudge(&["show", who, "--json"]);
    if out.status.code() == Some(0) {
        Some(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        assert!(stderr(&out).contains("no candidate"), "{}", stderr(&out));
        None
    }
}

fn campaigns_of(view: &Value) -> Vec<String> {
    view["enrollments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["campaign"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn greenhouse_lever_and_indeed_applications_become_enrolled_candidates() {
    let opportunity: Value = serde_json::from_str(&fixture("lever-opportunity.json")).unwrap();
    let lever_api = Server::start(Reply::json(200, opportunity)).await;
    let site = site(&lever_api.url());
    let daemon = start(&site);

    // Greenhouse: `Signature: sha256 HEX` over the body.
    let body = fixture("greenhouse.json");
    let signed = [(
        "Signature",
        format!("sha256 {}", sha256_hex(GH, &[body.as_bytes()])),
    )];
    let (status, answer) = post(&site, "greenhouse", &signed, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["created"], true, "{answer}");
    assert_eq!(answer["enrolled"].as_array().unwrap().len(), 1, "{answer}");
    let rosa = show(&site, "greenhouse:53883394").expect("Rosa by her Greenhouse id");
    assert_eq!(rosa["fields"]["name"], "Rosa Delgado");
    assert_eq!(rosa["fields"]["email"], "rosa.delgado@example.com");
    assert_eq!(rosa["fields"]["role"], "Warehouse Associate");
    assert_eq!(rosa["fields"]["source"], "Company website");
    assert_eq!(campaigns_of(&rosa), ["warehouse_associate"]);

    // The same delivery again (a retry) changes nothing.
    let (status, again) = post(&site, "greenhouse", &signed, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["repeated"], true, "{again}");
    assert_eq!(again["candidate"], answer["candidate"]);

    // Lever: the body's `token` + `triggeredAt` signed into `signature`;
    // the person fetched from Lever's API with the key.
    let template = fixture("lever.json");
    let parsed: Value = serde_json::from_str(&template).unwrap();
    let signature = sha256_hex(
        LEVER,
        &[
            parsed["token"].as_str().unwrap().as_bytes(),
            parsed["triggeredAt"].to_string().as_bytes(),
        ],
    );
    let body = template.replace("SIGNATURE", &signature);
    let (status, answer) = post(&site, "lever", &[], &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["created"], true, "{answer}");
    // Lever's opportunity names no role, and the warehouse campaign's
    // `where` wants one: he is a candidate, in no campaign, and told why.
    assert_eq!(answer["enrolled"].as_array().unwrap().len(), 0, "{answer}");
    assert_eq!(
        answer["not_enrolled"][0]["campaign"], "warehouse_associate",
        "{answer}"
    );
    let asked = lever_api.received();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].path,
        "/v1/opportunities/7d2c4e6a-9b13-4f58-a0e7-3c8b6d1f9e25"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("lever-api-key:");
    assert_eq!(
        asked[0].header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    let tomas = show(&site, "tomas.herrera@example.net").expect("Tomás by his email");
    assert_eq!(tomas["fields"]["name"], "Tomás Herrera");
    assert_eq!(
        tomas["external_id"],
        "lever:f3a9c1d7-2e84-4b60-8d5a-1c7e9f3b2a68"
    );
    assert_eq!(tomas["fields"]["source"], "Job board");
    assert!(campaigns_of(&tomas).is_empty());

    // Indeed Apply: `X-Indeed-Signature`, HMAC-SHA1 of the body, base64.
    let body = fixture("indeed.json");
    let signed = [("X-Indeed-Signature", sha1_base64(INDEED, body.as_bytes()))];
    let (status, answer) = post(&site, "indeed", &signed, &body).await;
    assert_eq!(status, 200, "{answer}");
    let keisha = show(&site, "keisha.brown@example.org").expect("Keisha by her email");
    assert_eq!(keisha["fields"]["name"], "Keisha Brown");
    assert_eq!(keisha["fields"]["source"], "indeed");
    assert_eq!(keisha["fields"]["role"], "Warehouse Associate");
    assert_eq!(campaigns_of(&keisha), ["warehouse_associate"]);

    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_signatures_unknown_sources_and_contactless_payloads_store_nothing() {
    let site = site("http://127.0.0.1:9");
    let daemon = start(&site);

    let body = fixture("greenhouse.json");
    let forged = [(
        "Signature",
        format!(
            "sha256 {}",
            sha256_hex("not the secret", &[body.as_bytes()])
        ),
    )];
    let (status, answer) = post(&site, "greenhouse", &forged, &body).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("does not match"),
        "{answer}"
    );
    let (status, answer) = post(&site, "greenhouse", &[], &body).await;
    assert_eq!(status, 401, "{answer}");
    // A body changed after signing.
    let signed = [(
        "Signature",
        format!("sha256 {}", sha256_hex(GH, &[body.as_bytes()])),
    )];
    let tampered = body.replace("Rosa", "Eve");
    let (status, _) = post(&site, "greenhouse", &signed, &tampered).await;
    assert_eq!(status, 401);
    assert!(show(&site, "rosa.delgado@example.com").is_none());
    assert!(show(&site, "greenhouse:53883394").is_none());

    let (status, answer) = post(&site, "workday", &[], "{}").await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("`workday`"),
        "{answer}"
    );

    // A generic source: the token in its header, a payload with no contact.
    let token = [("X-Nudge-Token", ICIMS.to_string())];
    let no_contact = r#"{"applicationId": "A-1", "person": {"id": 9, "first": "Lee", "last": "Chan"}, "job": {"title": "Warehouse Associate"}}"#;
    let (status, answer) = post(&site, "icims", &token, no_contact).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["field"], "email", "{answer}");
    assert!(show(&site, "icims:9").is_none());

    // Greenhouse's ping when the web hook is set up: answered, ignored.
    let ping = r#"{"action": "ping", "payload": {"web_hook_id": 1}}"#;
    let signed = [(
        "Signature",
        format!("sha256 {}", sha256_hex(GH, &[ping.as_bytes()])),
    )];
    let (status, answer) = post(&site, "greenhouse", &signed, ping).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ignored"], "ping");

    // The same generic source with a contact creates the candidate.
    let good = r#"{"applicationId": "A-2", "person": {"id": 10, "first": "Mo", "last": "Diaz", "email": "mo.diaz@example.com"}, "job": {"title": "Warehouse Associate"}}"#;
    let (status, answer) = post(&site, "icims", &token, good).await;
    assert_eq!(status, 200, "{answer}");
    let mo = show(&site, "icims:10").expect("Mo by the iCIMS id");
    assert_eq!(mo["fields"]["name"], "Mo Diaz");
    assert_eq!(campaigns_of(&mo), ["warehouse_associate"]);

    daemon.stop();
}
