//! The one road from campaign files to machines: load → check → compile.
//! The CLI (`simulate`) and the daemon both take it, so a campaign runs
//! only if `nudge check` would pass it, and every caller refuses the same
//! files for the same reasons.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, FileId, Sources};
use crate::dsl::check::checked;
use crate::dsl::compile::{compile, CompileError};
use crate::dsl::load::{load, LoadError, Loaded};
use crate::engine::Machine;

/// Every campaign of a set of files, checked and compiled.
#[derive(Debug)]
pub struct Compiled {
    /// The files as loaded: their text, for diagnostics, and their trees.
    pub loaded: Loaded,
    /// One per campaign, in load order.
    pub campaigns: Vec<CompiledCampaign>,
    /// The checker's warnings (there were no errors).
    pub warnings: Vec<Diagnostic>,
}

/// One campaign, ready to run, and where it came from.
#[derive(Debug)]
pub struct CompiledCampaign {
    pub machine: Machine,
    pub file: FileId,
    /// The campaign's own text, from `campaign` to its closing brace.
    pub text: String,
}

impl Compiled {
    /// The machine of the campaign called `name`.
    pub fn machine(&self, name: &str) -> Option<&Machine> {
        self.campaigns
            .iter()
            .map(|c| &c.machine)
            .find(|m| m.name == name)
    }

    pub fn sources(&self) -> &Sources {
        &self.loaded.sources
    }
}

/// Why a set of campaign files does not run.
#[derive(Debug)]
pub enum PipelineError {
    /// The files could not be read.
    Load(LoadError),
    /// `check` found errors: all its diagnostics, warnings included.
    Rejected {
        sources: Sources,
        diagnostics: Vec<Diagnostic>,
    },
    /// A checked campaign did not compile: a mistake of the checker.
    Compile(CompileError),
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::Load(e) => e.fmt(f),
            PipelineError::Rejected { diagnostics, .. } => {
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                write!(f, "the campaigns do not check ({errors} errors)")
            }
            PipelineError::Compile(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PipelineError {}

/// Loads, checks and compiles the campaign files under `paths` (files or
/// folders, as [`load`] reads them). `templates` is the templates folder
/// the checker looks templates up in, if any.
pub fn compile_paths(
    paths: &[PathBuf],
    templates: Option<&Path>,
) -> Result<Compiled, PipelineError> {
    let loaded = load(paths).map_err(PipelineError::Load)?;
    compile_loaded(loaded, templates)
}

/// Checks and compiles files already loaded (for text held in memory).
pub fn compile_loaded(loaded: Loaded, templates: Option<&Path>) -> Result<Compiled, PipelineError> {
    let (report, checked) = checked(&loaded, templates);
    let Some(checked) = checked else {
        return Err(PipelineError::Rejected {
            sources: loaded.sources,
            diagnostics: report.diagnostics,
        });
    };
    let mut campaigns = Vec::new();
    for campaign in checked.campaigns() {
        let machine = compile(campaign).map_err(PipelineError::Compile)?;
        let span = campaign.ast().span;
        let text = loaded
            .sources
            .get(campaign.file())
            .text
            .get(span.start..span.end)
            .unwrap_or_default()
            .to_string();
        campaigns.push(CompiledCampaign {
            machine,
            file: campaign.file(),
            text,
        });
    }
    Ok(Compiled {
        loaded,
        campaigns,
        warnings: report.diagnostics,
    })
}
