//! The task's phase: did it fail while starting (the ECS agent's work: image pull, secrets,
//! logging) or while running (the application's own calls)? Each signal votes with the weight the
//! knowledge tables give it (`[phase]` in `rules/ecs.toml`), and every signal is phrased for a
//! person so the output can show its work.

use std::collections::BTreeSet;

use super::Phase;
use crate::evidence::{Evidence, Field, Text};
use crate::rules::engine::Hit;
use crate::rules::knowledge::PhaseWeights;
use crate::rules::{Rule, RulePhase};

/// The phase of a task: its own fields plus the phase of rules that matched its stop and
/// container reasons.
pub(super) fn of_task(
    ev: &Evidence,
    texts: &[Text<'_>],
    hits: &[(usize, Hit)],
    rules: &[Rule],
    weights: &PhaseWeights,
) -> (Phase, Vec<String>) {
    let mut reason_hits = Vec::new();
    let mut seen = BTreeSet::new();
    for (ti, h) in hits {
        let t = &texts[*ti];
        let r = &rules[h.rule];
        let is_reason = matches!(t.field, Field::StoppedReason | Field::ContainerReason);
        if is_reason && r.phase != RulePhase::Any && seen.insert((r.phase, t.field)) {
            reason_hits.push((r.phase, format!("{} {}", t.field.name(), r.id)));
        }
    }
    // A reason whose startup rule did not match (cut short, a new tail) still says "startup".
    if !seen.iter().any(|(p, _)| *p == RulePhase::Startup) {
        for t in texts
            .iter()
            .filter(|t| matches!(t.field, Field::StoppedReason | Field::ContainerReason))
        {
            if let Some(word) = weights.startup_word(&t.text) {
                reason_hits.push((RulePhase::Startup, format!("{} \"{word}\"", t.field.name())));
                break;
            }
        }
    }
    decide_phase(ev, &reason_hits, weights)
}

/// The phase of a paste, which has no task fields: the most specific rule that proves a phase,
/// else a startup word in the paste.
pub(super) fn of_paste(
    texts: &[Text<'_>],
    hits: &[(usize, Hit)],
    rules: &[Rule],
    weights: &PhaseWeights,
) -> (Phase, Vec<String>) {
    let best = hits
        .iter()
        .map(|(_, h)| &rules[h.rule])
        .filter(|r| r.phase != RulePhase::Any)
        .max_by_key(|r| r.priority);
    if let Some(r) = best {
        return (
            of_rule(r.phase).unwrap_or(Phase::Unknown),
            vec![format!("{} is a {} signature", r.id, r.phase.name())],
        );
    }
    match texts.iter().find_map(|t| weights.startup_word(&t.text)) {
        Some(word) => (Phase::Startup, vec![format!("\"{word}\" is a startup error")]),
        None => (Phase::Unknown, Vec::new()),
    }
}

/// The phase a rule's signature proves, if it proves one.
pub(super) fn of_rule(p: RulePhase) -> Option<Phase> {
    match p {
        RulePhase::Startup => Some(Phase::Startup),
        RulePhase::Runtime => Some(Phase::Runtime),
        RulePhase::Any => None,
    }
}

/// Decides the phase from the task's own fields and the startup/runtime rules that matched its
/// reasons (`reason_hits`: the phase and a description). Returns the phase and the signals.
pub fn decide_phase(ev: &Evidence, reason_hits: &[(RulePhase, String)], w: &PhaseWeights) -> (Phase, Vec<String>) {
    let t = &ev.task;
    let (mut startup, mut runtime) = (0u32, 0u32);
    let mut signals = Vec::new();
    let mut vote = |phase: RulePhase, weight: u32| match phase {
        RulePhase::Startup => startup += weight,
        RulePhase::Runtime => runtime += weight,
        RulePhase::Any => {}
    };
    if let Some(code) = t.stop_code.as_deref() {
        if let Some(v) = w.stop_codes.get(code) {
            vote(v.phase, v.weight);
            signals.push(format!("stopCode={code}"));
        }
    }
    for (phase, what) in reason_hits {
        match phase {
            RulePhase::Startup => {
                vote(*phase, w.startup_rule);
                signals.push(format!("{what} is a startup error"));
            }
            RulePhase::Runtime => {
                vote(*phase, w.runtime_rule);
                signals.push(format!("{what} happens at runtime"));
            }
            RulePhase::Any => {}
        }
    }
    if t.pull_started_at.is_some() && t.pull_stopped_at.is_none() && t.started_at.is_none() {
        vote(RulePhase::Startup, w.pull_unfinished);
        signals.push("the image pull never finished (pullStartedAt without pullStoppedAt)".to_string());
    }
    match (t.started_at, t.stopped_at) {
        (Some(s), Some(e)) => {
            vote(RulePhase::Runtime, w.started);
            signals.push(format!(
                "task started and ran {} before it stopped",
                human_duration(e.0 - s.0)
            ));
        }
        (Some(_), None) => {
            vote(RulePhase::Runtime, w.started);
            signals.push("task has startedAt".to_string());
        }
        (None, _) if t.created_at.is_some() => {
            vote(RulePhase::Startup, w.never_started);
            signals.push("task never started (no startedAt)".to_string());
        }
        _ => {}
    }
    let exited: Vec<String> = t
        .containers
        .iter()
        .filter_map(|c| c.exit_code.map(|code| format!("{} exitCode={code}", c.name)))
        .collect();
    if !exited.is_empty() {
        vote(RulePhase::Runtime, w.container_exited);
        signals.push(format!("a container ran and exited ({})", exited.join(", ")));
    }
    let phase = match startup.cmp(&runtime) {
        std::cmp::Ordering::Greater => Phase::Startup,
        std::cmp::Ordering::Less => Phase::Runtime,
        std::cmp::Ordering::Equal => Phase::Unknown,
    };
    (phase, signals)
}

/// `1h2m`, `3m5s`, `42s`.
pub(super) fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
