//! `nudge export`: the store's history as the event log of REPORT.md §1,
//! through the daemon when it runs, else from the store directly.

use std::path::Path;

use super::{api, connect, CliError, Status};
use crate::config::Config;
use crate::report::export::{Exported, Filter};
use crate::report::instant;

/// `nudge export [--campaign NAME] [--since T] [--until T] [--output FILE]`.
pub fn export(
    config: &Config,
    campaign: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
    output: Option<&Path>,
) -> Result<Status, CliError> {
    let when = |flag: &str, text: Option<&str>| {
        text.map(|t| instant::parse(t).map_err(|e| CliError::Input(format!("{flag}: {e}"))))
            .transpose()
    };
    let filter = Filter {
        campaign: campaign.map(str::to_string),
        since: when("--since", since)?,
        until: when("--until", until)?,
    };
    let mut admin = connect(config)?;
    let unknown = |exported: &Exported| match campaign {
        Some(name) if exported.campaigns == 0 => Err(CliError::Input(format!(
            "--campaign: no campaign named {name:?} is loaded or in the history"
        ))),
        _ => Ok(()),
    };
    match output {
        Some(path) => {
            // Written beside the target and renamed into place, so a
            // failed export never leaves half a file under its name.
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let mut file = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
                .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
            let exported = admin.export(&filter, file.as_file_mut()).map_err(api)?;
            unknown(&exported)?;
            file.persist(path)
                .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
            eprintln!(
                "{}: {} lines ({} campaigns, {} enrollments)",
                path.display(),
                exported.lines,
                exported.campaigns,
                exported.enrollments
            );
        }
        None => {
            let stdout = std::io::stdout();
            unknown(&admin.export(&filter, stdout.lock()).map_err(api)?)?;
        }
    }
    Ok(Status::Ok)
}
