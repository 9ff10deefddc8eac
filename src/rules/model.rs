//! The rule model after validation: the enums a rule file names (who is at fault, the failure
//! family, the phase a signature proves, the policy layer that denied) and [`Rule`] itself. Every
//! name a person sees is the kebab-case name of the JSON contract: serde and strum derive both
//! from the same `kebab-case` rule, so `rules show`, rule files and JSON always agree.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray};

use crate::evidence::Field;

/// Derives the traits every user-facing enum of the contract shares.
macro_rules! kebab_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, IntoStaticStr,
            EnumString, VariantArray,
        )]
        #[serde(rename_all = "kebab-case")]
        #[strum(serialize_all = "kebab-case")]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            /// The kebab-case name, as in rule files and JSON.
            pub fn name(self) -> &'static str {
                self.into()
            }
        }
    };
}

kebab_enum! {
    /// Who a rule says must act. `ByPhase` leaves it to the engine (named principal, then phase).
    pub enum RuleCulprit {
        ExecutionRole,
        TaskRole,
        InstanceRole,
        NotIam,
        ByPhase,
    }
}

kebab_enum! {
    /// The principal that needs the fix, in the verdict.
    pub enum Culprit {
        ExecutionRole,
        TaskRole,
        InstanceRole,
        NotIam,
        Unknown,
    }
}

impl Culprit {
    /// A phrase for people that knows the caller: an IAM denial that no role of the task can fix
    /// (culprit `not-iam`, category `iam`) is the caller's that runs or deploys the task.
    pub fn describe_in(self, category: Category) -> &'static str {
        match (self, category) {
            (Culprit::NotIam, Category::Iam) => "the caller that runs or deploys the task",
            _ => self.describe(),
        }
    }

    /// A phrase for people ("the task execution role").
    pub fn describe(self) -> &'static str {
        match self {
            Culprit::ExecutionRole => "the task execution role",
            Culprit::TaskRole => "the task role",
            Culprit::InstanceRole => "the EC2 container instance role",
            Culprit::NotIam => "nobody in IAM",
            Culprit::Unknown => "an unknown principal",
        }
    }
}

kebab_enum! {
    /// The failure family.
    pub enum Category {
        Iam,
        Network,
        Image,
        Config,
        App,
        Capacity,
        Platform,
        User,
        Unknown,
    }
}

kebab_enum! {
    /// The lifecycle phase a rule's signature proves.
    #[derive(Default)]
    pub enum RulePhase {
        Startup,
        Runtime,
        #[default]
        Any,
    }
}

kebab_enum! {
    /// The policy layer that denied a request, and so who must act.
    pub enum PolicyLayer {
        Identity,
        Resource,
        KmsKey,
        Scp,
        Rcp,
        PermissionsBoundary,
        Session,
        VpcEndpoint,
        Trust,
        PassRole,
    }
}

impl PolicyLayer {
    /// Who must act when this layer denied.
    pub fn who_must_act(self) -> &'static str {
        match self {
            PolicyLayer::Identity => "the role's owner: add an Allow to the role's identity policy",
            PolicyLayer::Resource => {
                "the owner of the resource: its resource-based policy (bucket, repository, secret or queue policy) must allow the role; an Allow on the role alone will not help"
            }
            PolicyLayer::KmsKey => {
                "the KMS key's administrators: the key policy must allow the role (and the role needs kms:Decrypt)"
            }
            PolicyLayer::Scp => {
                "your AWS Organizations administrators: a service control policy denies it; adding an Allow to the role will not help"
            }
            PolicyLayer::Rcp => {
                "your AWS Organizations administrators: a resource control policy denies it; adding an Allow to the role will not help"
            }
            PolicyLayer::PermissionsBoundary => {
                "whoever owns the role's permissions boundary (often a platform team): the boundary must allow the action as well"
            }
            PolicyLayer::Session => {
                "the code that assumes the role with a session policy: the session policy must allow the action"
            }
            PolicyLayer::VpcEndpoint => "the owner of the VPC endpoint: its endpoint policy must allow the request",
            PolicyLayer::Trust => {
                "the role's owner: its trust policy must allow the principal to assume it (ecs-tasks.amazonaws.com for task and execution roles)"
            }
            PolicyLayer::PassRole => {
                "the deployer: the identity that calls RunTask / CreateService / UpdateService needs iam:PassRole on the role"
            }
        }
    }
}

kebab_enum! {
    /// Whether the task definition has a role of some kind (a `when` condition).
    pub enum Presence {
        Present,
        Absent,
    }
}

kebab_enum! {
    /// The task's launch type (a `when` condition).
    pub enum LaunchType {
        Ec2,
        Fargate,
        External,
    }
}

kebab_enum! {
    /// Where the task's ECR image lives, relative to the task's own account (a `when` condition).
    pub enum AccountRelation {
        Same,
        Other,
    }
}

/// Conditions on the task a rule's outcome depends on: the rule matches only when every condition
/// given holds. A condition on something the evidence does not show (no task definition, no ECR
/// image) does not hold, so a conditional rule never fires on a guess.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// The task definition has (or has no) `taskRoleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role: Option<Presence>,
    /// The task definition has (or has no) `executionRoleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role: Option<Presence>,
    /// The task's launch type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<LaunchType>,
    /// The task's ECR image is in the task's own account or another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_account: Option<AccountRelation>,
}

impl When {
    /// No condition at all.
    pub fn is_empty(&self) -> bool {
        *self == When::default()
    }

    /// Whether every condition holds for this task.
    pub fn holds(&self, task: &TaskFacts) -> bool {
        let role = |want: Option<Presence>, have: Option<bool>| match (want, have) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(w), Some(h)) => (w == Presence::Present) == h,
        };
        role(self.task_role, task.has_task_role)
            && role(self.execution_role, task.has_execution_role)
            && self.launch_type.is_none_or(|l| task.launch_type == Some(l))
            && self.image_account.is_none_or(|a| task.image_account == Some(a))
    }
}

/// What `when` conditions can see of a task; `None` where the evidence does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskFacts {
    pub has_task_role: Option<bool>,
    pub has_execution_role: Option<bool>,
    pub launch_type: Option<LaunchType>,
    pub image_account: Option<AccountRelation>,
}

/// Examples a rule carries: the self-test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    #[serde(default, rename = "match")]
    pub matches: Vec<String>,
    #[serde(default)]
    pub no_match: Vec<String>,
    #[serde(default)]
    pub todo_match: Vec<String>,
}

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The file (for built-ins, its path in this repository).
    pub path: String,
    /// 1-based line of the rule's `id`.
    pub line: usize,
    /// Compiled into the binary.
    pub builtin: bool,
}

/// A validated rule.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub look_in: Vec<Field>,
    pub pattern: String,
    pub culprit: RuleCulprit,
    pub category: Category,
    pub phase: RulePhase,
    pub priority: u8,
    /// The rule only restates how the task ended (an exit code, "Essential container in task
    /// exited", a bare stop code): the container's logs usually say why.
    pub generic: bool,
    /// Conditions on the task the rule's outcome depends on.
    pub when: When,
    pub permissions: Vec<String>,
    pub policy: Option<PolicyLayer>,
    pub fix: String,
    pub explain: String,
    pub docs: Vec<String>,
    pub sources: Vec<String>,
    pub examples: Examples,
    #[serde(skip)]
    pub origin: Origin,
    /// The literals one of which every match of the pattern contains (see
    /// [`super::literals`]), for the prefilter; `None` when the pattern requires none.
    #[serde(skip)]
    pub(crate) required: Option<Vec<String>>,
    /// The pattern compiled (case-insensitive, size-limited): by validation for user rules, on
    /// first use for built-in rules, whose patterns the test suite compiles.
    #[serde(skip)]
    pub(crate) compiled: OnceLock<Option<regex::Regex>>,
}

impl Rule {
    /// The compiled pattern, compiling it on first use. `None` only for a built-in pattern past
    /// the size limits, which the test suite rules out (`rules_every_pattern_compiles`).
    pub fn regex(&self) -> Option<&regex::Regex> {
        // Compiled under the lock: a second thread asking meanwhile waits for this compilation
        // instead of doing it again.
        self.compiled
            .get_or_init(|| super::compile_pattern(&self.pattern).ok())
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_people_see_is_the_json_name() {
        fn check<T: Serialize + Copy + Into<&'static str> + VariantArray + 'static>() {
            for v in T::VARIANTS {
                let json = serde_json::to_value(v).expect("serializes");
                let name: &'static str = (*v).into();
                assert_eq!(json.as_str(), Some(name));
            }
        }
        check::<RuleCulprit>();
        check::<Culprit>();
        check::<Category>();
        check::<RulePhase>();
        check::<PolicyLayer>();
        check::<Presence>();
        check::<LaunchType>();
        check::<AccountRelation>();
        assert_eq!(PolicyLayer::PermissionsBoundary.name(), "permissions-boundary");
        assert_eq!(Culprit::NotIam.name(), "not-iam");
    }

    #[test]
    fn a_condition_on_what_the_evidence_does_not_show_does_not_hold() {
        let when = When {
            task_role: Some(Presence::Present),
            ..When::default()
        };
        assert!(!when.holds(&TaskFacts::default()));
        assert!(when.holds(&TaskFacts {
            has_task_role: Some(true),
            ..TaskFacts::default()
        }));
        assert!(!when.holds(&TaskFacts {
            has_task_role: Some(false),
            ..TaskFacts::default()
        }));
        assert!(When::default().holds(&TaskFacts::default()));
    }
}
