//! Runs the data-driven evaluation table in `tests/fixtures/iam-cases.json`: each case cites the AWS documentation page it
//! comes from, gives the policies per layer (inline JSON, or text such as AWS CLI output), the request, and the
//! expected decision, deciding layer/statement, missing context and suggestion layer.

use std::collections::{BTreeMap, BTreeSet};

use ecsdoctor::iam::{
    evaluate, parse_policy, Decision, Layer, LayerDecision, Policy, PolicySet, Request, StatementRef,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    layer: Layer,
    topic: String,
    doc: String,
    policies: Policies,
    #[serde(default)]
    request: RequestSpec,
    expect: Expect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Policies {
    #[serde(default)]
    identity: Vec<Value>,
    permissions_boundary: Option<Value>,
    #[serde(default)]
    session: Vec<Value>,
    resource: Option<Value>,
    kms_key: Option<Value>,
    #[serde(default)]
    scps: Vec<Value>,
    #[serde(default)]
    rcps: Vec<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RequestSpec {
    principal: Option<String>,
    principal_account: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    resource_account: Option<String>,
    #[serde(default)]
    context: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    decision: Decision,
    layer: Option<Layer>,
    layer_decision: Option<LayerDecision>,
    statement: Option<StatementRef>,
    missing_context: Option<Vec<String>>,
    suggestion_layer: Option<String>,
}

/// A policy is inline JSON, or a JSON string holding raw text (CLI output, URL-encoded documents).
fn load(value: &Value, label: &str) -> Policy {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    parse_policy(&text, label).unwrap_or_else(|e| panic!("policy {label} does not parse: {e}"))
}

fn policy_set(p: &Policies) -> PolicySet {
    let many = |list: &[Value], prefix: &str| -> Vec<Policy> {
        list.iter()
            .enumerate()
            .map(|(i, v)| load(v, &format!("{prefix}[{i}]")))
            .collect()
    };
    PolicySet {
        identity: many(&p.identity, "identity"),
        permissions_boundary: p.permissions_boundary.as_ref().map(|v| load(v, "permissions-boundary")),
        session: many(&p.session, "session"),
        resource: p.resource.as_ref().map(|v| load(v, "resource")),
        kms_key: p.kms_key.as_ref().map(|v| load(v, "kms-key")),
        scps: many(&p.scps, "scp"),
        rcps: many(&p.rcps, "rcp"),
    }
}

fn request(spec: RequestSpec) -> Request {
    Request {
        principal: spec
            .principal
            .unwrap_or_else(|| "arn:aws:sts::111122223333:assumed-role/app/task".into()),
        principal_account: spec.principal_account.unwrap_or_else(|| "111122223333".into()),
        action: spec.action.unwrap_or_else(|| "ecr:BatchGetImage".into()),
        resource: spec
            .resource
            .unwrap_or_else(|| "arn:aws:ecr:us-east-1:111122223333:repository/web".into()),
        resource_account: spec.resource_account,
        context: spec.context,
    }
}

fn layer_decision_for(decision: Decision) -> LayerDecision {
    match decision {
        Decision::Allowed => LayerDecision::Allow,
        Decision::ExplicitDeny => LayerDecision::ExplicitDeny,
        Decision::ImplicitDeny => LayerDecision::ImplicitDeny,
        Decision::Indeterminate => LayerDecision::Indeterminate,
    }
}

fn check(case: Case) -> Result<(), String> {
    let policies = policy_set(&case.policies);
    let eval = evaluate(&request(case.request), &policies);
    let json = serde_json::to_value(&eval).map_err(|e| e.to_string())?;
    let fail = |what: String| Err(format!("{}: {what}\n{json:#}", case.name));
    let expect = case.expect;
    if eval.decision != expect.decision {
        return fail(format!("decision {:?}, expected {:?}", eval.decision, expect.decision));
    }
    if json["version"] != 1 {
        return fail("version is not 1".into());
    }
    if (eval.decision == Decision::Indeterminate) == eval.indeterminate.is_empty() {
        return fail("indeterminate reasons must be given exactly when the decision is indeterminate".into());
    }
    if let Some(layer) = expect.layer {
        let result = eval.layer(layer).ok_or("layer missing from result")?;
        let want = expect
            .layer_decision
            .unwrap_or_else(|| layer_decision_for(expect.decision));
        if result.decision != want {
            return fail(format!(
                "layer {} decided {:?}, expected {want:?}",
                layer.name(),
                result.decision
            ));
        }
        if let Some(stmt) = &expect.statement {
            if !result.statements.contains(stmt) {
                return fail(format!("layer {} does not name {stmt}", layer.name()));
            }
        }
    }
    if let Some(missing) = &expect.missing_context {
        if &eval.missing_context != missing {
            return fail(format!(
                "missing_context {:?}, expected {missing:?}",
                eval.missing_context
            ));
        }
    }
    let suggested = eval
        .suggestion
        .as_ref()
        .and_then(|s| s.get("layer"))
        .and_then(Value::as_str);
    if expect.suggestion_layer.as_deref() != suggested
        && (expect.suggestion_layer.is_some() || eval.decision != Decision::ImplicitDeny)
    {
        return fail(format!(
            "suggestion layer {suggested:?}, expected {:?}",
            expect.suggestion_layer
        ));
    }
    if eval.decision != Decision::ImplicitDeny && eval.suggestion.is_some() {
        return fail("only an implicit deny carries a suggestion".into());
    }
    Ok(())
}

#[test]
fn evaluation_table() {
    let text = include_str!("../fixtures/iam-cases.json");
    let cases: Vec<Case> = serde_json::from_str(text).expect("cases.json is valid");
    assert!(cases.len() >= 60, "need at least 60 cases, have {}", cases.len());
    let mut names = BTreeSet::new();
    let mut per_layer: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases {
        assert!(names.insert(case.name.clone()), "duplicate case name {}", case.name);
        assert!(
            case.doc.starts_with("https://docs.aws.amazon.com/"),
            "{}: cite an AWS documentation page",
            case.name
        );
        assert!(!case.topic.is_empty());
        *per_layer.entry(case.layer.name()).or_default() += 1;
        if let Err(e) = check(case) {
            failures.push(e);
        }
    }
    println!("cases per layer: {per_layer:?} (total {})", names.len());
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    for layer in Layer::ALL {
        assert!(
            per_layer.get(layer.name()).copied().unwrap_or(0) >= 4,
            "layer {} needs at least 4 cases",
            layer.name()
        );
    }
}

mod cli {
    //! `ecsdoctor policy eval`: the evaluator on the command line, as a runbook would call it.

    use std::path::{Path, PathBuf};

    use crate::support::bin::{ecsdoctor, Out};

    const ROLE: &str = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole";
    const PARAM: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db-password";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn eval(extra: &[&str]) -> Out {
        let mut args = vec![
            "policy",
            "eval",
            "--principal",
            ROLE,
            "--action",
            "ssm:GetParameters",
            "--resource",
            PARAM,
        ];
        args.extend_from_slice(extra);
        ecsdoctor().run(&args)
    }

    /// The managed policy's default version as `aws iam get-policy-version` prints it, URL-encoded
    /// as IAM's API returns documents.
    const VERSION_OUTPUT: &str = r#"{"PolicyVersion": {"Document": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Sid%22%3A%22Params%22%2C%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22ssm%3AGetParameters%22%2C%22Resource%22%3A%22arn%3Aaws%3Assm%3Aus-east-1%3A123456789012%3Aparameter%2Fapp%2F%2A%22%7D%5D%7D", "VersionId": "v2", "IsDefaultVersion": true}}"#;

    #[test]
    fn an_allow_names_its_statement_and_a_boundary_cap_names_the_layer_to_change() {
        let dir = tempfile::tempdir().unwrap();
        let id = write(dir.path(), "managed.json", VERSION_OUTPUT);
        let id = id.to_str().unwrap();
        let o = eval(&["--identity", id, "-f", "json"]);
        o.expect_code(0);
        let j = o.json();
        assert_eq!(j["version"], 1);
        assert_eq!(j["decision"], "allowed", "{}", o.context());
        assert_eq!(j["layers"][0]["layer"], "identity");
        assert_eq!(j["layers"][0]["statements"][0]["sid"], "Params");

        let boundary = write(
            dir.path(),
            "boundary.json",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        );
        let o = eval(&["--identity", id, "--boundary", boundary.to_str().unwrap()]);
        o.expect_code(0);
        assert!(
            o.stdout.starts_with("IMPLICIT DENY: ssm:GetParameters"),
            "{}",
            o.context()
        );
        assert!(
            o.stdout
                .contains("no applicable Allow in the permissions-boundary layer"),
            "{}",
            o.context()
        );
        assert!(
            o.stdout.contains("\"Action\": \"ssm:GetParameters\""),
            "{}",
            o.context()
        );
    }

    #[test]
    fn an_explicit_deny_names_the_sid_and_absent_context_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let id = write(
            dir.path(),
            "inline.json",
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"ssm:*","Resource":"*"},
                {"Sid":"OnlyFromVpce","Effect":"Deny","Action":"ssm:*","Resource":"*",
                 "Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-1a2b"}}}]}"#,
        );
        let id = id.to_str().unwrap();
        let o = eval(&["--identity", id, "-f", "json"]);
        let j = o.json();
        assert_eq!(j["decision"], "explicit-deny", "{}", o.context());
        assert_eq!(j["layers"][0]["statements"][0]["sid"], "OnlyFromVpce");
        assert_eq!(j["missing_context"][0], "aws:SourceVpce");
        // Supplying the key settles it the other way.
        let o = eval(&["--identity", id, "--context", "aws:SourceVpce=vpce-1a2b", "-f", "json"]);
        assert_eq!(o.json()["decision"], "allowed", "{}", o.context());
    }

    #[test]
    fn an_unknown_operator_is_indeterminate_with_exit_1() {
        let dir = tempfile::tempdir().unwrap();
        let id = write(
            dir.path(),
            "inline.json",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*",
                "Condition":{"StringSoundsLike":{"aws:PrincipalTag/team":"app"}}}]}"#,
        );
        let o = eval(&["--identity", id.to_str().unwrap()]);
        o.expect_code(1);
        assert!(o.stdout.starts_with("INDETERMINATE"), "{}", o.context());
    }

    #[test]
    fn a_bad_policy_file_is_one_line_naming_the_file_and_json_path() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(
            dir.path(),
            "bad\u{1b}[31m.json",
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Alow","Action":"*"}]}"#,
        );
        let o = eval(&["--identity", bad.to_str().unwrap()]);
        o.expect_code(2);
        let err = o.one_line_error();
        assert!(err.contains("$.Statement[1].Effect"), "{err}");
        assert!(err.contains("bad[31m.json") || err.contains("bad.json"), "{err}");
        assert!(!err.contains('\u{1b}'), "{err}");

        let missing = dir.path().join("nope.json");
        let o = eval(&["--identity", missing.to_str().unwrap()]);
        o.expect_code(2);
        assert!(o.one_line_error().contains("nope.json"));
    }

    #[test]
    fn bad_arguments_say_what_was_expected() {
        for (args, needle) in [
            (
                &[
                    "policy",
                    "eval",
                    "--principal",
                    "ecsTaskRole",
                    "--action",
                    "s3:GetObject",
                    "--resource",
                    "*",
                ][..],
                "--principal",
            ),
            (
                &[
                    "policy",
                    "eval",
                    "--principal",
                    ROLE,
                    "--action",
                    "GetObject",
                    "--resource",
                    "*",
                ],
                "service:Action",
            ),
            (
                &[
                    "policy",
                    "eval",
                    "--principal",
                    ROLE,
                    "--action",
                    "s3:GetObject",
                    "--resource",
                    "bucket",
                ],
                "--resource",
            ),
            (
                &[
                    "policy",
                    "eval",
                    "--principal",
                    ROLE,
                    "--action",
                    "s3:GetObject",
                    "--resource",
                    "*",
                    "--context",
                    "novalue",
                ],
                "KEY=VALUE",
            ),
        ] {
            let o = ecsdoctor().run(args);
            o.expect_code(2);
            assert!(o.one_line_error().contains(needle), "{}", o.context());
        }
    }
}
