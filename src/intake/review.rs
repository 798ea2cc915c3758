//! Imports to look over before anyone is invited: `nudge import --review`
//! creates (or updates) the candidates without enrolling them and marks
//! each with the field `import_review = "pending"`; `nudge invite` enrolls
//! them and sets it to `"invited"`. A field rather than a store flag: it
//! shows in `nudge show`, a campaign's `where` can read it, and it needs
//! no change to the store's layout.

use serde::{Deserialize, Serialize};

use crate::runtime::refusal::Refusal;
use crate::store::Store;

/// The candidate field that marks an imported candidate under review.
pub const FIELD: &str = "import_review";
/// Imported with `--review`, not invited yet.
pub const PENDING: &str = "pending";
/// Invited by `nudge invite`.
pub const INVITED: &str = "invited";

/// A candidate waiting for review (`GET /v1/reviewed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviewed {
    pub candidate: String,
    pub external_id: Option<String>,
    pub fields: std::collections::BTreeMap<String, String>,
}

/// Every candidate whose [`FIELD`] is [`PENDING`], in id order.
pub fn pending<S: Store>(store: &S) -> Result<Vec<Reviewed>, Refusal> {
    let mut out = Vec::new();
    for dossier in store.dossiers() {
        let dossier = dossier.map_err(|e| Refusal::Internal(e.to_string()))?;
        let c = dossier.candidate;
        if c.fields.get(FIELD).map(String::as_str) == Some(PENDING) && !c.opted_out {
            out.push(Reviewed {
                candidate: c.id,
                external_id: c.external_id,
                fields: c.fields,
            });
        }
    }
    Ok(out)
}
