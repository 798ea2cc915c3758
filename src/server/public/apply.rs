//! The shared apply link, for social posts and job boards: `GET
//! /apply/{campaign}` shows a form (name, email, mobile number, consent to
//! texts) titled with the campaign's title; `POST /apply/{campaign}`
//! checks it ([`check`]), puts the applicant through the campaign's
//! `where` filter and, when it takes them, enrolls them and answers 303
//! to their own tracked link (`/i/{token}`), which records the click and
//! leads to the interview.
//!
//! - `?source=WORD` (letters, digits, `-`, `_`) rides in a hidden field
//!   and becomes the candidate's `source` (default `apply-link`), so a
//!   recruiter sees which post worked; the application's `role` is the
//!   campaign's ([`role`]); `sms_consent` is recorded as `yes` or `no`.
//! - A mistake shows the form again (422) with each error under its
//!   field and the input kept; a store that cannot write now shows it
//!   again too (503). An unknown or paused campaign is a friendly 404.
//! - The application goes through the intake (`Handle::apply`, for this
//!   campaign only): someone the filter does not take is kept as a
//!   candidate, enrolled nowhere, and thanked (200). The same email or
//!   phone twice is one candidate and one invite: the second application
//!   leads to the same link.

mod check;
mod form;
mod role;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use tracing::{error, info};

use self::check::{Errors, Field, Input, Reach};
use super::respond::{escape, page};
use super::PublicState;
use crate::runtime::api::ApplyRequest;
use crate::runtime::campaigns::Campaign;
use crate::runtime::refusal::Refusal;

/// The candidate's `source` when the link carries none.
const DEFAULT_SOURCE: &str = "apply-link";

pub(super) fn routes() -> Router<PublicState> {
    Router::new().route("/apply/{campaign}", get(show).post(apply))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LinkQuery {
    source: String,
}

/// `GET /apply/{campaign}`: the empty form.
async fn show(
    State(state): State<PublicState>,
    Path(name): Path<String>,
    query: Result<Query<LinkQuery>, QueryRejection>,
) -> Response {
    let campaign = match open_campaign(&state, &name) {
        Ok(c) => c,
        Err(Closed::Gone) => return closed(),
        Err(Closed::Unreadable(_)) => return busy_page(),
    };
    // A query that is not a word is ignored, not an error: links get
    // mangled by the apps they are shared through.
    let input = Input {
        source: query.map(|Query(q)| q.source).unwrap_or_default(),
        ..Input::default()
    };
    form_page(
        &state,
        &campaign,
        &input,
        &Errors::default(),
        None,
        StatusCode::OK,
    )
}

/// `POST /apply/{campaign}`: the application.
async fn apply(
    State(state): State<PublicState>,
    Path(name): Path<String>,
    posted: Result<Form<Input>, FormRejection>,
) -> Response {
    let campaign = match open_campaign(&state, &name) {
        Ok(c) => c,
        Err(Closed::Gone) => return closed(),
        Err(Closed::Unreadable(campaign)) => {
            let input = posted.map(|Form(i)| i).unwrap_or_default();
            return not_saved(&state, &campaign, &input);
        }
    };
    let Ok(Form(input)) = posted else {
        return form_page(
            &state,
            &campaign,
            &Input::default(),
            &Errors::default(),
            Some("We could not read the form. Please fill it in again."),
            StatusCode::BAD_REQUEST,
        );
    };
    let reach = Reach::of(&campaign.machine);
    let country = state
        .config
        .phone_country_code
        .as_deref()
        .unwrap_or_default();
    let checked = match check::check(&input, reach, country) {
        Ok(c) => c,
        Err(errors) => return invalid(&state, &campaign, &input, &errors),
    };
    let source = check::source_word(&input.source).unwrap_or(DEFAULT_SOURCE);
    let mut fields = BTreeMap::from([
        ("name".to_string(), checked.name),
        ("source".to_string(), source.to_string()),
        ("role".to_string(), role::of(&campaign)),
        (
            "sms_consent".to_string(),
            if checked.consent { "yes" } else { "no" }.to_string(),
        ),
    ]);
    if let Some(email) = checked.email {
        fields.insert("email".into(), email);
    }
    if let Some(phone) = checked.phone {
        fields.insert("phone".into(), phone);
    }
    match submit(&state, &campaign, fields).await {
        Ok(Outcome::Invited { candidate, link }) => {
            info!(campaign = %name, %candidate, %source, "applied through the apply link");
            Redirect::to(&link).into_response()
        }
        Ok(Outcome::NotTaken { candidate, why }) => {
            info!(campaign = %name, %candidate, %source, "applied through the apply link, not enrolled: {why}");
            page(
                StatusCode::OK,
                "Thank you for applying",
                &format!(
                    "<p>We have your application. A recruiter at {} will be in touch.</p>",
                    escape(&state.config.company)
                ),
            )
        }
        Err(refusal) => refused(&state, &campaign, &input, refusal),
    }
}

/// What an application came to.
enum Outcome {
    /// Enrolled (now, or before): their tracked link.
    Invited { candidate: String, link: String },
    /// Kept, not enrolled (the campaign's `where` filter does not take
    /// them, they opted out, ...): why.
    NotTaken { candidate: String, why: String },
}

/// The application, through the campaign's `where` filter: the person is
/// found or created either way, and enrolled when the filter takes them.
async fn submit(
    state: &PublicState,
    campaign: &Campaign,
    fields: BTreeMap<String, String>,
) -> Result<Outcome, Refusal> {
    let name = &campaign.machine.name;
    let applied = state
        .handle
        .apply(ApplyRequest {
            campaign: Some(name.clone()),
            fields,
            ..ApplyRequest::default()
        })
        .await?;
    let invited = Outcome::Invited {
        candidate: applied.candidate.clone(),
        link: applied.link.clone(),
    };
    if applied.enrolled.iter().any(|e| &e.campaign == name) {
        return Ok(invited);
    }
    // Applied before: the same link again, and no second invite.
    let known = state.handle.show(&applied.candidate)?;
    if known.enrollments.iter().any(|e| &e.campaign == name) {
        return Ok(invited);
    }
    let why = applied
        .not_enrolled
        .iter()
        .map(|n| n.reason.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Outcome::NotTaken {
        candidate: applied.candidate,
        why,
    })
}

/// Why a link's campaign takes no application now.
enum Closed {
    /// Unknown, or paused: a friendly 404.
    Gone,
    /// Whether it is paused cannot be read now.
    Unreadable(Arc<Campaign>),
}

/// The campaign the link names, when it takes applications.
fn open_campaign(state: &PublicState, name: &str) -> Result<Arc<Campaign>, Closed> {
    let campaign = state.handle.campaign(name).ok_or(Closed::Gone)?;
    match state.handle.paused(name) {
        Ok(false) => Ok(campaign),
        Ok(true) => Err(Closed::Gone),
        Err(e) => {
            error!(campaign = %name, "the apply form could not read the store: {e}");
            Err(Closed::Unreadable(campaign))
        }
    }
}

fn closed() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This job is not taking applications",
        "<p>The link may be old, or the job may have been filled or paused. \
         Check the post you came from for a newer link.</p>",
    )
}

fn busy_page() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again in a few minutes",
        "<p>We cannot take applications right now. Nothing was lost: \
         please try again in a few minutes.</p>",
    )
}

fn form_page(
    state: &PublicState,
    campaign: &Campaign,
    input: &Input,
    errors: &Errors,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let machine = &campaign.machine;
    let title = machine.title.as_deref().unwrap_or(&machine.name);
    let html = form::Form {
        campaign: &machine.name,
        company: &state.config.company,
        reach: Reach::of(machine),
        input,
        source: check::source_word(&input.source),
        errors,
        notice,
    }
    .html();
    page(status, title, &html)
}

fn invalid(state: &PublicState, campaign: &Campaign, input: &Input, errors: &Errors) -> Response {
    form_page(
        state,
        campaign,
        input,
        errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// The form again, input kept, when the store cannot take it now (503).
fn not_saved(state: &PublicState, campaign: &Campaign, input: &Input) -> Response {
    form_page(
        state,
        campaign,
        input,
        &Errors::default(),
        Some(
            "We could not save your application just now, and nothing was sent. \
             Please try again in a few minutes: your answers are kept below.",
        ),
        StatusCode::SERVICE_UNAVAILABLE,
    )
}

/// The runtime said no: a field's problem goes beside the field; a store
/// that cannot write now keeps the input for another try.
fn refused(state: &PublicState, campaign: &Campaign, input: &Input, refusal: Refusal) -> Response {
    match &refusal {
        Refusal::BadField { field, problem, .. } if Field::of(field).is_some() => {
            let field = Field::of(field).unwrap_or(Field::Name);
            let errors = Errors::one(field, check::field_words(problem));
            invalid(state, campaign, input, &errors)
        }
        Refusal::BadPhone { .. } => {
            let errors = Errors::one(
                Field::Phone,
                "Start with + and your country code, such as +1 214 555 0100.",
            );
            invalid(state, campaign, input, &errors)
        }
        Refusal::StoreTrouble(_) | Refusal::NotRecorded(_) | Refusal::ShuttingDown => {
            error!(campaign = %campaign.machine.name, "an application through the apply link was not recorded: {refusal}");
            not_saved(state, campaign, input)
        }
        Refusal::NoContact => {
            let errors = Errors::one(
                Field::Email,
                "Enter your email address or your mobile number, so we can send you the interview link.",
            );
            invalid(state, campaign, input, &errors)
        }
        Refusal::UnknownCampaign { .. } => closed(),
        _ => {
            error!(campaign = %campaign.machine.name, "an application through the apply link was refused: {refusal}");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "We could not take your application",
                "<p>Something is wrong on our side, and nothing was saved. \
                 The team has been told; please try again later.</p>",
            )
        }
    }
}
