//! The fix: a rule's `fix` template filled with what the evidence says (every standard
//! placeholder has exactly one source here), and the [`Verdict`] built from the top finding: the
//! one-line summary, who must act, and the policy snippets.

use super::{output, policy, rank, resource, Finding, Options, Phase, Verdict};
use crate::arn::Arn;
use crate::evidence::{role_name, Evidence, Field};
use crate::rules::engine::Hit;
use crate::rules::extract::Facts;
use crate::rules::{expand_placeholders, Category, Culprit, Knowledge, Placeholder, PolicyLayer};

/// What a fix template can be filled with.
pub(super) struct Values<'a> {
    pub(super) ev: &'a Evidence,
    pub(super) hit: &'a Hit,
    pub(super) facts: &'a Facts,
    pub(super) role_arn: Option<&'a str>,
    /// The resource the fix grants (its scope when it has one).
    pub(super) resource: Option<&'a str>,
    pub(super) permissions: &'a [String],
    pub(super) culprit: Culprit,
    pub(super) container: Option<&'a str>,
}

impl Values<'_> {
    /// The value of a standard placeholder, if the evidence has one.
    fn standard(&self, p: Placeholder) -> Option<String> {
        let ev = self.ev;
        let td = ev.task_definition.as_ref();
        let region_account = resource::region_account(ev);
        match p {
            Placeholder::RoleArn => self.role_arn.map(str::to_string),
            Placeholder::RoleName => self.role_arn.map(|a| role_name(a).to_string()),
            Placeholder::Resource => self.resource.map(str::to_string),
            Placeholder::Action => self.permissions.first().cloned().or_else(|| self.facts.action.clone()),
            Placeholder::Permissions => Some(self.permissions.join(", ")).filter(|s| !s.is_empty()),
            Placeholder::Principal => self.facts.principal.as_ref().map(|p| p.arn.clone()),
            Placeholder::Region => region_account.map(|r| r.0),
            Placeholder::Account => region_account.map(|r| r.1),
            Placeholder::TaskArn => ev.task.task_arn.clone(),
            Placeholder::Cluster => ev
                .task
                .cluster_arn
                .as_deref()
                .map(|c| Arn::parse(c).map_or(c, |a| a.resource_name()).to_string()),
            Placeholder::LogGroup => td.and_then(|t| {
                t.container_definitions
                    .iter()
                    .find_map(|c| c.log_configuration.as_ref()?.options.get("awslogs-group").cloned())
            }),
            Placeholder::Image => ev.images().next().map(str::to_string),
            Placeholder::ImageAccount => resource::image_account(ev),
            Placeholder::Operation => self.facts.operation.clone(),
            Placeholder::Service => self.facts.service.clone(),
            Placeholder::Secret => td.and_then(|t| {
                t.container_definitions.iter().find_map(|c| {
                    c.secrets
                        .iter()
                        .chain(c.log_configuration.iter().flat_map(|l| l.secret_options.iter()))
                        .map(|s| s.value_from.clone())
                        .next()
                        .or_else(|| {
                            c.repository_credentials
                                .as_ref()
                                .map(|r| r.credentials_parameter.clone())
                        })
                })
            }),
            // A task-level text (the stop reason) speaks of the task's only or first container.
            Placeholder::Container => self
                .container
                .map(str::to_string)
                .or_else(|| ev.task.containers.first().map(|c| c.name.clone()))
                .or_else(|| td.and_then(|t| t.container_definitions.first().map(|c| c.name.clone()))),
        }
    }

    /// What a placeholder says when the evidence has no value for it.
    fn missing(&self, name: &str) -> String {
        match Placeholder::parse(name) {
            Some(Placeholder::RoleArn | Placeholder::RoleName) => self.culprit.describe().to_string(),
            Some(Placeholder::Resource) => "the resource named in the error".into(),
            Some(Placeholder::Action | Placeholder::Permissions) => "the action named in the error".into(),
            _ => format!("<{name}>"),
        }
    }
}

/// Fills a fix template: the pattern's named groups first, then the standard placeholders.
pub(super) fn fill(template: &str, v: &Values<'_>, opts: &Options) -> String {
    expand_placeholders(template, |name| {
        let raw = v
            .hit
            .captures
            .get(name)
            .cloned()
            .or_else(|| Placeholder::parse(name).and_then(|p| v.standard(p)))
            .unwrap_or_else(|| v.missing(name));
        // The template is the rule author's; only the values come from messages.
        output::fix_value(&raw, opts)
    })
}

/// The verdict when nothing matched.
pub(super) fn inconclusive() -> Verdict {
    Verdict {
        culprit: Culprit::Unknown,
        category: Category::Unknown,
        role_arn: None,
        permissions: vec![],
        resource: None,
        resource_scope: None,
        scope_note: None,
        policy: None,
        summary: "No known signature matched this task's stop reason, container reasons or logs.".into(),
        confidence: super::Confidence::Low,
        confidence_reason: String::new(),
        action_inferred: false,
        fix: "Read the evidence below; if it shows a failure ecsdoctor should know, add a rule (`ecsdoctor rules show` for the format) or report it.".into(),
        rule_id: None,
        title: None,
        who_must_act: None,
        iam_policy: None,
        terraform: None,
        also: vec![],
        verification: None,
    }
}

/// The verdict of the top finding; `all` are every finding, best first.
pub(super) fn verdict_from(ev: &Evidence, top: &Finding, all: &[Finding], phase: Phase, k: &Knowledge) -> Verdict {
    let also = rank::also(top, all, phase);
    let iam = top.category == Category::Iam;
    let title = top.title.trim_end_matches('.');
    let role_label = top
        .role_arn
        .as_deref()
        .map(|a| format!(" {}", role_name(a)))
        .unwrap_or_default();
    // A credential-chain failure ("Unable to locate credentials") on a task whose definition has
    // no role of that kind: the fix is to add the role, not a permission.
    let missing_role = iam
        && ev.task_definition.is_some()
        && top.role_arn.is_none()
        && top.denied_action.is_none()
        && matches!(top.culprit, Culprit::TaskRole | Culprit::ExecutionRole);
    let denial = top.denied_action.is_some() || !top.permissions.is_empty();
    let policy = if iam && denial && !missing_role {
        Some(top.policy.unwrap_or(PolicyLayer::Identity))
    } else {
        None
    };
    // The operation the message names, when the title does not already say it.
    let calling = top
        .operation
        .as_deref()
        .filter(|op| !title.contains(op))
        .map(|op| format!(" ({op})"))
        .unwrap_or_default();
    let summary = if missing_role {
        let which = if top.culprit == Culprit::TaskRole {
            "task role (taskRoleArn)"
        } else {
            "execution role (executionRoleArn)"
        };
        format!("The task definition has no {which}, so there were no credentials: {title}{calling}.")
    } else if iam {
        let actions = match (&top.denied_action, top.permissions.is_empty()) {
            (Some(a), _) => a.clone(),
            (None, false) => top.permissions.join(", "),
            (None, true) => "a permission".to_string(),
        };
        let on = top.resource.as_deref().map(|r| format!(" on {r}")).unwrap_or_default();
        let layer = policy
            .filter(|p| *p != PolicyLayer::Identity)
            .map(|p| format!(" (denied by the {} policy layer)", p.name()))
            .unwrap_or_default();
        let who = match top.culprit {
            Culprit::Unknown => "An IAM principal outside the task's roles".to_string(),
            // A denial no role of the task can fix: the caller that runs or deploys the task.
            Culprit::NotIam => match &top.principal {
                Some(p) if top.role_arn.is_none() => format!("The caller {p}, not one of the task's roles,"),
                _ => "The caller, not one of the task's roles,".to_string(),
            },
            c => {
                let d = c.describe();
                d[..1].to_uppercase() + &d[1..]
            }
        };
        format!("{who}{role_label} is denied {actions}{on}{layer}: {title}{calling}.")
    } else {
        // An exit-code finding says which container exited with what.
        let exit = match (top.rank.field, top.source.strip_prefix("exit-code:")) {
            (Some(Field::ExitCode), Some(container)) => {
                format!(" (container {container} exited with code {})", top.evidence)
            }
            _ => String::new(),
        };
        format!("Not an IAM problem ({}): {title}{exit}.", top.category.name())
    };
    let who_must_act = if missing_role {
        Some(format!(
            "the owner of the task definition: add a {} with the permissions the code needs",
            if top.culprit == Culprit::TaskRole {
                "taskRoleArn"
            } else {
                "executionRoleArn"
            }
        ))
    } else if iam {
        Some(policy.unwrap_or(PolicyLayer::Identity).who_must_act().to_string())
    } else {
        None
    };
    let (resource_scope, scope_note) = match &top.scope {
        Some((s, n)) => (Some(s.clone()), Some(n.clone())),
        None => (None, None),
    };
    let (iam_policy, terraform) = if iam && top.culprit != Culprit::NotIam && !top.permissions.is_empty() {
        policy::snippets(top, top.policy.unwrap_or(PolicyLayer::Identity), k)
    } else {
        (None, None)
    };
    Verdict {
        culprit: top.culprit,
        category: top.category,
        role_arn: top.role_arn.clone(),
        permissions: top.permissions.clone(),
        resource: top.resource.clone(),
        resource_scope,
        scope_note,
        policy,
        summary,
        confidence: super::Confidence::Low,
        confidence_reason: String::new(),
        action_inferred: top.action_inferred && iam,
        fix: top.fix.clone(),
        rule_id: Some(top.rule_id.clone()),
        title: Some(top.title.clone()),
        who_must_act,
        iam_policy,
        terraform,
        also,
        verification: None,
    }
}
