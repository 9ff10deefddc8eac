//! `{placeholders}` in a rule's `fix`: the one scanner that both validation and filling use, and
//! the one list of standard placeholders, so that what validation accepts is exactly what the
//! engine fills in.

use strum::{EnumString, IntoStaticStr, VariantArray};

/// The placeholders `fix` may use besides the pattern's own named groups. Filling matches on
/// this enum exhaustively, so a placeholder cannot be listed here and then be left unfilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Placeholder {
    /// The ARN of the role to fix.
    RoleArn,
    /// Its name.
    RoleName,
    /// The resource the denial names (or the one read off the task definition).
    Resource,
    /// The first IAM action of the fix.
    Action,
    /// The principal the message names.
    Principal,
    /// The task's region.
    Region,
    /// The task's account.
    Account,
    /// The task ARN.
    TaskArn,
    /// The cluster name.
    Cluster,
    /// The first awslogs group of the task definition.
    LogGroup,
    /// The first container image.
    Image,
    /// The account the ECR image lives in.
    ImageAccount,
    /// The API operation the message names.
    Operation,
    /// The SDK service name the message names.
    Service,
    /// Every IAM action of the fix, comma-separated.
    Permissions,
    /// The first secret the task definition references (`secrets`, `secretOptions` or
    /// `repositoryCredentials`).
    Secret,
    /// The container the evidence came from.
    Container,
}

impl Placeholder {
    /// The name as written in a fix (`role_arn`).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The placeholder of this name, if it is a standard one.
    pub fn parse(name: &str) -> Option<Placeholder> {
        name.parse().ok()
    }
}

/// The `{name}` placeholders of a fix text, in order (validation checks each one).
pub fn placeholders(fix: &str) -> Vec<String> {
    let mut names = Vec::new();
    expand_placeholders(fix, |name| {
        names.push(name.to_string());
        String::new()
    });
    names
}

/// Replaces every `{name}` (ASCII letters, digits, `_`) with `value(name)`. `{{` and `}}` are
/// literal braces, and any other brace is kept as written. The one scanner both validation and
/// the engine use, so what is checked is exactly what gets filled in.
pub fn expand_placeholders(template: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let (brace, after) = (&rest[i..i + 1], &rest[i + 1..]);
        if let Some(stripped) = after.strip_prefix(brace) {
            out.push_str(brace);
            rest = stripped;
            continue;
        }
        if brace == "{" {
            if let Some(j) = after.find('}') {
                let name = &after[..j];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.push_str(&value(name));
                    rest = &after[j + 1..];
                    continue;
                }
            }
        }
        out.push_str(brace);
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_filled_by_one_scanner() {
        let t = "Allow {action} on `{resource}`; JSON {{\"a\": 1}}; not {a b}, but {{x}} and {x}";
        assert_eq!(placeholders(t), ["action", "resource", "x"]);
        let filled = expand_placeholders(t, |n| n.to_uppercase());
        assert_eq!(
            filled,
            "Allow ACTION on `RESOURCE`; JSON {\"a\": 1}; not {a b}, but {x} and X"
        );
    }

    #[test]
    fn every_standard_placeholder_round_trips_by_name() {
        for p in Placeholder::VARIANTS {
            assert_eq!(Placeholder::parse(p.name()), Some(*p));
        }
        assert_eq!(Placeholder::parse("secret"), Some(Placeholder::Secret));
        assert_eq!(Placeholder::parse("nope"), None);
    }
}
