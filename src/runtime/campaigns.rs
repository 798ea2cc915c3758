//! The campaigns a runtime runs: loaded from the campaigns folder, checked
//! (templates included), compiled, and versioned by the hash of each
//! campaign's own text, so editing one campaign leaves the others' version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Sources};
use crate::dsl::check::check;
use crate::dsl::compile::compile;
use crate::dsl::load::load;
use crate::engine::Machine;

/// One compiled campaign and where it came from.
#[derive(Debug)]
pub struct Campaign {
    pub machine: Machine,
    /// The first 12 hex digits of the SHA-256 of the campaign's text.
    pub version: String,
    pub source: String,
    pub file: String,
}

/// Campaigns by name.
#[derive(Debug, Default, Clone)]
pub struct Campaigns {
    by_name: BTreeMap<String, Arc<Campaign>>,
}

/// Campaign files that do not check: the diagnostics, ready to render.
#[derive(Debug)]
pub struct LoadFailure {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
    /// A reason that is not a diagnostic (an unreadable folder).
    pub message: Option<String>,
}

impl Campaigns {
    pub fn get(&self, name: &str) -> Option<&Arc<Campaign>> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<Campaign>)> {
        self.by_name.iter()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Loads and checks every campaign under `folder`; any error refuses the
    /// whole set (warnings pass).
    pub fn load(
        folder: &Path,
        templates: Option<&Path>,
    ) -> Result<(Campaigns, Vec<Diagnostic>, Sources), LoadFailure> {
        let loaded = load(&[PathBuf::from(folder)]).map_err(|e| LoadFailure {
            sources: Sources::default(),
            diagnostics: Vec::new(),
            message: Some(e.to_string()),
        })?;
        let report = check(&loaded, templates);
        if report.has_errors() {
            return Err(LoadFailure {
                sources: loaded.sources,
                diagnostics: report.diagnostics,
                message: None,
            });
        }
        let mut by_name = BTreeMap::new();
        for (file, ast) in &loaded.files {
            let source = loaded.sources.get(*file);
            for campaign in &ast.campaigns {
                let machine = compile(campaign).map_err(|e| LoadFailure {
                    sources: loaded.sources.clone(),
                    diagnostics: Vec::new(),
                    message: Some(e.to_string()),
                })?;
                let text = source
                    .text
                    .get(campaign.span.start..campaign.span.end)
                    .unwrap_or_default()
                    .to_string();
                let digest = Sha256::digest(text.as_bytes());
                let version: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                by_name.insert(
                    machine.name.clone(),
                    Arc::new(Campaign {
                        machine,
                        version,
                        source: text,
                        file: source.name.clone(),
                    }),
                );
            }
        }
        let warnings = report.diagnostics;
        Ok((Campaigns { by_name }, warnings, loaded.sources))
    }
}
