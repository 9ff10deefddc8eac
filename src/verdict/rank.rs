//! Ranking: the order of findings is total and deterministic (snapshots depend on it). Findings
//! whose phase agrees with the task's come first, then the more specific rule (priority), then the
//! field (stop reason > container reason > logs), then IAM before not-IAM, then rule-file order,
//! then evidence order. The findings that rank lower but point elsewhere are listed as "also".

use super::{Finding, Phase};
use crate::rules::Category;

/// Sorts findings best first.
pub(super) fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let (ka, kb) = (&a.rank, &b.rank);
        kb.phase_agrees
            .cmp(&ka.phase_agrees)
            .then(kb.priority.cmp(&ka.priority))
            .then(ka.field.cmp(&kb.field))
            .then((b.category == Category::Iam).cmp(&(a.category == Category::Iam)))
            .then(ka.rule_index.cmp(&kb.rule_index))
            .then(ka.order.cmp(&kb.order))
    });
}

/// The lower-ranked findings worth a line next to the verdict: a denial pointing at another
/// principal, or a specific non-IAM signal next to an IAM verdict (a generic one, such as
/// "essential container exited", is not), each with why it ranked lower. At most five.
pub(super) fn also(top: &Finding, all: &[Finding], phase: Phase) -> Vec<String> {
    let mut also = Vec::new();
    for f in all.iter().skip(1) {
        let iam_elsewhere = f.category == Category::Iam && f.culprit != top.culprit;
        let specific_non_iam = top.category == Category::Iam && f.category != Category::Iam && !f.rank.generic;
        if iam_elsewhere || specific_non_iam {
            let why = if !f.rank.phase_agrees && top.rank.phase_agrees {
                format!("its signature is not a {} one", phase.name())
            } else if f.rank.priority < top.rank.priority {
                format!(
                    "its rule is less specific (priority {} < {})",
                    f.rank.priority, top.rank.priority
                )
            } else {
                "the stop reason outranks container reasons and logs".to_string()
            };
            also.push(format!(
                "{} ({}, from {}) points at {}, ranked lower because {why}",
                f.rule_id,
                f.category.name(),
                f.source,
                f.culprit.describe_in(f.category)
            ));
        }
        if also.len() >= 5 {
            break;
        }
    }
    also
}
