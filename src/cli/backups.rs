//! `nudge verify`, `nudge backup` and `nudge restore`: the store's health
//! and its copies (the work is in `store::sled`'s `verify` and `backup`).

use std::path::Path;

use super::{api, connect, emit, CliError, Status};
use crate::config::Config;
use crate::store::sled::{self as store, Copied};

fn store_error(e: crate::store::StoreError) -> CliError {
    CliError::Input(e.to_string())
}

/// `nudge verify [--store DIR] [--accept]`: every record decodes and the
/// store's parts and commit ledger agree (exit 1 when not). `--accept`
/// then takes a store that lost commits as it is.
pub fn verify(config: &Config, dir: Option<&Path>, accept: bool) -> Result<Status, CliError> {
    let dir = dir.unwrap_or(&config.store);
    let found = store::verify(dir).map_err(store_error)?;
    outln!(
        "{}: {} records, {} candidates, commit {}",
        dir.display(),
        found.records,
        found.candidates,
        found.commit
    );
    for problem in &found.problems {
        outln!("  {problem}");
    }
    if accept {
        let accepted = store::accept(dir).map_err(store_error)?;
        outln!(
            "accepted as it is at commit {} (the ledger had seen {}); what it knows was delivered is not sent again",
            accepted.commit,
            accepted.replaced.unwrap_or(0)
        );
        return Ok(Status::Ok);
    }
    if found.problems.is_empty() {
        outln!("whole");
        Ok(Status::Ok)
    } else {
        outln!("{} problems", found.problems.len());
        Ok(Status::Failed)
    }
}

/// `nudge backup DIR`: through the daemon when it runs, else directly.
pub fn backup(config: &Config, dir: &Path) -> Result<Status, CliError> {
    // The daemon may run in another folder: it is given a full path.
    let dir = std::path::absolute(dir).map_err(|e| CliError::Input(e.to_string()))?;
    let mut admin = connect(config)?;
    let copied = admin.backup(&dir).map_err(api)?;
    report(&copied, admin.describe())
}

/// `nudge restore DIR` (the daemon stopped).
pub fn restore(config: &Config, dir: &Path) -> Result<Status, CliError> {
    let copied = store::restore(&config.store, dir).map_err(|e| match e {
        crate::store::StoreError::Locked { path } => CliError::Input(format!(
            "the store `{}` is in use (is `nudge run` running?); stop the daemon before restoring",
            path.display()
        )),
        e => store_error(e),
    })?;
    outln!(
        "restored {} records from `{}` into `{}`: the store is at commit {}{}",
        copied.records,
        dir.display(),
        copied.path.display(),
        copied.commit,
        copied
            .replaced
            .map(|n| format!(" (it had reached commit {n})"))
            .unwrap_or_default()
    );
    if let Some(aside) = &copied.moved_to {
        outln!("the replaced store's files are in `{}`", aside.display());
    }
    outln!("sends delivered after the backup are known and will not be sent again");
    Ok(Status::Ok)
}

fn report(copied: &Copied, how: &str) -> Result<Status, CliError> {
    outln!(
        "backed up {} records at commit {} into `{}` ({how})",
        copied.records,
        copied.commit,
        copied.path.display()
    );
    Ok(Status::Ok)
}
