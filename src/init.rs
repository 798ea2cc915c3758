//! `nudge init`: a new folder holding everything needed to start: the
//! commented starter `nudge.toml`, the sample warehouse campaign, every
//! template it sends, and a README with the next commands.
//!
//! The campaign and templates are the repository's own, embedded at
//! compile time, so the sample is always one that `nudge check` accepts.
//! Nothing is ever overwritten: the folder must be new or empty.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::config;

/// One file of the sample: its path in the repository, which is also its
/// path in the new folder, and its text.
macro_rules! embed {
    ($path:literal) => {
        ($path, include_str!(concat!("../", $path)))
    };
}

/// The sample campaign and every template it needs, in every language the
/// repository has (the warehouse templates come in English and Spanish).
const SAMPLE: &[(&str, &str)] = &[
    embed!("campaigns/warehouse.nudge"),
    embed!("templates/invite-short.sms.j2"),
    embed!("templates/invite-short.email.j2"),
    embed!("templates/invite-short.es.sms.j2"),
    embed!("templates/invite-short.es.email.j2"),
    embed!("templates/invite-warm.sms.j2"),
    embed!("templates/invite-warm.email.j2"),
    embed!("templates/invite-warm.es.sms.j2"),
    embed!("templates/invite-warm.es.email.j2"),
    embed!("templates/reminder.email.j2"),
    embed!("templates/reminder.es.email.j2"),
    embed!("templates/last-call.sms.j2"),
    embed!("templates/last-call.email.j2"),
    embed!("templates/last-call.es.sms.j2"),
    embed!("templates/last-call.es.email.j2"),
    embed!("templates/nudge.sms.j2"),
    embed!("templates/nudge.email.j2"),
    embed!("templates/nudge.es.sms.j2"),
    embed!("templates/nudge.es.email.j2"),
    embed!("templates/expired.email.j2"),
    embed!("templates/expired.es.email.j2"),
];

/// The README of the new folder.
const README: &str = r#"# nudge

Made by `nudge init`. Run the commands below from this folder, where
`nudge.toml` is found.

- `nudge.toml`: the configuration; every setting is shown with its default.
- `campaigns/warehouse.nudge`: a sample campaign, inviting warehouse
  applicants by SMS and email and following up until the link closes.
- `templates/`: the messages it sends, in English and Spanish (`.es.`).

Next:

```sh
# check the configuration, the campaigns and their templates
nudge check

# preview what one applicant would receive, and when
nudge simulate campaigns/warehouse.nudge --start 2026-11-26T20:30:00-06:00 \
  --candidate "name=Ana Ruiz" --candidate phone=+15550100 \
  --candidate email=ana@example.com --candidate "role=Warehouse Associate"

# run the daemon (messages print on the console until you configure the
# channels in nudge.toml)
nudge run

# enroll a candidate into the running daemon
nudge enroll --help
```
"#;

/// What [`init`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The folder, as given.
    pub dir: PathBuf,
    /// Every file written, relative to `dir`, in the order written.
    pub files: Vec<PathBuf>,
}

/// Why [`init`] wrote nothing, or stopped.
#[derive(Debug)]
pub enum InitError {
    /// The path exists and is not a folder.
    NotAFolder { path: PathBuf },
    /// The folder exists and holds something (`entry`, the first found).
    NotEmpty { dir: PathBuf, entry: PathBuf },
    /// Writing `path` failed; files written before it are left in place.
    Io { path: PathBuf, source: io::Error },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NotAFolder { path } => {
                write!(f, "`{}` exists and is not a folder", path.display())
            }
            InitError::NotEmpty { dir, entry } => write!(
                f,
                "`{}` is not empty (it holds `{}`); nudge init only writes into a new or empty folder",
                dir.display(),
                entry.display()
            ),
            InitError::Io { path, source } => {
                write!(f, "cannot write `{}`: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Io { source, .. } => Some(source),
            InitError::NotAFolder { .. } | InitError::NotEmpty { .. } => None,
        }
    }
}

/// Every file `nudge init` writes, relative to the new folder, with its
/// text: `nudge.toml`, `README.md`, the campaign and its templates.
pub fn files() -> Vec<(PathBuf, String)> {
    let mut files = vec![
        (PathBuf::from(config::FILE_NAME), config::starter_toml()),
        (PathBuf::from("README.md"), README.to_string()),
    ];
    files.extend(
        SAMPLE
            .iter()
            .map(|(path, text)| (PathBuf::from(path), text.to_string())),
    );
    files
}

/// Creates `dir` (with its parents) and writes the starter configuration,
/// the sample campaign, its templates and a README into it.
///
/// `dir` must not exist, or be an empty folder; otherwise nothing is
/// written. Files are created only if absent, so even a file appearing
/// meanwhile is never overwritten.
pub fn init(dir: &Path) -> Result<InitReport, InitError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if let Some(entry) = entries.next() {
                let entry = entry.map_err(|source| InitError::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
                return Err(InitError::NotEmpty {
                    dir: dir.to_path_buf(),
                    entry: PathBuf::from(entry.file_name()),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) if dir.exists() && !dir.is_dir() => {
            return Err(InitError::NotAFolder {
                path: dir.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(InitError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let mut written = Vec::new();
    for (relative, text) in files() {
        let path = dir.join(&relative);
        write_new(&path, &text).map_err(|source| InitError::Io { path, source })?;
        written.push(relative);
    }
    Ok(InitReport {
        dir: dir.to_path_buf(),
        files: written,
    })
}

/// Writes a file that must not exist yet, creating its folder.
fn write_new(path: &Path, text: &str) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?
        .write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The sample carries every template file the repository has for the
    /// names the warehouse campaign sends, so a new translation is not
    /// forgotten here.
    #[test]
    fn sample_holds_every_warehouse_template() {
        let sends = [
            "invite-short",
            "invite-warm",
            "reminder",
            "last-call",
            "nudge",
            "expired",
        ];
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let in_repo: BTreeSet<String> = fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| sends.iter().any(|s| name.split('.').next() == Some(*s)))
            .map(|name| format!("templates/{name}"))
            .collect();
        let embedded: BTreeSet<String> = SAMPLE
            .iter()
            .filter(|(path, _)| path.starts_with("templates/"))
            .map(|(path, _)| path.to_string())
            .collect();
        assert_eq!(embedded, in_repo);
    }
}
