//! The OpenAPI description at `GET /v1/openapi.json` (issue 14 item 10),
//! fetched from the real `nudge run` and kept true three ways:
//!
//! - it is an OpenAPI 3.x document by its own rules: every operation has
//!   responses, every `{param}` of a path is a declared path parameter,
//!   operation ids are unique, every `$ref` and security requirement
//!   names something the document has, and both servers' real error
//!   bodies have the documented shapes;
//! - its (method, path) set equals the set the routers register: every
//!   `.route(PATH, METHODS)` in `src/server/` is read from the source
//!   (one that cannot be read, or a `route_service` or `nest`, fails the
//!   test, so a route cannot slip past), and a route registered without
//!   a description, or a description without its route, fails it. The
//!   only slack is `nudge::server::openapi::AWAITED`, routes described
//!   ahead of their code, which may be missing from the routers;
//! - every documented route answers on the real server from a handler,
//!   never from the router's fallback (404) or method check (405), while
//!   undocumented paths and methods do get those.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nudge::server::openapi::{is_admin, AWAITED};
use serde_json::Value;

use crate::support::repo;
use crate::support::site::*;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// A path with each parameter (and what follows it in its segment, as
/// `.gif` after the pixel's token) as `{}`: `/o/{token}.gif` and axum's
/// `/o/{file}` are the same route.
fn shape(path: &str) -> String {
    let mut out = String::new();
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if segment.starts_with('{') {
            out.push_str("{}");
        } else {
            out.push_str(segment);
        }
    }
    out
}

// ------------------------------------------------------- the routers' set

/// Every `.route("PATH", METHODS)` in the Rust files under `dir`:
/// (method, path shape, where).
fn registered(dir: &Path, out: &mut BTreeSet<(String, String)>, problems: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            registered(&path, out, problems);
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("//") {
                    ""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let name = path
            .strip_prefix(repo())
            .unwrap_or(&path)
            .display()
            .to_string();
        for unreadable in [".route_service(", ".nest(", ".nest_service("] {
            if text.contains(unreadable) {
                problems.push(format!(
                    "{name}: `{unreadable}` hides its routes from this test"
                ));
            }
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            let line = text[..text.len() - rest.len() + at].lines().count();
            rest = &rest[at + ".route(".len()..];
            match read_route(rest) {
                Ok((route, methods)) => {
                    for m in methods {
                        out.insert((m, shape(&route)));
                    }
                }
                Err(why) => problems.push(format!("{name}:{line}: {why}")),
            }
        }
    }
}

/// The path literal and the methods of one `.route(` call's arguments
/// (`text` starts after the parenthesis).
fn read_route(text: &str) -> Result<(String, Vec<String>), String> {
    let text = text.trim_start();
    let Some(literal) = text.strip_prefix('"') else {
        return Err("the route's path is not a string literal".into());
    };
    let end = literal.find('"').ok_or("an unterminated path")?;
    let route = literal[..end].to_string();
    let args = literal[end + 1..]
        .trim_start()
        .strip_prefix(',')
        .ok_or("no method router after the path")?;
    // The method router: calls at the argument's top level, up to the
    // parenthesis that closes `.route(`.
    let mut methods = Vec::new();
    let mut depth = 0;
    let mut word = String::new();
    for c in args.chars() {
        match c {
            '(' => {
                if depth == 0 {
                    let called = word.rsplit("::").next().unwrap_or("").to_string();
                    if METHODS.contains(&called.as_str()) {
                        methods.push(called);
                    } else {
                        return Err(format!(
                            "`{called}(` in the method router of `{route}` is not one method"
                        ));
                    }
                }
                depth += 1;
                word.clear();
            }
            ')' if depth == 0 => break,
            ')' => {
                depth -= 1;
                word.clear();
            }
            c if c.is_alphanumeric() || c == '_' || c == ':' => word.push(c),
            _ => word.clear(),
        }
    }
    if methods.is_empty() {
        return Err(format!("no method for `{route}`"));
    }
    Ok((route, methods))
}

// ------------------------------------------------ the document's own rules

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// What is wrong with `doc` as an OpenAPI 3.x document; and its
/// operations, (method, path).
fn check(doc: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let mut wrong = Vec::new();
    let version = doc["openapi"].as_str().unwrap_or("");
    if !version.starts_with("3.") {
        wrong.push(format!("`openapi` is {:?}, not 3.x", doc["openapi"]));
    }
    for field in ["title", "version"] {
        if doc["info"][field].as_str().is_none_or(str::is_empty) {
            wrong.push(format!("`info.{field}` is missing"));
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    let mut requirements: Vec<&Value> = doc["security"].as_array().into_iter().flatten().collect();
    let mut operations = Vec::new();
    let mut operation_ids = BTreeSet::new();
    let Some(paths) = doc["paths"].as_object() else {
        wrong.push("`paths` is not an object".into());
        return (wrong, operations);
    };
    for (path, item) in paths {
        if !path.starts_with('/') {
            wrong.push(format!("the path {path} does not start with /"));
        }
        let declared_in_path: Vec<String> = path
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(name, _)| name.to_string()))
            .collect();
        for (key, op) in item.as_object().unwrap() {
            if !METHODS.contains(&key.as_str()) {
                continue;
            }
            operations.push((key.clone(), path.clone()));
            if let Some(id) = op["operationId"].as_str() {
                if !operation_ids.insert(id.to_string()) {
                    wrong.push(format!(
                        "{key} {path}: the operationId `{id}` is not unique"
                    ));
                }
            }
            let responses = op["responses"].as_object();
            if responses.is_none_or(|r| r.is_empty()) {
                wrong.push(format!("{key} {path} has no responses"));
            }
            for code in responses.into_iter().flat_map(|r| r.keys()) {
                let ok = code == "default"
                    || (code.len() == 3 && code.chars().all(|c| c.is_ascii_digit() || c == 'X'));
                if !ok {
                    wrong.push(format!("{key} {path}: {code} is not a status"));
                }
            }
            let params: Vec<&Value> = op["parameters"]
                .as_array()
                .into_iter()
                .chain(item["parameters"].as_array())
                .flatten()
                .collect();
            for name in &declared_in_path {
                let declared = params.iter().any(|p| {
                    p["in"] == "path" && p["name"] == name.as_str() && p["required"] == true
                });
                if !declared {
                    wrong.push(format!(
                        "{key} {path}: `{{{name}}}` is no required path parameter"
                    ));
                }
            }
            requirements.extend(op["security"].as_array().into_iter().flatten());
        }
    }
    for requirement in requirements {
        for name in requirement.as_object().unwrap().keys() {
            if schemes.get(name).is_none() {
                wrong.push(format!(
                    "the security scheme `{name}` is not in the components"
                ));
            }
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    for r in all {
        let found = r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(doc, |v, k| &v[k]))
            .is_some_and(|v| !v.is_null());
        if !found {
            wrong.push(format!("`{r}` names nothing in the document"));
        }
    }
    (wrong, operations)
}

// ------------------------------------------------------------ the probes

/// A value for each path parameter these probes meet.
fn filled(path: &str) -> String {
    let values = BTreeMap::from([
        ("{token}", "no-such-token"),
        ("{who}", "nobody"),
        ("{name}", "probe"),
        ("{campaign}", "probe"),
        ("{provider}", "postmark"),
        ("{source}", "greenhouse"),
    ]);
    let mut out = path.to_string();
    for (param, value) in values {
        out = out.replace(param, value);
    }
    assert!(
        !out.contains('{'),
        "no probe value for a parameter of {path}"
    );
    out
}

struct Probe {
    client: reqwest::Client,
    admin: String,
    public: String,
    token: String,
    /// What the public server's fallback answers a page's path.
    fallback_page: String,
}

impl Probe {
    /// Status and body of `method path` on the server the path is on.
    async fn send(&self, method: &str, path: &str) -> (u16, String) {
        let admin = is_admin(path);
        let base = if admin { &self.admin } else { &self.public };
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{base}{path}"))
            .header("Content-Type", "application/json")
            .body("{}");
        if admin {
            request = request.bearer_auth(&self.token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Whether the answer is the router's own: no route for the path
    /// (the fallback: axum's empty 404 on the admin API, the public
    /// server's page or `no route` JSON), or none for the method (405).
    fn unrouted(&self, status: u16, body: &str) -> bool {
        status == 405
            || (status == 404
                && (body.is_empty() || body == self.fallback_page || body.contains("no route `")))
    }
}

#[tokio::test]
async fn the_description_is_openapi_and_lists_exactly_the_routes_there_are() {
    let site = Site::probe();
    let daemon = site.start(None);
    let token = site.token();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin = format!("http://127.0.0.1:{}", site.port);
    let public = format!("http://127.0.0.1:{}", site.public_port);
    let url = format!("{admin}/v1/openapi.json");

    // The admin API's token is required here too; its refusal has the
    // shape the document gives errors.
    let refused = client.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let refusal: Value = refused.json().await.unwrap();

    let answer = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = answer.json().await.unwrap();

    let (wrong, operations) = check(&doc);
    assert!(
        wrong.is_empty(),
        "not a sound OpenAPI document:\n{}",
        wrong.join("\n")
    );
    let error_fields: BTreeSet<&str> = doc["components"]["schemas"]["ErrorBody"]["properties"]
        .as_object()
        .expect("the admin API's error body is described")
        .keys()
        .map(String::as_str)
        .collect();
    let real_fields: BTreeSet<&str> = refusal
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(real_fields, error_fields, "the 401's body: {refusal}");

    // The document's set against the routers'.
    let documented: BTreeSet<(String, String)> = operations
        .iter()
        .map(|(m, p)| (m.clone(), shape(p)))
        .collect();
    let mut routed = BTreeSet::new();
    let mut problems = Vec::new();
    registered(&repo().join("src/server"), &mut routed, &mut problems);
    assert!(
        problems.is_empty(),
        "routes this test cannot read:\n{}",
        problems.join("\n")
    );
    assert!(
        routed.len() >= 20,
        "only {} routes read: {routed:?}",
        routed.len()
    );
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes without a description (add `#[utoipa::path]` to the handler and list it in its \
         file's `Described`): {undocumented:?}"
    );
    let awaited: BTreeSet<(String, String)> = AWAITED
        .iter()
        .map(|(m, p)| (m.to_string(), shape(p)))
        .collect();
    let unrouted: Vec<_> = documented
        .difference(&routed)
        .filter(|op| !awaited.contains(*op))
        .collect();
    assert!(
        unrouted.is_empty(),
        "descriptions of routes no router has: {unrouted:?}"
    );

    // Every documented route answers from a handler; the awaited ones
    // that are not routed yet from the fallback.
    let fallback_page = client
        .get(format!("{public}/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(fallback_page.status().as_u16(), 404);
    let probe = Probe {
        client,
        admin,
        public,
        token,
        fallback_page: fallback_page.text().await.unwrap(),
    };
    for (method, path) in &operations {
        let (status, body) = probe.send(method, &filled(path)).await;
        let pending = !routed.contains(&(method.clone(), shape(path)));
        assert_eq!(
            probe.unrouted(status, &body),
            pending,
            "{method} {path} answered {status}: {body}"
        );
        // A method the path does not document is not routed either.
        for other in ["get", "post", "put", "delete", "patch"] {
            if operations.iter().any(|(m, p)| m == other && p == path) {
                continue;
            }
            let (status, body) = probe.send(other, &filled(path)).await;
            assert!(
                probe.unrouted(status, &body),
                "{other} {path} is not documented and answered {status}: {body}"
            );
        }
    }
    // The public server's JSON errors have the documented shape too.
    let (status, body) = probe.send("post", "/v1/webhooks/nothing").await;
    assert_eq!(status, 404);
    let json_error: Value = serde_json::from_str(&body).unwrap();
    let schema = &doc["components"]["schemas"]["JsonError"];
    for key in json_error.as_object().unwrap().keys() {
        assert!(
            schema["properties"].get(key).is_some(),
            "`{key}` of {body} is not in JsonError: {schema}"
        );
    }
    for required in schema["required"].as_array().unwrap() {
        assert!(
            json_error.get(required.as_str().unwrap()).is_some(),
            "{body}"
        );
    }
    for path in [
        "/v1/nothing",
        "/v1/webhooks/nothing",
        "/i",
        "/nothing/at/all",
    ] {
        let (status, body) = probe.send("get", path).await;
        assert!(
            probe.unrouted(status, &body),
            "{path} answered {status}: {body}"
        );
    }
    daemon.stop();
}

#[test]
fn the_route_reader_reads_method_chains_and_refuses_what_it_cannot_read() {
    let read = |s: &str| read_route(s).map(|(p, m)| (p, m.join(" ")));
    assert_eq!(
        read(r#""/u/{token}", get(page).post(unsubscribe))"#),
        Ok(("/u/{token}".to_string(), "get post".to_string()))
    );
    assert_eq!(
        read(r#""/v1/x", axum::routing::post(handler::<A>).layer(f(x)))"#),
        Err("`layer(` in the method router of `/v1/x` is not one method".to_string())
    );
    assert!(read(r#"PATH, get(h))"#).is_err());
    assert!(read(r#""/x", any(h))"#).is_err());
    assert_eq!(shape("/o/{token}.gif"), shape("/o/{file}"));
    assert_ne!(shape("/i/{token}"), shape("/u/{token}"));
}
