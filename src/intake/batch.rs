//! Many applications in one request: `POST /v1/applied/batch` on the
//! admin API, which `nudge import` sends its rows through when a daemon
//! runs. Each application is answered on its own (one refused row does
//! not refuse the others), in the order given.

use serde::{Deserialize, Serialize};

use crate::runtime::api::ApplyResponse;
use crate::runtime::refusal::Refusal;

/// The most applications one batch request may carry.
pub const MAX_BATCH: usize = 5000;

/// One application's answer in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    Ok(ApplyResponse),
    /// The refusal's HTTP status and words, as the admin API answers a
    /// single request.
    Refused {
        status: u16,
        message: String,
    },
}

impl Applied {
    pub fn of(answer: Result<ApplyResponse, Refusal>) -> Applied {
        match answer {
            Ok(r) => Applied::Ok(r),
            Err(e) => Applied::Refused {
                status: crate::server::admin::status_of(&e).as_u16(),
                message: e.to_string(),
            },
        }
    }

    /// Back to a result on the CLI's side.
    pub fn into_result(self) -> Result<ApplyResponse, Refusal> {
        match self {
            Applied::Ok(r) => Ok(r),
            Applied::Refused { status, message } => Err(Refusal::Daemon { status, message }),
        }
    }
}
