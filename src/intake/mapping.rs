//! JSON pointers → candidate fields: how an ATS's or job board's payload
//! becomes an application. A source's table in `nudge.toml` says which
//! pointer holds which field; `greenhouse`, `lever` and `indeed` start
//! from the mappings below, written from each provider's public
//! documentation of its payload.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::{AtsSource, Pointers, SignatureScheme};

/// A source's mapping, its ready-made defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub signature: SignatureScheme,
    pub fields: BTreeMap<String, Pointers>,
    pub external_id: Option<Pointers>,
    pub application_id: Option<Pointers>,
    pub event: Option<String>,
    pub events: Vec<String>,
    /// Fetch the application from the source's API before mapping (Lever).
    pub fetch: Option<Fetch>,
}

/// Lever's webhooks name the opportunity only: its name, email and phone
/// are fetched from `GET {api_url}/opportunities/{id}` with the API key
/// (HTTP basic, the key as user name), and the answer is put at `/data/opportunity`
/// of the payload before mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub api_url: String,
    pub api_key_env: Option<String>,
    /// The pointer to the id to fetch.
    pub id: String,
    /// Where in the payload the answer's `data` goes.
    pub into: String,
}

/// What a payload says about its applicant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mapped {
    pub external_id: Option<String>,
    pub application_id: Option<String>,
    pub fields: BTreeMap<String, String>,
}

/// Why a payload could not be mapped: the field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError {
    pub field: String,
    pub message: String,
}

/// Lever's API, for its ready-made mapping's fetch.
pub const LEVER_API: &str = "https://api.lever.co/v1";

fn one(p: &str) -> Pointers {
    Pointers::One(p.to_string())
}

fn fields(pairs: &[(&str, Pointers)]) -> BTreeMap<String, Pointers> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The ready-made mapping for a source of this name, if nudge has one.
pub fn ready_made(name: &str) -> Option<Mapping> {
    match name {
        // Greenhouse's "candidate has submitted application" web hook:
        // `{"action": "new_candidate_application", "payload": {"application":
        // {"id", "candidate": {"id", "first_name", "last_name",
        // "email_addresses": [{"value", "type"}], "phone_numbers": [...]},
        // "jobs": [{"name"}], "source": {"public_name"}}}}`.
        "greenhouse" => {
            let app = "/payload/application";
            Some(Mapping {
                signature: SignatureScheme::Greenhouse,
                fields: fields(&[
                    (
                        "name",
                        Pointers::Joined(vec![
                            format!("{app}/candidate/first_name"),
                            format!("{app}/candidate/last_name"),
                        ]),
                    ),
                    (
                        "email",
                        one(&format!("{app}/candidate/email_addresses/0/value")),
                    ),
                    (
                        "phone",
                        one(&format!("{app}/candidate/phone_numbers/0/value")),
                    ),
                    ("role", one(&format!("{app}/jobs/0/name"))),
                    ("source", one(&format!("{app}/source/public_name"))),
                ]),
                external_id: Some(one(&format!("{app}/candidate/id"))),
                application_id: Some(one(&format!("{app}/id"))),
                event: Some("/action".into()),
                events: vec!["new_candidate_application".into()],
                fetch: None,
            })
        }
        // Lever's `applicationCreated` webhook: `{"triggeredAt", "event",
        // "signature", "token", "data": {"applicationId", "contactId",
        // "opportunityId"}}`; the person comes from the opportunity
        // (`name`, `emails`, `phones: [{"value"}]`, `sources`).
        "lever" => Some(Mapping {
            signature: SignatureScheme::Lever,
            fields: fields(&[
                ("name", one("/data/opportunity/name")),
                ("email", one("/data/opportunity/emails/0")),
                ("phone", one("/data/opportunity/phones/0/value")),
                ("source", one("/data/opportunity/sources/0")),
            ]),
            external_id: Some(one("/data/contactId")),
            application_id: Some(one("/data/applicationId")),
            event: Some("/event".into()),
            events: vec!["applicationCreated".into()],
            fetch: Some(Fetch {
                api_url: LEVER_API.into(),
                api_key_env: None,
                id: "/data/opportunityId".into(),
                into: "/data/opportunity".into(),
            }),
        }),
        // Indeed Apply's post to `postUrl`: `{"id", "appliedOnMillis",
        // "job": {"jobId", "jobTitle", ...}, "applicant": {"fullName",
        // "email", "phoneNumber", "resume": {...}}, "locale"}`.
        "indeed" => Some(Mapping {
            signature: SignatureScheme::Indeed,
            fields: fields(&[
                ("name", one("/applicant/fullName")),
                ("email", one("/applicant/email")),
                ("phone", one("/applicant/phoneNumber")),
                ("role", one("/job/jobTitle")),
            ]),
            external_id: None,
            application_id: Some(one("/id")),
            event: None,
            events: Vec::new(),
            fetch: None,
        }),
        _ => None,
    }
}

impl Mapping {
    /// The mapping of the `[ats.NAME]` table `source`: the ready-made one
    /// for the name, if any, with every key the table gives put in its place.
    pub fn of(name: &str, source: &AtsSource) -> Mapping {
        let mut mapping = ready_made(name).unwrap_or(Mapping {
            signature: SignatureScheme::HmacSha256,
            fields: BTreeMap::new(),
            external_id: None,
            application_id: None,
            event: None,
            events: Vec::new(),
            fetch: None,
        });
        if let Some(scheme) = source.signature {
            mapping.signature = scheme;
        }
        if !source.fields.is_empty() {
            mapping.fields = source.fields.clone();
        }
        if source.external_id.is_some() {
            mapping.external_id = source.external_id.clone();
        }
        if source.application_id.is_some() {
            mapping.application_id = source.application_id.clone();
        }
        if source.event.is_some() {
            mapping.event = source.event.clone();
            mapping.events = source.events.clone();
        }
        if let Some(fetch) = &mut mapping.fetch {
            fetch.api_key_env = source.api_key_env.clone();
            if let Some(url) = &source.api_url {
                fetch.api_url = url.trim_end_matches('/').to_string();
            }
        }
        mapping
    }

    /// Whether some field is a way to reach the applicant.
    pub fn has_contact(&self) -> bool {
        self.fields.contains_key("email") || self.fields.contains_key("phone")
    }

    /// The payload's event name when it is not an application (answered
    /// and ignored); None when it is one.
    pub fn ignored_event(&self, payload: &Value) -> Option<String> {
        let pointer = self.event.as_ref()?;
        let name = payload
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("");
        if self.events.iter().any(|e| e == name) {
            None
        } else {
            Some(name.to_string())
        }
    }

    /// What `payload` says about its applicant. `source` becomes the
    /// `source` field when the mapping gives none, and prefixes the
    /// external id (`greenhouse:123`).
    pub fn apply(&self, source: &str, payload: &Value) -> Result<Mapped, MapError> {
        let mut mapped = Mapped::default();
        for (field, pointers) in &self.fields {
            if let Some(value) = read(field, pointers, payload)? {
                mapped.fields.insert(field.clone(), value);
            }
        }
        if !mapped.fields.contains_key("email") && !mapped.fields.contains_key("phone") {
            let field = if self.fields.contains_key("email") || !self.fields.contains_key("phone") {
                "email"
            } else {
                "phone"
            };
            let tried: Vec<String> = ["email", "phone"]
                .iter()
                .filter_map(|f| {
                    self.fields
                        .get(*f)
                        .map(|p| format!("`{f}` at `{}`", p.each().join("`, `")))
                })
                .collect();
            let tried = if tried.is_empty() {
                "the mapping has neither".to_string()
            } else {
                format!("looked for {}", tried.join(" and "))
            };
            return Err(MapError {
                field: field.into(),
                message: format!(
                    "the application has no email address or phone number ({tried}): nudge could not reach the applicant"
                ),
            });
        }
        mapped
            .fields
            .entry("source".into())
            .or_insert_with(|| source.to_string());
        if let Some(p) = &self.external_id {
            mapped.external_id =
                read("external_id", p, payload)?.map(|id| format!("{source}:{id}"));
        }
        if let Some(p) = &self.application_id {
            mapped.application_id = read("application_id", p, payload)?;
        }
        Ok(mapped)
    }
}

/// The text at `pointers` (joined with a space), None when none is there.
fn read(field: &str, pointers: &Pointers, payload: &Value) -> Result<Option<String>, MapError> {
    let mut parts = Vec::new();
    for pointer in pointers.each() {
        match payload.pointer(pointer) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                let s = s.trim();
                if !s.is_empty() {
                    parts.push(s.to_string());
                }
            }
            Some(Value::Number(n)) => parts.push(n.to_string()),
            Some(Value::Bool(b)) => parts.push(b.to_string()),
            Some(other) => {
                let kind = if other.is_array() {
                    "a list"
                } else {
                    "an object"
                };
                return Err(MapError {
                    field: field.to_string(),
                    message: format!(
                        "`{field}` maps to `{pointer}`, which is {kind} in the payload, not text: point at one value inside it"
                    ),
                });
            }
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn greenhouse_names_are_joined_and_ids_prefixed() {
        let mapping = Mapping::of("greenhouse", &AtsSource::default());
        let payload = json!({"action": "new_candidate_application", "payload": {"application": {
            "id": 77, "candidate": {"id": 12, "first_name": "Ana", "last_name": "Ruiz",
            "email_addresses": [{"value": "ana@example.com", "type": "personal"}],
            "phone_numbers": []}, "jobs": [{"name": "Picker"}]}}});
        assert_eq!(mapping.ignored_event(&payload), None);
        let mapped = mapping.apply("greenhouse", &payload).unwrap();
        assert_eq!(mapped.external_id.as_deref(), Some("greenhouse:12"));
        assert_eq!(mapped.application_id.as_deref(), Some("77"));
        assert_eq!(mapped.fields["name"], "Ana Ruiz");
        assert_eq!(mapped.fields["role"], "Picker");
        assert_eq!(mapped.fields["source"], "greenhouse");
        assert!(!mapped.fields.contains_key("phone"));
    }

    #[test]
    fn a_payload_without_a_contact_names_the_field() {
        let mapping = Mapping::of("indeed", &AtsSource::default());
        let err = mapping
            .apply(
                "indeed",
                &json!({"id": "x", "applicant": {"fullName": "Bo"}}),
            )
            .unwrap_err();
        assert_eq!(err.field, "email");
        assert!(err.message.contains("/applicant/email"), "{}", err.message);
    }

    #[test]
    fn other_events_are_ignored_and_objects_refused() {
        let mapping = Mapping::of("greenhouse", &AtsSource::default());
        assert_eq!(
            mapping.ignored_event(&json!({"action": "ping"})).as_deref(),
            Some("ping")
        );
        let mut source = AtsSource::default();
        source
            .fields
            .insert("email".into(), Pointers::One("/who".into()));
        let custom = Mapping::of("icims", &source);
        assert_eq!(custom.signature, SignatureScheme::HmacSha256);
        let err = custom
            .apply("icims", &json!({"who": {"a": 1}}))
            .unwrap_err();
        assert_eq!(err.field, "email");
        assert!(err.message.contains("an object"));
    }
}
