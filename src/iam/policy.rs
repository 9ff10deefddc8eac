//! The policy document model and its parser: walks a `serde_json::Value` into [`Policy`] so that every
//! error names the JSON path of the offending element.
//!
//! Grammar followed: IAM JSON policy element reference
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html>): `Version`, `Id`,
//! `Statement` (an object or a list), and per statement `Sid`, `Effect` (case-sensitive: "The `Effect` value is
//! case sensitive", reference_policies_elements_effect.html), `Action`/`NotAction`, `Resource`/`NotResource`,
//! `Principal`/`NotPrincipal` and `Condition`. The pairs are mutually exclusive.

use std::fmt;

use serde_json::{Map, Value};

/// A parsed policy document with the label results use to name it (a policy name or ARN).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Name or ARN used to refer to this policy in evaluation results.
    pub label: String,
    /// The `Version` element, if present (`2012-10-17` or `2008-10-17`).
    pub version: Option<String>,
    /// The `Id` element, if present.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Whether `${...}` policy variables are recognised: only with `"Version": "2012-10-17"`; with no version or
    /// `2008-10-17` they are literal text (reference_policies_elements_version.html).
    pub fn variables_enabled(&self) -> bool {
        self.version.as_deref() == Some("2012-10-17")
    }
}

/// One statement of a policy, with its position so results can point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// 0-based index of the statement in its policy.
    pub index: usize,
    /// The optional `Sid`.
    pub sid: Option<String>,
    /// `Allow` or `Deny`.
    pub effect: Effect,
    /// `Action` (not negated) or `NotAction` (negated).
    pub action: Element<Vec<String>>,
    /// `Resource` or `NotResource`; absent in many resource-based policies.
    pub resource: Option<Element<Vec<String>>>,
    /// `Principal` or `NotPrincipal`; only in resource-based policies.
    pub principal: Option<Element<Principal>>,
    /// The `Condition` block flattened to one clause per operator and key, in document order.
    pub condition: Vec<ConditionClause>,
}

/// The `Effect` of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `"Allow"`.
    Allow,
    /// `"Deny"`.
    Deny,
}

/// A statement element that has a negated twin (`Action`/`NotAction`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Element<T> {
    /// `true` for the `Not...` form.
    pub negated: bool,
    /// The listed values.
    pub value: T,
}

/// The value of a `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// `"*"`: every principal.
    Wildcard,
    /// `{"AWS": ..., "Service": ..., ...}` flattened to one entry per listed value.
    Entries(Vec<PrincipalEntry>),
}

/// One listed principal, e.g. `AWS` = `arn:aws:iam::111122223333:role/app`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalEntry {
    /// The map key the value was listed under.
    pub kind: PrincipalKind,
    /// The listed value (ARN, account id, service name, ...).
    pub value: String,
}

/// The principal types of reference_policies_elements_principal.html.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// `"AWS"`: accounts, users, roles, sessions, or `"*"`.
    Aws,
    /// `"Service"`: AWS service principals.
    Service,
    /// `"Federated"`: identity providers.
    Federated,
    /// `"CanonicalUser"`: S3 canonical user ids.
    CanonicalUser,
}

/// One `operator -> key -> values` entry of a `Condition` block. Values are kept as text (numbers and booleans
/// are rendered as JSON renders them); the operator is interpreted only at evaluation time so an operator this
/// crate does not know makes the statement indeterminate instead of failing the parse.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionClause {
    /// Operator name as written, e.g. `ForAnyValue:StringLikeIfExists`.
    pub operator: String,
    /// Context key as written (matched case-insensitively).
    pub key: String,
    /// The listed values (one or more; several values are ORed).
    pub values: Vec<String>,
}

/// A policy that could not be read or parsed. Displays as one line: `FILE: $.Statement[2].Effect: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// File name or label of the policy text.
    pub source: String,
    /// JSON path of the offending element, e.g. `$.Statement[2].Effect`.
    pub path: String,
    /// What is wrong, already sanitised and short.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.path, self.message)
    }
}

impl std::error::Error for PolicyError {}

/// Makes text safe and short for one-line error messages: the project's terminal scrubbing
/// ([`crate::sanitize::terminal_safe`]), cut at 60 characters with `...`.
pub fn sanitize(text: &str) -> String {
    sanitize_to(text, 60)
}

/// Like [`sanitize`] with a caller-chosen length limit (labels and file names may be long ARNs or paths).
pub fn sanitize_to(text: &str, max_chars: usize) -> String {
    let safe = crate::sanitize::terminal_safe(text);
    let mut out: String = safe.chars().take(max_chars).collect();
    if safe.chars().nth(max_chars).is_some() {
        out.push_str("...");
    }
    out
}

/// Describes a JSON value for "found ..." messages without echoing large or unsafe content.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => sanitize(&n.to_string()),
        Value::String(s) => format!("\"{}\"", sanitize(s)),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// Carries the error source while walking a document.
pub(crate) struct Walker<'a> {
    pub(crate) source: &'a str,
}

impl Walker<'_> {
    pub(crate) fn err(&self, path: &str, message: impl Into<String>) -> PolicyError {
        PolicyError {
            source: sanitize(self.source),
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn expected(&self, path: &str, what: &str, found: &Value) -> PolicyError {
        self.err(path, format!("expected {what}, found {}", describe(found)))
    }

    /// Parses a policy document object found at `path` (`$` for a bare document).
    pub(crate) fn document(&self, value: &Value, path: &str, label: &str) -> Result<Policy, PolicyError> {
        let obj = value
            .as_object()
            .ok_or_else(|| self.expected(path, "a policy document object", value))?;
        self.only_keys(obj, path, &["Version", "Id", "Statement"])?;
        let version = self.opt_string(obj, path, "Version")?;
        if let Some(v) = &version {
            if v != "2012-10-17" && v != "2008-10-17" {
                let msg = format!("expected \"2012-10-17\" or \"2008-10-17\", found \"{}\"", sanitize(v));
                return Err(self.err(&format!("{path}.Version"), msg));
            }
        }
        let id = self.opt_string(obj, path, "Id")?;
        let stmt_path = format!("{path}.Statement");
        let statements = match obj.get("Statement") {
            None => return Err(self.err(path, "missing \"Statement\"")),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, s)| self.statement(s, &format!("{stmt_path}[{i}]"), i))
                .collect::<Result<Vec<_>, _>>()?,
            Some(single @ Value::Object(_)) => vec![self.statement(single, &stmt_path, 0)?],
            Some(other) => return Err(self.expected(&stmt_path, "an object or a list of objects", other)),
        };
        Ok(Policy {
            label: label.to_string(),
            version,
            id,
            statements,
        })
    }

    fn only_keys(&self, obj: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), PolicyError> {
        match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(self.err(path, format!("unknown element \"{}\"", sanitize(k)))),
            None => Ok(()),
        }
    }

    fn opt_string(&self, obj: &Map<String, Value>, path: &str, key: &str) -> Result<Option<String>, PolicyError> {
        match obj.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.expected(&format!("{path}.{key}"), "a string", other)),
        }
    }

    fn statement(&self, value: &Value, path: &str, index: usize) -> Result<Statement, PolicyError> {
        let obj = value
            .as_object()
            .ok_or_else(|| self.expected(path, "a statement object", value))?;
        let known = [
            "Sid",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Principal",
            "NotPrincipal",
            "Condition",
        ];
        self.only_keys(obj, path, &known)?;
        let sid = self.opt_string(obj, path, "Sid")?;
        let effect = match obj.get("Effect") {
            None => return Err(self.err(path, "missing \"Effect\"")),
            Some(Value::String(s)) if s == "Allow" => Effect::Allow,
            Some(Value::String(s)) if s == "Deny" => Effect::Deny,
            Some(other) => return Err(self.expected(&format!("{path}.Effect"), "\"Allow\" or \"Deny\"", other)),
        };
        let action = self
            .pair(obj, path, "Action", "NotAction", |p, v| self.strings(v, p))?
            .ok_or_else(|| self.err(path, "missing \"Action\" or \"NotAction\""))?;
        let resource = self.pair(obj, path, "Resource", "NotResource", |p, v| self.strings(v, p))?;
        let principal = self.pair(obj, path, "Principal", "NotPrincipal", |p, v| self.principal(v, p))?;
        let condition = match obj.get("Condition") {
            None => Vec::new(),
            Some(v) => self.condition(v, &format!("{path}.Condition"))?,
        };
        Ok(Statement {
            index,
            sid,
            effect,
            action,
            resource,
            principal,
            condition,
        })
    }

    /// Reads an element that has a `Not...` twin; both present is an error.
    fn pair<T>(
        &self,
        obj: &Map<String, Value>,
        path: &str,
        plain: &str,
        negated: &str,
        parse: impl Fn(&str, &Value) -> Result<T, PolicyError>,
    ) -> Result<Option<Element<T>>, PolicyError> {
        match (obj.get(plain), obj.get(negated)) {
            (Some(_), Some(_)) => Err(self.err(path, format!("\"{plain}\" and \"{negated}\" are mutually exclusive"))),
            (Some(v), None) => Ok(Some(Element {
                negated: false,
                value: parse(&format!("{path}.{plain}"), v)?,
            })),
            (None, Some(v)) => Ok(Some(Element {
                negated: true,
                value: parse(&format!("{path}.{negated}"), v)?,
            })),
            (None, None) => Ok(None),
        }
    }

    fn strings(&self, value: &Value, path: &str) -> Result<Vec<String>, PolicyError> {
        match value {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.expected(&format!("{path}[{i}]"), "a string", other)),
                })
                .collect(),
            other => Err(self.expected(path, "a string or a list of strings", other)),
        }
    }

    fn principal(&self, value: &Value, path: &str) -> Result<Principal, PolicyError> {
        let obj = match value {
            Value::String(s) if s == "*" => return Ok(Principal::Wildcard),
            Value::Object(obj) => obj,
            other => return Err(self.expected(path, "\"*\" or an object such as {\"AWS\": ...}", other)),
        };
        let mut entries = Vec::new();
        for (key, v) in obj {
            let kind = match key.as_str() {
                "AWS" => PrincipalKind::Aws,
                "Service" => PrincipalKind::Service,
                "Federated" => PrincipalKind::Federated,
                "CanonicalUser" => PrincipalKind::CanonicalUser,
                other => {
                    let msg = format!(
                        "expected \"AWS\", \"Service\", \"Federated\" or \"CanonicalUser\", found \"{}\"",
                        sanitize(other)
                    );
                    return Err(self.err(path, msg));
                }
            };
            let values = self.strings(v, &format!("{path}.{key}"))?;
            entries.extend(values.into_iter().map(|value| PrincipalEntry { kind, value }));
        }
        Ok(Principal::Entries(entries))
    }

    fn condition(&self, value: &Value, path: &str) -> Result<Vec<ConditionClause>, PolicyError> {
        let ops = value
            .as_object()
            .ok_or_else(|| self.expected(path, "an object of condition operators", value))?;
        let mut clauses = Vec::new();
        for (operator, keys) in ops {
            let op_path = format!("{path}.{}", sanitize(operator));
            let keys = keys
                .as_object()
                .ok_or_else(|| self.expected(&op_path, "an object of context keys", keys))?;
            for (key, values) in keys {
                let key_path = format!("{op_path}.{}", sanitize(key));
                let values = match values {
                    Value::Array(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| self.scalar(v, &format!("{key_path}[{i}]")))
                        .collect::<Result<Vec<_>, _>>()?,
                    single => vec![self.scalar(single, &key_path)?],
                };
                clauses.push(ConditionClause {
                    operator: operator.clone(),
                    key: key.clone(),
                    values,
                });
            }
        }
        Ok(clauses)
    }

    fn scalar(&self, value: &Value, path: &str) -> Result<String, PolicyError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(self.expected(path, "a string, number or boolean", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Policy, PolicyError> {
        Walker { source: "p.json" }.document(&v, "$", "p")
    }

    #[test]
    fn single_statement_object_and_list_forms() {
        let one = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}});
        let p = parse(one).expect("valid");
        assert_eq!(p.statements.len(), 1);
        assert!(p.variables_enabled());
        let many = json!({"Statement": [{"Sid": "A", "Effect": "Deny", "NotAction": ["iam:*"], "NotResource": "x"},
                                         {"Effect": "Allow", "Action": "*", "Principal": {"AWS": ["1", "2"]}}]});
        let p = parse(many).expect("valid");
        assert_eq!(p.statements[1].index, 1);
        assert!(p.statements[0].action.negated);
        assert!(!p.variables_enabled());
        let Some(Element {
            value: Principal::Entries(e),
            ..
        }) = &p.statements[1].principal
        else {
            panic!("entries")
        };
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn condition_values_of_every_scalar_type() {
        let doc = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"NumericLessThan": {"s3:max-keys": 10}, "Bool": {"aws:SecureTransport": [true, "false"]}}}]});
        let p = parse(doc).expect("valid");
        let c = &p.statements[0].condition;
        assert_eq!(c[0].values, vec!["10"]);
        assert_eq!(c[1].values, vec!["true", "false"]);
    }

    #[test]
    fn errors_carry_json_paths() {
        let cases = [
            (
                json!({"Statement": [{}, {}, {"Effect": "allow", "Action": "*"}]}),
                "$.Statement[0]",
                "missing \"Effect\"",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "*"}, {"Effect": "Allow", "Action": "*"},
                                      {"Effect": "allow", "Action": "*"}]}),
                "$.Statement[2].Effect",
                "expected \"Allow\" or \"Deny\", found \"allow\"",
            ),
            (
                json!({"Statement": {"Effect": "Allow", "Action": [1]}}),
                "$.Statement.Action[0]",
                "expected a string",
            ),
            (
                json!({"Version": "2020-01-01", "Statement": []}),
                "$.Version",
                "expected \"2012-10-17\"",
            ),
            (
                json!({"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "*"}}),
                "$.Statement",
                "exclusive",
            ),
            (
                json!({"Statement": {"Effect": "Deny", "Action": "*", "Condition": {"Bool": {"k": null}}}}),
                "$.Statement.Condition.Bool.k",
                "expected a string, number or boolean, found null",
            ),
            (
                json!({"Statement": {"Effect": "Deny", "Action": "*", "Principal": {"aws": "1"}}}),
                "$.Statement.Principal",
                "\"aws\"",
            ),
            (
                json!({"Statement": {"Effect": "Deny", "Action": "*", "Actions": "1"}}),
                "$.Statement",
                "unknown element",
            ),
            (json!({"Version": "2012-10-17"}), "$", "missing \"Statement\""),
        ];
        for (doc, path, msg) in cases {
            let err = parse(doc).expect_err("must fail");
            assert_eq!(err.path, path, "{err}");
            assert!(err.message.contains(msg), "{err}");
            assert_eq!(err.to_string(), format!("p.json: {}: {}", err.path, err.message));
        }
    }

    #[test]
    fn error_strings_are_sanitised_and_short() {
        let doc = json!({"Statement": {"Effect": format!("Al\u{1b}[31mlow\u{85}{}", "x".repeat(100)), "Action": "*"}});
        let err = parse(doc).expect_err("must fail");
        // The escape sequence and the C1 control are removed, as everywhere in ecsdoctor.
        assert!(err.message.contains("Allowx"), "{err}");
        assert!(err.message.ends_with("...\""), "{err}");
        assert!(!err.to_string().chars().any(|c| c.is_control()));
    }
}
