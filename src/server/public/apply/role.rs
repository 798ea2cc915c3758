//! The role an application through a campaign's own link is for.
//!
//! A campaign's `where` filter is written for applications from every
//! source (an ATS feed carries all of a company's openings), so it usually
//! asks for a role: `role == "Warehouse Associate"`. Someone who applies
//! at `/apply/warehouse_associate` applied for that campaign's role
//! without typing it, and a recruiter who posts the link expects them to
//! be taken. So the application carries, as its `role`:
//!
//! 1. the value the filter asks `role` to equal (`role == "..."`, or the
//!    first of `role in [...]`), as written, when the filter is such a
//!    test or a chain of `and`s holding one;
//! 2. else the campaign's `title` (which `role matches "*Night*"` usually
//!    matches), else its name.
//!
//! The rest of the filter still decides: `source != "referral"` turns
//! away `?source=referral`.

use crate::dsl::ast::{CompareOp, ExprKind, SettingKind};
use crate::dsl::{ast, parse};
use crate::runtime::campaigns::Campaign;

/// The role an application through `campaign`'s link is for.
pub fn of(campaign: &Campaign) -> String {
    let machine = &campaign.machine;
    asked(campaign)
        .or_else(|| machine.title.clone())
        .unwrap_or_else(|| machine.name.clone())
}

/// The role the campaign's `enroll ... where` asks for by value.
fn asked(campaign: &Campaign) -> Option<String> {
    // The compiled filter keeps values case-folded; the text has them as
    // written.
    let file = parse::parse(0, &campaign.source).ok()?;
    let tree = file
        .campaigns
        .iter()
        .find(|c| c.name.name == campaign.machine.name)?;
    tree.settings.iter().find_map(|s| match &s.kind {
        SettingKind::Enroll {
            filter: Some(filter),
            ..
        } => required_role(filter),
        _ => None,
    })
}

fn required_role(expr: &ast::Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::And(a, b) => required_role(a).or_else(|| required_role(b)),
        ExprKind::Group(inner) => required_role(inner),
        ExprKind::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if is_role(path) => Some(value.text()),
        ExprKind::In { path, values } if is_role(path) => values.first().map(ast::Value::text),
        _ => None,
    }
}

fn is_role(path: &ast::Path) -> bool {
    let names: Vec<&str> = path.segments.iter().map(|s| s.name.as_str()).collect();
    matches!(names.as_slice(), ["role"] | ["candidate", "role"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::pipeline::compile_paths;

    fn campaign(source: &str) -> Campaign {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.nudge"), source).unwrap();
        let mut compiled = compile_paths(&[dir.path().to_path_buf()], None)
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        let c = compiled.campaigns.remove(0);
        Campaign {
            machine: c.machine,
            version: String::new(),
            source: c.text,
            file: String::new(),
        }
    }

    fn with(head: &str) -> String {
        format!(
            "campaign jobs {{\n{head}\n  channels email\n  state invite {{\n    send \"invite\"\n    end\n  }}\n}}\n"
        )
    }

    #[test]
    fn the_role_the_filter_asks_for_as_written() {
        let c = campaign(&with(
            "  title \"Warehouse Associate, Dallas DC\"\n  enroll on applied where source != \"referral\" and (role == \"Warehouse Associate\")",
        ));
        assert_eq!(of(&c), "Warehouse Associate");
        let c = campaign(&with(
            "  enroll on applied where candidate.role in [\"Picker\", \"Packer\"]",
        ));
        assert_eq!(of(&c), "Picker");
    }

    #[test]
    fn else_the_title_else_the_name() {
        let c = campaign(&with(
            "  title \"Night Shift Picker, Reno\"\n  enroll on applied where role matches \"*Night*\"",
        ));
        assert_eq!(of(&c), "Night Shift Picker, Reno");
        // Under `or`, no one value is asked for.
        let c = campaign(&with(
            "  enroll on applied where role == \"A\" or role == \"B\"",
        ));
        assert_eq!(of(&c), "jobs");
    }
}
