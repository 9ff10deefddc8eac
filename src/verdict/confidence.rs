//! How sure the verdict is, and what would settle it. `high`: a specific signature matched and,
//! for a denial, the message names the denied role (or the rule says whose work it is) and the
//! action. `medium`: a specific signature whose role was decided by the task's phase, or whose
//! action was inferred from the operation; also a message cut short. `low`: only a generic rule
//! (the reasoning floor, a bare exit code) or nothing matched. A verdict below `high` says which
//! evidence would settle it.

use serde::Serialize;
use strum::IntoStaticStr;

use super::{Finding, Phase};
use crate::rules::Category;

/// The confidence of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    /// Kebab-case name, as in JSON.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// How a finding's principal was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Basis {
    /// The message names the denied role, and it is one of the task's (or an instance session).
    Named,
    /// The rule says whose work this is (or the failure is not IAM).
    #[default]
    Rule,
    /// Decided by the task's phase.
    Phase,
}

/// What the evidence had to work with.
pub(super) struct Context {
    pub(super) phase: Phase,
    /// The message the verdict rests on looks cut short.
    pub(super) truncated: bool,
    /// Log lines were read.
    pub(super) logs_read: bool,
    /// The task definition is known.
    pub(super) task_definition: bool,
}

/// The confidence of the top finding (none: inconclusive) and its one-line reason.
pub(super) fn of(top: Option<&Finding>, cx: &Context) -> (Confidence, String) {
    let Some(top) = top else {
        let settle = if cx.logs_read {
            "add a rule for this failure, or run `ecsdoctor explain` on the container's own error"
        } else {
            "read the containers' logs: run live, or add logs/CONTAINER.json to the bundle"
        };
        return (
            Confidence::Low,
            format!("nothing in the evidence matched a known signature; to settle it: {settle}"),
        );
    };
    let iam = top.category == Category::Iam;
    let mut level = Confidence::High;
    let mut why: Vec<String> = Vec::new();
    let mut settle: Vec<&str> = Vec::new();
    if top.rank.generic {
        level = Confidence::Low;
        if iam {
            why.push("only the general denial vocabulary matched, no signature that names the call".into());
            settle.push("find the denied call in CloudTrail (errorCode AccessDenied) or the application's log");
        } else {
            why.push("only a generic signature matched: it restates how the task ended".into());
            if !cx.logs_read && cx.phase != Phase::Startup {
                settle.push("read the containers' logs");
            } else {
                settle.push("read the container's last log lines for the error it printed");
            }
        }
    }
    if iam {
        match top.basis {
            Basis::Named => why.push("the message names the denied role".into()),
            Basis::Rule => why.push("the signature says whose work this is".into()),
            Basis::Phase => {
                level = level.min(Confidence::Medium);
                why.push(format!(
                    "the role was decided by the task's {} phase: the message names none of the task's roles",
                    cx.phase.name()
                ));
                if !cx.task_definition {
                    settle.push("add the task definition (describe-task-definition.json) so the roles are known");
                }
            }
        }
        if top.action_inferred {
            level = level.min(Confidence::Medium);
            why.push(format!(
                "the action was inferred from the operation {}, the message names none",
                top.operation.as_deref().unwrap_or("it names")
            ));
            settle.push("find the denial in CloudTrail (errorCode AccessDenied) for the exact action");
        } else if top.denied_action.is_some() {
            why.push("it names the denied action".into());
        }
        if level < Confidence::High {
            settle.push("evaluate the role's policies for the action");
        }
    } else if !top.rank.generic {
        why.push("a specific signature matched".into());
    }
    if cx.truncated {
        level = level.min(Confidence::Medium);
        why.push("the message looks cut short, so it was read from its prefix and the phase".into());
        settle.push("read the full text with `aws ecs describe-tasks`");
    }
    let mut reason = why.join("; ");
    if !settle.is_empty() {
        settle.dedup();
        reason.push_str("; to settle it: ");
        reason.push_str(&settle.join(", "));
    }
    (level, reason)
}

/// Does a message look cut short? Consoles and deploy tools cut stop reasons at about 255
/// characters, often adding `...`; a text cut inside a word at that length counts too.
pub(super) fn looks_truncated(text: &str) -> bool {
    let t = text.trim_end();
    let chars = t.chars().count();
    t.ends_with("...")
        || t.ends_with('\u{2026}')
        || ((250..=256).contains(&chars) && t.ends_with(char::is_alphanumeric))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_messages_are_recognised() {
        assert!(looks_truncated(
            "ResourceInitializationError: ... AccessDeniedException: User: ..."
        ));
        assert!(looks_truncated(
            "failed to fetch secret arn:aws:secretsmanager:eu-west-2:7883\u{2026}"
        ));
        assert!(looks_truncated(&"x".repeat(255)));
        assert!(!looks_truncated("Essential container in task exited"));
        assert!(!looks_truncated(&format!("{}.", "x".repeat(254))));
    }
}
