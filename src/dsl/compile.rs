//! Checked syntax tree → [`Machine`]. Names become indexes, durations
//! seconds, zones `Tz`, filters the engine's own [`Filter`]. Only a
//! [`CheckedCampaign`] compiles, so the checker has already reported every
//! problem a recruiter can make; what is left here is a defensive error
//! for a mistake of the checker itself.

use std::fmt;

use chrono_tz::Tz;

use super::ast::{self, CompareOp, ExprKind, SettingKind, StatementKind, TimezoneSpec};
use super::check::CheckedCampaign;
use super::fmt::format_expr;
use crate::engine::filter::{fold, Condition, Field, Filter};
use crate::engine::machine::{
    After, Channel, DeadlineRule, DeadlineTransition, EnrollRule, Experiment, Machine, OnRule,
    Send, Split, State, TemplateName, TemplatePart, ZoneRule,
};
use crate::engine::window::{RateLimit, Window};

/// A campaign that cannot be compiled: the checker reports these first, so
/// seeing one means `check` was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub campaign: String,
    pub message: String,
    pub span: ast::Span,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "campaign `{}`: {}", self.campaign, self.message)
    }
}

impl std::error::Error for CompileError {}

/// Compiles one campaign that the checker passed.
pub fn compile(checked: CheckedCampaign<'_>) -> Result<Machine, CompileError> {
    let campaign = checked.ast();
    let fail = |message: String, span: ast::Span| CompileError {
        campaign: campaign.name.name.clone(),
        message,
        span,
    };
    let mut machine = Machine {
        name: campaign.name.name.clone(),
        title: None,
        enroll: None,
        channels: Vec::new(),
        zone: ZoneRule {
            candidate: false,
            fallback: Tz::UTC,
        },
        window: None,
        rate_limits: Vec::new(),
        total_limit: None,
        deadline: None,
        goal: None,
        exits: Vec::new(),
        link: None,
        experiments: Vec::new(),
        states: Vec::new(),
    };
    let zone = |s: &ast::Str| {
        s.value
            .parse::<Tz>()
            .map_err(|_| fail(format!("unknown time zone `{}`", s.value), s.span))
    };
    let channel = |id: &ast::Ident| {
        Channel::from_name(&id.name)
            .ok_or_else(|| fail(format!("unknown channel `{}`", id.name), id.span))
    };
    for setting in &campaign.settings {
        match &setting.kind {
            SettingKind::Title(s) => machine.title = Some(s.value.clone()),
            SettingKind::Enroll { event, filter } => {
                machine.enroll = Some(EnrollRule {
                    event: event.name.clone(),
                    filter: filter.as_ref().map(lower_filter),
                });
            }
            SettingKind::Channels(list) => {
                machine.channels = list.iter().map(channel).collect::<Result<_, _>>()?;
            }
            SettingKind::Timezone(TimezoneSpec::Fixed(s)) => {
                machine.zone = ZoneRule {
                    candidate: false,
                    fallback: zone(s)?,
                };
            }
            SettingKind::Timezone(TimezoneSpec::Candidate { fallback }) => {
                machine.zone = ZoneRule {
                    candidate: true,
                    fallback: fallback.as_ref().map(zone).transpose()?.unwrap_or(Tz::UTC),
                };
            }
            SettingKind::Window(w) => machine.window = Some(window(w)),
            SettingKind::Limit(ast::Limit::Per { count, period }) => {
                machine.rate_limits.push(RateLimit {
                    count: clamp_u32(count.value),
                    period_secs: secs(period),
                });
            }
            SettingKind::Limit(ast::Limit::Total { count }) => {
                machine.total_limit = Some(clamp_u32(count.value));
            }
            SettingKind::Deadline {
                duration,
                after_enrollment,
            } => {
                machine.deadline = Some(DeadlineRule {
                    secs: secs(duration),
                    from_enrollment: *after_enrollment,
                });
            }
            SettingKind::Goal(g) => machine.goal = Some(g.name.clone()),
            SettingKind::Exit(list) => {
                machine.exits.extend(list.iter().map(|e| e.name.clone()));
            }
            SettingKind::Link(s) => machine.link = Some(s.value.clone()),
        }
    }
    machine.experiments = campaign
        .experiments
        .iter()
        .map(|e| Experiment {
            name: e.name.name.clone(),
            variants: e
                .variants
                .iter()
                .map(|v| (v.name.name.clone(), v.weight.value))
                .collect(),
            until_decided: e.until_decided.is_some(),
        })
        .collect();

    let state_names: Vec<&str> = campaign
        .states
        .iter()
        .map(|s| s.name.name.as_str())
        .collect();
    let target = |id: &ast::Ident| {
        state_names
            .iter()
            .position(|n| *n == id.name)
            .ok_or_else(|| fail(format!("unknown state `{}`", id.name), id.span))
    };
    for st in &campaign.states {
        let mut state = State {
            name: st.name.name.clone(),
            window: None,
            sends: Vec::new(),
            ons: Vec::new(),
            deadline_rules: Vec::new(),
            afters: Vec::new(),
            split: None,
            is_final: false,
        };
        for statement in &st.statements {
            match &statement.kind {
                StatementKind::Send { template, via } => state.sends.push(Send {
                    template: template_name(&machine, template)
                        .map_err(|m| fail(m, template.span))?,
                    via: via.as_ref().map(channel).transpose()?,
                }),
                StatementKind::On {
                    event,
                    filter,
                    target: t,
                } => state.ons.push(OnRule {
                    event: event.name.clone(),
                    filter: filter.as_ref().map(lower_filter),
                    target: target(t)?,
                }),
                StatementKind::After {
                    duration,
                    target: t,
                } => state.afters.push(After {
                    secs: secs(duration),
                    target: target(t)?,
                }),
                StatementKind::AtDeadline { target: t } => {
                    state.deadline_rules.push(DeadlineTransition {
                        before_secs: None,
                        target: target(t)?,
                    });
                }
                StatementKind::BeforeDeadline {
                    duration,
                    target: t,
                } => {
                    state.deadline_rules.push(DeadlineTransition {
                        before_secs: Some(secs(duration)),
                        target: target(t)?,
                    });
                }
                StatementKind::Split { experiment, arms } => {
                    let index = machine.experiment_index(&experiment.name).ok_or_else(|| {
                        fail(
                            format!("unknown experiment `{}`", experiment.name),
                            experiment.span,
                        )
                    })?;
                    let mut targets = Vec::new();
                    for (variant, _) in &machine.experiments[index].variants {
                        let arm = arms
                            .iter()
                            .find(|a| a.variant.name == *variant)
                            .ok_or_else(|| {
                                fail(format!("split misses variant `{variant}`"), statement.span)
                            })?;
                        targets.push(target(&arm.target)?);
                    }
                    state.split = Some(Split {
                        experiment: index,
                        targets,
                    });
                }
                StatementKind::Window(w) => state.window = Some(window(w)),
                StatementKind::End => state.is_final = true,
            }
        }
        machine.states.push(state);
    }
    if machine.states.is_empty() {
        return Err(fail(
            "a campaign needs at least one state".into(),
            campaign.name.span,
        ));
    }
    Ok(machine)
}

/// A `where` filter for the engine, keeping its text for display.
pub fn lower_filter(expr: &ast::Expr) -> Filter {
    Filter::new(format_expr(expr), condition(expr))
}

/// Groups disappear, chains of `and`/`or` flatten, `!=` becomes `not ==`,
/// paths become fields and values are case-folded.
fn condition(expr: &ast::Expr) -> Condition {
    match &expr.kind {
        ExprKind::Or(..) => Condition::Any(chain(expr, is_or)),
        ExprKind::And(..) => Condition::All(chain(expr, is_and)),
        ExprKind::Not(inner) => Condition::Not(Box::new(condition(inner))),
        ExprKind::Group(inner) => condition(inner),
        ExprKind::Compare { path, op, value } => {
            let equals = Condition::Equals {
                field: field(path),
                value: fold(&value.text()),
            };
            match op {
                CompareOp::Eq => equals,
                CompareOp::Ne => Condition::Not(Box::new(equals)),
            }
        }
        ExprKind::In { path, values } => Condition::OneOf {
            field: field(path),
            values: values.iter().map(|v| fold(&v.text())).collect(),
        },
        ExprKind::Matches { path, pattern } => Condition::Matches {
            field: field(path),
            pattern: fold(&pattern.value).chars().collect(),
        },
    }
}

fn is_or(kind: &ExprKind) -> Option<(&ast::Expr, &ast::Expr)> {
    match kind {
        ExprKind::Or(a, b) => Some((a, b)),
        _ => None,
    }
}

fn is_and(kind: &ExprKind) -> Option<(&ast::Expr, &ast::Expr)> {
    match kind {
        ExprKind::And(a, b) => Some((a, b)),
        _ => None,
    }
}

/// The operands of a run of one binary operator, in source order.
fn chain(
    expr: &ast::Expr,
    split: fn(&ExprKind) -> Option<(&ast::Expr, &ast::Expr)>,
) -> Vec<Condition> {
    match split(&expr.kind) {
        Some((a, b)) => {
            let mut out = chain(a, split);
            out.extend(chain(b, split));
            out
        }
        None => vec![condition(expr)],
    }
}

fn field(path: &ast::Path) -> Field {
    let names: Vec<&str> = path.segments.iter().map(|s| s.name.as_str()).collect();
    Field::from_path(&names)
}

/// Splits `invite-{copy}` into text and experiment placeholders.
pub fn template_name(machine: &Machine, template: &ast::Str) -> Result<TemplateName, String> {
    let mut parts = Vec::new();
    let mut rest = template.value.as_str();
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_string()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(format!(
                "unclosed `{{` in template name `{}`",
                template.value
            ));
        };
        let name = &rest[open + 1..open + close];
        let index = machine
            .experiment_index(name)
            .ok_or_else(|| format!("unknown experiment `{name}` in template name"))?;
        parts.push(TemplatePart::Variant(index));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(TemplateName { parts })
}

/// The days a window opens on; `fri-mon` wraps over the weekend.
pub fn window(w: &ast::Window) -> Window {
    let mut days = [false; 7];
    for range in &w.days {
        let from = range.from.index();
        let to = range.to.map_or(from, ast::Day::index);
        let mut day = from;
        loop {
            days[day] = true;
            if day == to {
                break;
            }
            day = (day + 1) % 7;
        }
    }
    let days_text: Vec<String> = w
        .days
        .iter()
        .map(|r| match r.to {
            Some(to) => format!("{}-{}", r.from.name(), to.name()),
            None => r.from.name().to_string(),
        })
        .collect();
    Window {
        days,
        open: w.open.minutes(),
        close: w.close.minutes(),
        text: format!("{} {}-{}", days_text.join(", "), w.open, w.close),
    }
}

/// Durations are capped at a century, far beyond any campaign, so instant
/// arithmetic can never overflow.
const MAX_SECS: u64 = 100 * 365 * 86_400;

fn secs(d: &ast::Duration) -> i64 {
    i64::try_from(d.seconds().min(MAX_SECS)).unwrap_or(0)
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
