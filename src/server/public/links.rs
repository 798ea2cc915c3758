//! The tracked link (`GET /i/{token}`), the open pixel (`GET
//! /o/{token}.gif`) and unsubscribe (`GET`/`POST /u/{token}`).

use axum::Router;

use super::PublicState;

pub(super) fn routes() -> Router<PublicState> {
    Router::new()
}
