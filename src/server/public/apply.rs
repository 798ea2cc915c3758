//! The shared apply link: `GET /apply/{campaign}` (the form) and `POST
//! /apply/{campaign}` (the application).

use axum::Router;

use super::PublicState;

pub(super) fn routes() -> Router<PublicState> {
    Router::new()
}
