//! Loading campaign files: turns the paths given on the command line (files
//! or folders) into parsed syntax trees, keeping every source text so that
//! diagnostics can be rendered, and every parse error as a diagnostic.
//!
//! IO problems (a missing path, an unreadable file, a folder without any
//! `.nudge` file) are a [`LoadError`]; problems in the text are diagnostics.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, FileId, Sources};
use crate::dsl::ast;
use crate::dsl::parse::parse_recovering;

/// The extension of campaign files.
pub const EXTENSION: &str = "nudge";

/// Everything read from a set of campaign files.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The text of every file read, parsed or not.
    pub sources: Sources,
    /// The files that parsed, in load order.
    pub files: Vec<(FileId, ast::File)>,
    /// Syntax errors of the files that did not parse.
    pub diagnostics: Vec<Diagnostic>,
    /// What parsed of the files that did not, in load order: for the
    /// checker, so that one run reports more than the syntax errors. Never
    /// compiled, formatted or drawn.
    pub recovered: Vec<(FileId, ast::File)>,
}

impl Loaded {
    /// Parses one more source text and adds it under `name`.
    pub fn add_source(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let id = self.sources.add(name, text);
        let (file, errors) = parse_recovering(id, &self.sources.get(id).text);
        if errors.is_empty() {
            self.files.push((id, file));
        } else {
            self.diagnostics.extend(errors);
            self.recovered.push((id, file));
        }
        id
    }

    /// Whether loading found syntax errors.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Why a set of campaign paths could not be read.
#[derive(Debug)]
pub enum LoadError {
    /// A path could not be read (missing, unreadable, not UTF-8).
    Io { path: PathBuf, source: io::Error },
    /// A folder given on the command line holds no `.nudge` file at all.
    NoCampaignFiles { folder: PathBuf },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, source } => {
                write!(f, "cannot read `{}`: {source}", path.display())
            }
            LoadError::NoCampaignFiles { folder } => {
                write!(f, "no .{EXTENSION} files in folder `{}`", folder.display())
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            LoadError::NoCampaignFiles { .. } => None,
        }
    }
}

/// Reads and parses campaign files.
///
/// Each path is a campaign file (read whatever its extension) or a folder,
/// searched recursively for `*.nudge` files in sorted order so that runs are
/// deterministic. A file reached twice is read once. Syntax errors do not
/// stop loading: they end up in [`Loaded::diagnostics`] and the file is left
/// out of [`Loaded::files`] (what parsed of it is in [`Loaded::recovered`]).
pub fn load(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    let mut found = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|source| io_error(path, source))?;
        if meta.is_dir() {
            let before = found.len();
            collect_folder(path, &mut found)?;
            if found.len() == before {
                return Err(LoadError::NoCampaignFiles {
                    folder: path.clone(),
                });
            }
        } else {
            found.push(path.clone());
        }
    }

    let mut seen = HashSet::new();
    let mut loaded = Loaded::default();
    for path in found {
        let key = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !seen.insert(key) {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(|source| io_error(&path, source))?;
        loaded.add_source(path.display().to_string(), text);
    }
    Ok(loaded)
}

/// Parses one source text, for tests and tools that hold text in memory.
pub fn load_str(name: &str, text: &str) -> Loaded {
    let mut loaded = Loaded::default();
    loaded.add_source(name, text);
    loaded
}

/// Appends the `.nudge` files under `folder` (recursively) in sorted order.
fn collect_folder(folder: &Path, found: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries = fs::read_dir(folder).map_err(|source| io_error(folder, source))?;
    let mut paths = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| io_error(folder, source))?;
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_folder(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == EXTENSION) {
            found.push(path);
        }
    }
    Ok(())
}

fn io_error(path: &Path, source: io::Error) -> LoadError {
    LoadError::Io {
        path: path.to_path_buf(),
        source,
    }
}
