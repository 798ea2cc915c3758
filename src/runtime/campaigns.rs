//! The campaigns a runtime runs: loaded from the campaigns folder, checked
//! (templates included), compiled, and versioned by the hash of each
//! campaign's own text, so editing one campaign leaves the others' version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Sources};
use crate::dsl::pipeline::{compile_paths, PipelineError};
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

    /// Loads, checks and compiles every campaign under `folder`; any error
    /// refuses the whole set (warnings pass).
    pub fn load(
        folder: &Path,
        templates: Option<&Path>,
    ) -> Result<(Campaigns, Vec<Diagnostic>, Sources), LoadFailure> {
        let compiled = compile_paths(&[PathBuf::from(folder)], templates).map_err(|e| match e {
            PipelineError::Rejected {
                sources,
                diagnostics,
            } => LoadFailure {
                sources,
                diagnostics,
                message: None,
            },
            other => LoadFailure {
                sources: Sources::default(),
                diagnostics: Vec::new(),
                message: Some(other.to_string()),
            },
        })?;
        let mut by_name = BTreeMap::new();
        for campaign in compiled.campaigns {
            let digest = Sha256::digest(campaign.text.as_bytes());
            let version: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
            by_name.insert(
                campaign.machine.name.clone(),
                Arc::new(Campaign {
                    machine: campaign.machine,
                    version,
                    source: campaign.text,
                    file: compiled.loaded.sources.get(campaign.file).name.clone(),
                }),
            );
        }
        Ok((
            Campaigns { by_name },
            compiled.warnings,
            compiled.loaded.sources,
        ))
    }
}
