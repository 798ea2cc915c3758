//! Phone numbers are put in E.164 form when candidates are enrolled, with
//! the configured default country code; one that cannot be is refused,
//! naming the candidate and the value.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::DateTime;
use nudge::runtime::api::EnrollRequest;
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::core::{Command, Core, Reply, Settings};
use nudge::runtime::refusal::Refusal;
use nudge::store::{SledStore, SledTxn};
use nudge::templates::Templates;

fn core(store: &Path, phone_country_code: &str) -> Core {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let templates = repo.join("templates");
    let (campaigns, _, _) = Campaigns::load(&repo.join("campaigns"), Some(&templates))
        .unwrap_or_else(|_| panic!("the example campaigns load"));
    let settings = Settings {
        tracked_link: "https://interview.example/i/{token}".into(),
        company: "Example Co".into(),
        sender: "The recruiting team".into(),
        phone_country_code: phone_country_code.into(),
        catch_up: chrono::Duration::seconds(900),
        stale_after: chrono::Duration::hours(12),
        backoff: Default::default(),
        communications_off: false,
    };
    Core::new(
        SledStore::open(store, 8 << 20).unwrap(),
        campaigns,
        Some(Arc::new(Templates::load(&templates).unwrap())),
        settings,
    )
}

fn enroll(core: &mut Core, fields: &[(&str, &str)]) -> Reply {
    let request = EnrollRequest {
        ignore_filter: true,
        campaign: "warehouse_associate".into(),
        external_id: None,
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    };
    let now = DateTime::parse_from_rfc3339("2026-11-26T15:00:00Z")
        .unwrap()
        .to_utc();
    let (mut replies, _) = core.execute(vec![Command::Enroll(request)], now).unwrap();
    replies.remove(0)
}

fn stored_phone(core: &Core, who: &str) -> Option<String> {
    let mut txn = SledTxn::new(core.store());
    let record = core.find_candidate(&mut txn, who).unwrap()?;
    record.fields.get("phone").cloned()
}

#[test]
fn national_numbers_are_completed_with_the_default_country_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "1");
    let reply = enroll(
        &mut core,
        &[
            ("name", "Ana Ruiz"),
            ("phone", "(555) 010-0100"),
            ("role", "Warehouse Associate"),
        ],
    );
    let Reply::Enrolled(enrolled) = reply else {
        panic!("expected an enrollment, got {reply:?}");
    };
    assert_eq!(
        stored_phone(&core, &enrolled.candidate).as_deref(),
        Some("+15550100100")
    );
    // Written another way, the number is the same candidate.
    let again = enroll(
        &mut core,
        &[
            ("phone", "+1 555 010 0100"),
            ("role", "Warehouse Associate"),
        ],
    );
    let Reply::Enrolled(again) = again else {
        panic!("expected an enrollment, got {again:?}");
    };
    assert_eq!(again.candidate, enrolled.candidate);
}

#[test]
fn a_number_that_cannot_be_normalised_is_refused_with_the_candidate_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "");
    let reply = enroll(
        &mut core,
        &[
            ("email", "ana@example.com"),
            ("phone", "555 0100"),
            ("role", "Warehouse Associate"),
        ],
    );
    let Reply::Error(error) = reply else {
        panic!("expected an error, got {reply:?}");
    };
    assert!(matches!(error, Refusal::BadPhone { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "candidate `ana@example.com`: the phone number `555 0100` has no country code: \
         write it as +<country><number>"
    );
    assert_eq!(stored_phone(&core, "ana@example.com"), None);
}
