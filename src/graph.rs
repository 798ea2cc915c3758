//! `nudge graph`: one campaign's states and transitions as a Graphviz DOT or
//! a Mermaid flowchart.
//!
//! Both printers draw the same picture, built once by `Picture::new`:
//!
//! - one node per state, in source order, labelled with its name and its
//!   sends (`invite` / `send invite-{copy}`); final states (those with
//!   `end`) are double circles in DOT and stadiums in Mermaid;
//! - a start point with an edge to the first state, labelled with the enroll
//!   trigger (`enroll on applied where ...`, or `explicit enrollment`);
//! - one edge per transition, labelled with its trigger (`clicked`,
//!   `clicked where ...`, `after 24h`, `at deadline`, `before deadline 12h`,
//!   `split copy=short`), in source order;
//! - the goal and exits, which apply in every non-final state, in a single
//!   legend node instead of an edge from every state;
//! - the title (or the campaign name) as the graph's caption.
//!
//! Labels are escaped for each format, so a title or filter holding `"`,
//! `\`, `#` or `<` prints as written.

use crate::dsl::ast::{Campaign, SettingKind, StatementKind};
use crate::dsl::fmt::format_expr;

/// The campaign as Graphviz DOT (`dot -Tsvg`), left to right.
pub fn dot(campaign: &Campaign) -> String {
    let picture = Picture::new(campaign);
    let mut out = format!("digraph {} {{\n", dot_string(&picture.name));
    out.push_str(&format!(
        "  graph [rankdir=LR, labelloc=t, label={}];\n",
        dot_string(&picture.caption)
    ));
    out.push_str("  node [shape=box, style=rounded];\n");
    out.push_str("  \"(start)\" [shape=point, width=0.15];\n");
    for node in &picture.nodes {
        let shape = if node.is_final { "doublecircle" } else { "box" };
        out.push_str(&format!(
            "  {} [shape={shape}, label={}];\n",
            dot_string(&node.name),
            dot_label(&node.lines, false)
        ));
    }
    if !picture.legend.is_empty() {
        out.push_str(&format!(
            "  \"(legend)\" [shape=note, label={}];\n",
            dot_label(&picture.legend, true)
        ));
    }
    for edge in &picture.edges {
        let from = match &edge.from {
            Some(state) => dot_string(state),
            None => "\"(start)\"".to_string(),
        };
        out.push_str(&format!(
            "  {from} -> {} [label={}];\n",
            dot_string(&edge.to),
            dot_string(&edge.label)
        ));
    }
    out.push_str("}\n");
    out
}

/// The campaign as a Mermaid flowchart, left to right.
pub fn mermaid(campaign: &Campaign) -> String {
    let picture = Picture::new(campaign);
    let mut out = format!(
        "---\ntitle: {}\n---\nflowchart LR\n",
        yaml_string(&picture.caption)
    );
    out.push_str("  start((\" \"))\n");
    for node in &picture.nodes {
        let label = mermaid_label(&node.lines);
        let id = mermaid_id(&node.name);
        if node.is_final {
            out.push_str(&format!("  {id}([{label}])\n"));
        } else {
            out.push_str(&format!("  {id}[{label}]\n"));
        }
    }
    if !picture.legend.is_empty() {
        out.push_str(&format!("  legend>{}]\n", mermaid_label(&picture.legend)));
    }
    for edge in &picture.edges {
        let from = edge.from.as_deref().map_or("start".to_string(), mermaid_id);
        out.push_str(&format!(
            "  {from} -->|{}| {}\n",
            mermaid_label(std::slice::from_ref(&edge.label)),
            mermaid_id(&edge.to)
        ));
    }
    let finals: Vec<String> = picture
        .nodes
        .iter()
        .filter(|n| n.is_final)
        .map(|n| mermaid_id(&n.name))
        .collect();
    if !finals.is_empty() {
        out.push_str("  classDef final stroke-width:3px\n");
        out.push_str(&format!("  class {} final\n", finals.join(",")));
    }
    if !picture.legend.is_empty() {
        out.push_str("  classDef legend fill:#fff8dc,stroke:#999\n");
        out.push_str("  class legend legend\n");
    }
    out
}

/// What both printers draw, with labels still unescaped.
struct Picture {
    name: String,
    caption: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    /// Lines of the goal-and-exits note; empty when there is neither.
    legend: Vec<String>,
}

struct Node {
    name: String,
    /// The name, then one line per send.
    lines: Vec<String>,
    is_final: bool,
}

struct Edge {
    /// `None` for the start point.
    from: Option<String>,
    to: String,
    label: String,
}

impl Picture {
    fn new(campaign: &Campaign) -> Self {
        let mut caption = campaign.name.name.clone();
        let mut enroll = "explicit enrollment".to_string();
        let mut legend = Vec::new();
        for setting in &campaign.settings {
            match &setting.kind {
                SettingKind::Title(title) => caption = title.value.clone(),
                SettingKind::Enroll { event, filter } => {
                    enroll = format!("enroll on {}", with_filter(&event.name, filter));
                }
                SettingKind::Goal(goal) => legend.push(format!("goal: {}", goal.name)),
                SettingKind::Exit(events) => {
                    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
                    legend.push(format!("exits: {}", names.join(", ")));
                }
                _ => {}
            }
        }
        if !legend.is_empty() {
            legend.push("(from every non-final state)".to_string());
        }

        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        if let Some(first) = campaign.states.first() {
            edges.push(Edge {
                from: None,
                to: first.name.name.clone(),
                label: enroll,
            });
        }
        for state in &campaign.states {
            let from = &state.name.name;
            let mut lines = vec![from.clone()];
            let mut is_final = false;
            let mut edge = |to: &str, label: String| {
                edges.push(Edge {
                    from: Some(from.clone()),
                    to: to.to_string(),
                    label,
                });
            };
            for statement in &state.statements {
                match &statement.kind {
                    StatementKind::Send { template, via } => lines.push(match via {
                        Some(channel) => format!("send {} via {}", template.value, channel.name),
                        None => format!("send {}", template.value),
                    }),
                    StatementKind::On {
                        event,
                        filter,
                        target,
                    } => edge(&target.name, with_filter(&event.name, filter)),
                    StatementKind::After { duration, target } => {
                        edge(&target.name, format!("after {duration}"));
                    }
                    StatementKind::AtDeadline { target } => {
                        edge(&target.name, "at deadline".to_string());
                    }
                    StatementKind::BeforeDeadline { duration, target } => {
                        edge(&target.name, format!("before deadline {duration}"));
                    }
                    StatementKind::Split { experiment, arms } => {
                        for arm in arms {
                            let label = format!("split {}={}", experiment.name, arm.variant.name);
                            edge(&arm.target.name, label);
                        }
                    }
                    StatementKind::Window(_) => {}
                    StatementKind::End => is_final = true,
                }
            }
            nodes.push(Node {
                name: from.clone(),
                lines,
                is_final,
            });
        }
        Picture {
            name: campaign.name.name.clone(),
            caption,
            nodes,
            edges,
            legend,
        }
    }
}

/// `clicked` or `clicked where event.link == "apply"`.
fn with_filter(event: &str, filter: &Option<crate::dsl::ast::Expr>) -> String {
    match filter {
        Some(filter) => format!("{event} where {}", format_expr(filter)),
        None => event.to_string(),
    }
}

/// A DOT quoted string.
fn dot_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    push_dot_escaped(&mut out, text);
    out.push('"');
    out
}

/// A DOT label of several lines: centred (`\n` between lines) or, for
/// `left`, each line left-justified (`\l` after each).
fn dot_label(lines: &[String], left: bool) -> String {
    let mut out = String::from("\"");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 && !left {
            out.push_str("\\n");
        }
        push_dot_escaped(&mut out, line);
        if left {
            out.push_str("\\l");
        }
    }
    out.push('"');
    out
}

fn push_dot_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
}

/// A Mermaid node id: states are prefixed so that no state name (`end`,
/// `start`, `legend`) can clash with a keyword or with the extra nodes.
fn mermaid_id(state: &str) -> String {
    format!("s_{state}")
}

/// A quoted Mermaid label, lines joined by `<br/>`, with the characters
/// Mermaid would read as markup written as entity codes.
fn mermaid_label(lines: &[String]) -> String {
    let mut out = String::from("\"");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("<br/>");
        }
        for c in line.chars() {
            match c {
                '#' => out.push_str("#35;"),
                '"' => out.push_str("#quot;"),
                '<' => out.push_str("#lt;"),
                '>' => out.push_str("#gt;"),
                '\n' | '\r' => out.push(' '),
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

/// A YAML double-quoted string, for Mermaid's front matter.
fn yaml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::parse::parse;

    const SMALL: &str = r#"
campaign demo {
  title "Say \"hi\" #1"
  enroll on applied where role == "A\"B"
  deadline 72h
  goal completed
  exit on opted_out, bounced
  experiment tone { warm 1, cold 1 }
  state start { split tone { warm -> invite, cold -> invite } }
  state invite {
    send "invite-{tone}"
    on clicked where event.link == "apply" -> done
    after 24h -> invite
    before deadline 12h -> done
    at deadline -> done
  }
  state done { send "bye" via email end }
}
"#;

    fn campaign(source: &str) -> Campaign {
        let file = parse(0, source).expect("parses");
        file.campaigns.into_iter().next().expect("one campaign")
    }

    #[test]
    fn dot_of_a_small_campaign() {
        let expected = r#"digraph "demo" {
  graph [rankdir=LR, labelloc=t, label="Say \"hi\" #1"];
  node [shape=box, style=rounded];
  "(start)" [shape=point, width=0.15];
  "start" [shape=box, label="start"];
  "invite" [shape=box, label="invite\nsend invite-{tone}"];
  "done" [shape=doublecircle, label="done\nsend bye via email"];
  "(legend)" [shape=note, label="goal: completed\lexits: opted_out, bounced\l(from every non-final state)\l"];
  "(start)" -> "start" [label="enroll on applied where role == \"A\\\"B\""];
  "start" -> "invite" [label="split tone=warm"];
  "start" -> "invite" [label="split tone=cold"];
  "invite" -> "done" [label="clicked where event.link == \"apply\""];
  "invite" -> "invite" [label="after 24h"];
  "invite" -> "done" [label="before deadline 12h"];
  "invite" -> "done" [label="at deadline"];
}
"#;
        assert_eq!(dot(&campaign(SMALL)), expected);
    }

    #[test]
    fn mermaid_of_a_small_campaign() {
        let expected = r##"---
title: "Say \"hi\" #1"
---
flowchart LR
  start((" "))
  s_start["start"]
  s_invite["invite<br/>send invite-{tone}"]
  s_done(["done<br/>send bye via email"])
  legend>"goal: completed<br/>exits: opted_out, bounced<br/>(from every non-final state)"]
  start -->|"enroll on applied where role == #quot;A\#quot;B#quot;"| s_start
  s_start -->|"split tone=warm"| s_invite
  s_start -->|"split tone=cold"| s_invite
  s_invite -->|"clicked where event.link == #quot;apply#quot;"| s_done
  s_invite -->|"after 24h"| s_invite
  s_invite -->|"before deadline 12h"| s_done
  s_invite -->|"at deadline"| s_done
  classDef final stroke-width:3px
  class s_done final
  classDef legend fill:#fff8dc,stroke:#999
  class legend legend
"##;
        assert_eq!(mermaid(&campaign(SMALL)), expected);
    }

    #[test]
    fn no_enroll_no_goal_and_awkward_names() {
        let source = "campaign c { state end { on x where a matches \"<#>\" -> start } state start { end } }";
        let c = campaign(source);
        let dot = dot(&c);
        assert!(dot.contains("\"(start)\" -> \"end\" [label=\"explicit enrollment\"];"));
        assert!(!dot.contains("(legend)"));
        let mermaid = mermaid(&c);
        assert!(mermaid.contains("start -->|\"explicit enrollment\"| s_end\n"));
        assert!(
            mermaid.contains("s_end -->|\"x where a matches #quot;#lt;#35;#gt;#quot;\"| s_start\n")
        );
        assert!(!mermaid.contains("legend>"));
    }

    #[test]
    fn the_language_reference_example_shows_every_state_and_transition() {
        let source = include_str!("../campaigns/warehouse.nudge");
        let c = campaign(source);
        let dot = dot(&c);
        let mermaid = mermaid(&c);
        for state in &c.states {
            let name = &state.name.name;
            assert!(dot.contains(&format!("  \"{name}\" [")), "{name} in DOT");
            assert!(
                mermaid.contains(&format!("  s_{name}["))
                    || mermaid.contains(&format!("  s_{name}(["))
            );
        }
        let transitions = [
            ("invite", "clicked", "clicked"),
            ("invite", "reminder", "after 24h"),
            ("reminder", "clicked", "clicked"),
            ("reminder", "last_call", "after 24h"),
            ("last_call", "clicked", "clicked"),
            ("last_call", "expired", "at deadline"),
            ("clicked", "started", "started"),
            ("clicked", "reminder", "after 12h"),
            ("clicked", "expired", "at deadline"),
            ("started", "nudge", "before deadline 12h"),
            ("started", "expired", "at deadline"),
            ("nudge", "expired", "at deadline"),
        ];
        for (from, to, label) in transitions {
            let line = format!("  \"{from}\" -> \"{to}\" [label=\"{label}\"];\n");
            assert!(dot.contains(&line), "missing {line}");
            let line = format!("  s_{from} -->|\"{label}\"| s_{to}\n");
            assert!(mermaid.contains(&line), "missing {line}");
        }
        assert_eq!(dot.matches(" -> ").count(), transitions.len() + 1);
        assert!(dot.contains("\"(start)\" -> \"invite\" [label=\"enroll on applied where role == \\\"Warehouse Associate\\\" and source != \\\"referral\\\"\"];"));
        assert!(dot.contains(
            "\"expired\" [shape=doublecircle, label=\"expired\\nsend expired via email\"];"
        ));
        assert!(mermaid.contains("  s_expired([\"expired<br/>send expired via email\"])\n"));
        assert!(dot.contains("label=\"goal: completed\\lexits: opted_out, bounced\\l(from every non-final state)\\l\""));
    }
}
