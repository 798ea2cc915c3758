//! What a candidate's link token leads to, for the public server's pages
//! (`/i/TOKEN`, `/o/TOKEN.gif`, `/u/TOKEN`): who the candidate is, and
//! which campaign's interview their tracked link opens. A read of
//! committed records, beside the writer, like `nudge show`.
//!
//! Unlike the admin API's `candidate` (an id, an external id or a token),
//! a public page takes a token only, compared whole in constant time: a
//! candidate id in a public address finds no one.

use subtle::ConstantTimeEq;

use super::campaigns::Campaigns;
use super::refusal::Refusal;
use crate::store::{Enrollment, Store, Transaction};

/// The candidate a link token names, and where their tracked link leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// The candidate's id.
    pub candidate: String,
    /// Their token (as given, and found equal to theirs).
    pub token: String,
    pub opted_out: bool,
    /// The campaign the link is taken for ([`interview_campaign`]), if
    /// they are in any.
    pub campaign: Option<String>,
    /// That campaign's `link` setting, if it has one.
    pub link: Option<String>,
}

/// Whether `token` has the shape of a link token: the candidate id, `-`,
/// and 128 bits in hex (see `runtime::core::enroll::new_token`). The id
/// part is returned.
fn token_id(token: &str) -> Option<&str> {
    let (id, secret) = token.rsplit_once('-')?;
    let shaped = !id.is_empty()
        && secret.len() == 32
        && secret
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    shaped.then_some(id)
}

/// The candidate whose link token is `token`, and where it leads; `None`
/// when no candidate has it.
pub fn resolve<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    token: &str,
) -> Result<Option<Linked>, Refusal> {
    let Some(id) = token_id(token) else {
        return Ok(None);
    };
    let Some(candidate) = store.candidate(id)? else {
        return Ok(None);
    };
    if !bool::from(candidate.token.as_bytes().ct_eq(token.as_bytes())) {
        return Ok(None);
    }
    let enrollments = store.begin().enrollments_of(&candidate.id)?;
    let chosen = interview_campaign(&enrollments, |name| {
        campaigns.get(name).and_then(|c| c.machine.link.clone())
    });
    let (campaign, link) = match chosen {
        Some((name, link)) => (Some(name.to_string()), link),
        None => (None, None),
    };
    Ok(Some(Linked {
        candidate: candidate.id,
        token: candidate.token,
        opted_out: candidate.opted_out,
        campaign,
        link,
    }))
}

/// Which of a candidate's enrollments their tracked link opens the
/// interview of, with that campaign's `link` (by `link_of`, `None` where
/// it has none or is no longer loaded): the most recently enrolled
/// active campaign with a `link`; else the most recent one with a `link`
/// that they left (a candidate who finished or opted out still reaches
/// the interview they were invited to); else, with no `link` anywhere,
/// the most recent active enrollment, then the most recent of all (the
/// `{campaign}` of `interview_url`).
pub fn interview_campaign<'e>(
    enrollments: &'e [Enrollment],
    link_of: impl Fn(&str) -> Option<String>,
) -> Option<(&'e str, Option<String>)> {
    let mut newest: Vec<&Enrollment> = enrollments.iter().collect();
    newest.sort_by_key(|e| std::cmp::Reverse(e.engine.enrolled_at));
    let active = |e: &&&'e Enrollment| e.engine.outcome.is_none();
    let with_link = |e: &&'e Enrollment| link_of(&e.campaign).map(|l| (e.campaign.as_str(), l));
    if let Some((name, link)) = newest
        .iter()
        .filter(active)
        .find_map(with_link)
        .or_else(|| newest.iter().find_map(with_link))
    {
        return Some((name, Some(link)));
    }
    newest
        .iter()
        .find(active)
        .or(newest.first())
        .map(|e| (e.campaign.as_str(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_shape_is_taken() {
        assert_eq!(
            token_id("c12-0123456789abcdef0123456789abcdef"),
            Some("c12")
        );
        for not in [
            "c12",
            "c12-",
            "-0123456789abcdef0123456789abcdef",
            "c12-0123456789abcdef0123456789abcde",
            "c12-0123456789ABCDEF0123456789abcdef",
            "c12-0123456789abcdef0123456789abcdeg",
        ] {
            assert_eq!(token_id(not), None, "{not}");
        }
    }

    fn enrolled(campaign: &str, minute: i64, active: bool) -> Enrollment {
        let at = chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(minute);
        Enrollment {
            campaign: campaign.into(),
            candidate: "c1".into(),
            version: String::new(),
            state_name: "invite".into(),
            variants: Default::default(),
            engine: crate::engine::step::EngineState {
                enrolled_at: at,
                outcome: (!active).then(|| "expired".to_string()),
                ..Default::default()
            },
            timer: None,
            parked: false,
        }
    }

    #[test]
    fn the_newest_active_campaign_with_a_link_wins_then_any_with_a_link_then_the_newest() {
        let link_of = |name: &str| {
            name.starts_with("l")
                .then(|| format!("https://{name}.example/"))
        };
        let pick = |enrollments: &[Enrollment]| {
            interview_campaign(enrollments, link_of).map(|(n, l)| (n.to_string(), l))
        };
        let linked = |n: &str| Some((n.to_string(), Some(format!("https://{n}.example/"))));
        let plain = |n: &str| Some((n.to_string(), None));

        let all = [
            enrolled("l_old", 1, true),
            enrolled("l_new", 3, true),
            enrolled("plain_newest", 5, true),
            enrolled("l_left", 4, false),
        ];
        assert_eq!(pick(&all), linked("l_new"));
        // Left every linked campaign: the newest of those still opens.
        let left = [
            enrolled("l_a", 1, false),
            enrolled("l_b", 2, false),
            enrolled("p", 3, true),
        ];
        assert_eq!(pick(&left), linked("l_b"));
        // No `link` anywhere: the newest active campaign names `{campaign}`.
        let none = [
            enrolled("p1", 1, true),
            enrolled("p2", 2, false),
            enrolled("p0", 0, true),
        ];
        assert_eq!(pick(&none), plain("p1"));
        let done = [enrolled("p1", 1, false), enrolled("p2", 2, false)];
        assert_eq!(pick(&done), plain("p2"));
        assert_eq!(pick(&[]), None);
    }
}
