//! Reports over the store: the campaigns' headers and every enrollment's
//! summary, read from the store instead of a log file.
//! CONTRACT (lead): signatures fixed; the lead writes the bodies.

use std::collections::BTreeMap;

use super::compute::Options;
use super::fold::{Header, Summary};
use super::model::Report;
use crate::store::{Store, StoreError};

/// The headers of the campaigns loaded now (with their decisions) and the
/// summaries of the enrollments `options` selects (campaign, dates).
pub fn summaries<S: Store>(
    store: &S,
    campaigns: &crate::runtime::campaigns::Campaigns,
    options: &Options,
) -> Result<(BTreeMap<String, Header>, Vec<Summary>), StoreError> {
    let _ = (store, campaigns, options);
    todo!("lead")
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
