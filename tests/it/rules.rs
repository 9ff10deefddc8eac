//! Catalogue invariants: every built-in rule's examples behave, ids are unique and well named,
//! every rule is documented with a fix, docs and the sources its examples were quoted from, and
//! the list of ids is snapshotted so that adding or removing a rule is a reviewed diff.

use std::collections::BTreeSet;

use ecsdoctor::rules::engine::Matcher;
use ecsdoctor::rules::selftest;

fn builtin() -> Matcher {
    Matcher::load(true, &[]).expect("built-in rules load and compile")
}

#[test]
fn rules_every_example_and_counterexample_behaves() {
    let m = builtin();
    let rep = selftest::run(&m, |_| true);
    let failures: Vec<String> = rep
        .failures
        .iter()
        .map(|f| format!("{} ({}): {} {:?}", f.rule_id, f.location, f.kind, f.example))
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(rep.passed >= 2 * m.rules().len());
}

/// Built-in patterns are parsed at load and compiled on first use: every one must compile.
#[test]
fn rules_every_pattern_compiles() {
    let m = builtin();
    assert_eq!(m.catalogue().uncompilable(), Vec::<String>::new());
}

/// The literal prefilter never changes what matches: on every example of every rule, in other
/// cases and spellings and inside longer lines, each field's scan finds exactly the rules whose
/// regex matches (as running every regex did), and `explain`'s scan every rule that matches.
#[test]
fn rules_prefilter_keeps_every_match() {
    use ecsdoctor::evidence::Field;
    let m = builtin();
    let mut texts: Vec<String> = Vec::new();
    for r in m.rules() {
        let ex = &r.examples;
        for t in ex.matches.iter().chain(&ex.no_match).chain(&ex.todo_match) {
            texts.push(t.clone());
            texts.push(t.to_uppercase());
            texts.push(t.to_lowercase());
            // Under (?i), s and k also match U+017F and U+212A.
            texts.push(t.replace('s', "\u{17f}").replace('k', "\u{212a}"));
            texts.push(format!("2026-11-23T09:14:05Z ERROR {t} (retrying)"));
        }
    }
    let mut checked = 0;
    for t in &texts {
        let every: Vec<usize> = (0..m.rules().len())
            .filter(|&i| m.captures_of(i, t).is_some())
            .collect();
        let all: Vec<usize> = m.scan_all(t).iter().map(|h| h.rule).collect();
        assert_eq!(all, every, "scan_all on {t:?}");
        for field in Field::ALL {
            let want: Vec<usize> = (every.iter().copied())
                .filter(|&i| m.rules()[i].look_in.contains(&field))
                .collect();
            let got: Vec<usize> = m.scan(field, t).iter().map(|h| h.rule).collect();
            assert_eq!(got, want, "scan {field:?} on {t:?}");
        }
        checked += every.len();
    }
    assert!(checked > 2 * m.rules().len(), "only {checked} matches checked");
}

/// The built-in catalogue passes validation (which rejects duplicate ids, missing fixes, docs,
/// sources and examples, titles that describe patterns, and culprits that contradict the
/// category: each has a test feeding it a bad rule) and every family file contributes rules.
#[test]
fn rules_catalogue_loads_and_covers_every_family() {
    let m = builtin();
    assert!(
        m.rules().len() >= 80,
        "the catalogue has {} rules, want at least 80",
        m.rules().len()
    );
    let files: BTreeSet<&str> = m.rules().iter().map(|r| r.origin.path.as_str()).collect();
    for (path, text) in ecsdoctor::rules::BUILTIN_FILES {
        if text.contains("[[rule]]") {
            assert!(files.contains(path), "{path} has rules but none loaded");
        }
    }
}

#[test]
fn rules_id_list_is_reviewed() {
    let ids: Vec<String> = builtin()
        .rules()
        .iter()
        .map(|r| format!("{} ({})", r.id, r.origin.path))
        .collect();
    insta::assert_debug_snapshot!(ids);
}

#[test]
fn rules_catalogue_page_is_up_to_date() {
    let m = builtin();
    let want = ecsdoctor::cmd::rules::catalogue_markdown(&m);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/rules.md is out of date: regenerate it with `cargo run -q -- rules docs > docs/rules.md`"
    );
}

#[test]
fn rules_sdk_forms_of_many_languages_extract_the_action() {
    // One real message per SDK, each from a public report (see the rules' `sources`); the engine
    // must name the IAM action even where only the operation is printed.
    let m = builtin();
    let cases = [
        ("python", "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: Access Denied", "s3:PutObject"),
        ("go-v2", "operation error S3: PutObject, https response error StatusCode: 403, RequestID: 8QJ6F2XW9RZ1K3MB, HostID: Zm9v, api error AccessDenied: Access Denied", "s3:PutObject"),
        ("java", "com.amazonaws.services.cloudformation.model.AmazonCloudFormationException: User: arn:aws:sts::123456789012:assumed-role/xyz-instance/i-0b1c2d3e4f5a6b7c8 is not authorized to perform: cloudformation:ListStackResources on resource: arn:aws:cloudformation:us-west-2:123456789012:stack/xyz/* (Service: AmazonCloudFormation; Status Code: 403;", "cloudformation:ListStackResources"),
        ("go-v1", "rpc error: code = Unknown desc = AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/waypoint-runner/6f1c2a9e8b7d4c3fa2e1d0c9b8a7f6e5 is not authorized to perform: logs:GetLogEvents on resource: arn:aws:logs:us-east-1:123456789012:log-group:x", "logs:GetLogEvents"),
        ("dotnet", "Amazon.SecurityToken.AmazonSecurityTokenServiceException: 'User: arn:aws:iam::123456789012:user/UserAccount is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:user/UserAccount '", "sts:AssumeRole"),
        ("php", "Error executing \"PutObject\" on \"https://egyone.s3.us-west-2.amazonaws.com/avatars/super-admin.jpg\"; AWS HTTP error: Client error: `PUT https://egyone.s3.us-west-2.amazonaws.com/avatars/super-admin.jpg` resulted in a `403 Forbidden` response:", "s3:PutObject"),
        ("javascript-v3", "\"stack\":\"AccessDenied: Access to the resource https://sqs.eu-west-1.amazonaws.com/ is denied.\\n    at deserializeAws_queryCreateQueueCommandError (/webapp/main.js:554829:43)", "sqs:CreateQueue"),
        ("aws-cli", "upload failed: ./baz to s3://mybucket/foo/bar/baz A client error (AccessDenied) occurred when calling the PutObject operation: Access Denied", "s3:PutObject"),
        ("java-v2-sns", "\"error\": \"java.util.concurrent.ExecutionException: software.amazon.awssdk.services.sns.model.AuthorizationErrorException: User: arn:aws:sts::123456789012:assumed-role/cloud-platform-irsa-3f7c5895c70903f3-live/aws-sdk-java-1708420333884 is not authorized to perform: SNS:Publish on resource: arn:aws:sns:eu-west-2:123456789012:topic", "sns:Publish"),
        ("go-v2-dynamodb", "ERROR failed to insert item error=\"operation error DynamoDB: PutItem, https response error StatusCode: 400, RequestID: x, api error AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized", "dynamodb:PutItem"),
    ];
    for (lang, text, action) in cases {
        let d = ecsdoctor::verdict::explain(text, &m, &ecsdoctor::verdict::Options::default());
        assert!(
            d.verdict.permissions.iter().any(|p| p.eq_ignore_ascii_case(action)),
            "{lang}: want {action}, got {:?} (rule {:?})",
            d.verdict.permissions,
            d.verdict.rule_id
        );
    }
}
