//! Reports over the store: the campaigns' headers and every enrollment's
//! summary, read from the store instead of a log file.
//!
//! Today each enrollment's summary is folded from its candidate's history
//! (the same lines `nudge export` writes, so the two paths agree by
//! construction).

use std::collections::BTreeMap;

use super::compute::Options;
use super::fold::{Fold, Header, Summary};
use super::model::Report;
use crate::store::{Store, StoreError};

/// The headers of the campaigns loaded now (with their decisions) and the
/// summaries of the enrollments `options` selects (campaign, dates).
pub fn summaries<S: Store>(
    store: &S,
    campaigns: &crate::runtime::campaigns::Campaigns,
    options: &Options,
) -> Result<(BTreeMap<String, Header>, Vec<Summary>), StoreError> {
    let filter = super::export::Filter {
        campaign: options.campaign.clone(),
        since: options.since,
        until: options.until,
    };
    let mut headers = BTreeMap::new();
    for (name, campaign) in campaigns.iter() {
        if filter.keeps_campaign(name) {
            let line = super::export::header_line(campaign, &[]);
            headers.extend(Header::of(&line).map(|h| (name.clone(), h)));
        }
    }
    let mut summaries = Vec::new();
    for dossier in store.dossiers() {
        let dossier = dossier?;
        let (lines, _) =
            super::export::select(super::export::lines_of(&dossier, campaigns)?, &filter);
        let mut fold = Fold::new();
        for header in headers.values() {
            fold.declare(header.clone());
        }
        for line in &lines {
            fold.push(line);
        }
        let (_, mut own) = fold.finish();
        for summary in &own {
            if !headers.contains_key(&summary.campaign) {
                // A campaign in the history that is no longer loaded.
                let line = super::export::orphan_header_line(&summary.campaign, &BTreeMap::new());
                headers.extend(Header::of(&line).map(|h| (summary.campaign.clone(), h)));
            }
        }
        summaries.append(&mut own);
    }
    Ok((headers, summaries))
}

/// The report over the store: [`summaries`] through
/// [`super::compute::report`].
pub fn report<S: Store>(
    store: &S,
    campaigns: &crate::runtime::campaigns::Campaigns,
    options: &Options,
) -> Result<Report, StoreError> {
    let (headers, summaries) = summaries(store, campaigns, options)?;
    Ok(super::compute::report(&headers, &summaries, options))
}
