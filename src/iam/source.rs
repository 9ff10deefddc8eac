//! Turns policy text as it arrives from AWS into a [`Policy`]: bare documents, documents given as a JSON
//! string, percent-encoded documents (IAM's API returns them URL-encoded), and the output shapes of the AWS CLI
//! commands ecsdoctor reads (`aws iam get-role-policy`, `aws iam get-policy-version`, `aws kms get-key-policy`,
//! `aws ecr get-repository-policy`, `aws secretsmanager get-resource-policy`, `aws s3api get-bucket-policy`).

use std::io::Read;
use std::path::Path;

use percent_encoding::percent_decode_str;
use serde_json::Value;

use super::policy::{sanitize, Policy, PolicyError, Walker};

/// CLI wrapper fields that hold the document, as an object or as (possibly percent-encoded) JSON text.
const WRAPPERS: [&str; 4] = ["PolicyDocument", "Policy", "policyText", "ResourcePolicy"];

/// How many times a document may be nested in JSON strings (`"{\"Statement\": ...}"`) before giving up.
const MAX_NESTING: usize = 3;

/// Parses policy text: tries JSON first and, if that fails, percent-decodes and tries again. `label` names the
/// policy in evaluation results and is the source shown in errors.
///
/// # Errors
/// A [`PolicyError`] naming the JSON path of the first problem (syntax, unknown shape, invalid element).
pub fn parse_policy(text: &str, label: &str) -> Result<Policy, PolicyError> {
    parse_text(&Walker { source: label }, text, "$", label, 0)
}

/// Reads and parses a policy file of at most `max_bytes` bytes; the policy is labelled with the file's path.
///
/// # Errors
/// A one-line [`PolicyError`] naming the file when it cannot be read, is larger than `max_bytes`, is not
/// UTF-8, or does not parse.
pub fn load_policy_file(path: &Path, max_bytes: u64) -> Result<Policy, PolicyError> {
    let label = path.display().to_string();
    let walker = Walker { source: &label };
    let io_err = |e: std::io::Error| walker.err("$", format!("cannot read file: {}", sanitize(&e.to_string())));
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > max_bytes {
        return Err(walker.err("$", format!("file is larger than {max_bytes} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        walker.err(
            "$",
            format!(
                "file is not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    parse_text(&walker, &text, "$", &label, 0)
}

fn parse_text(walker: &Walker<'_>, text: &str, path: &str, label: &str, depth: usize) -> Result<Policy, PolicyError> {
    if depth > MAX_NESTING {
        return Err(walker.err(path, "policy text is nested in JSON strings too deeply"));
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(value) => parse_value(walker, &value, path, label, depth),
        Err(json_err) => {
            let decoded = percent_decode_str(trimmed).decode_utf8().ok().filter(|d| d != trimmed);
            match decoded {
                Some(decoded) => parse_text(walker, &decoded, path, label, depth + 1),
                None => {
                    let msg = format!("not valid JSON: {}", sanitize(&json_err.to_string()));
                    Err(walker.err(path, msg))
                }
            }
        }
    }
}

fn parse_value(
    walker: &Walker<'_>,
    value: &Value,
    path: &str,
    label: &str,
    depth: usize,
) -> Result<Policy, PolicyError> {
    let obj = match value {
        Value::String(inner) => return parse_text(walker, inner, &format!("{path}<decoded>"), label, depth + 1),
        Value::Object(obj) => obj,
        other => {
            let found = if other.is_array() { "a list" } else { "a scalar" };
            return Err(walker.err(path, format!("expected a policy document object, found {found}")));
        }
    };
    if obj.contains_key("Statement") {
        return walker.document(value, path, label);
    }
    if let Some(version) = obj.get("PolicyVersion") {
        // `aws iam get-policy-version`: {"PolicyVersion": {"Document": ..., "VersionId", "IsDefaultVersion"}}
        let doc_path = format!("{path}.PolicyVersion.Document");
        return match version.get("Document") {
            Some(doc) => parse_embedded(walker, doc, &doc_path, label, depth),
            None => Err(walker.err(&format!("{path}.PolicyVersion"), "missing \"Document\"")),
        };
    }
    match WRAPPERS.iter().find_map(|k| obj.get(*k).map(|v| (*k, v))) {
        Some((key, doc)) => parse_embedded(walker, doc, &format!("{path}.{key}"), label, depth),
        None => Err(walker.err(
            path,
            "expected a policy document (with \"Statement\") or AWS CLI output holding one \
             (PolicyDocument, PolicyVersion.Document, Policy, policyText, ResourcePolicy)",
        )),
    }
}

/// A wrapped document is either an object or JSON text (possibly percent-encoded); nested wrappers are refused.
fn parse_embedded(
    walker: &Walker<'_>,
    doc: &Value,
    path: &str,
    label: &str,
    depth: usize,
) -> Result<Policy, PolicyError> {
    match doc {
        Value::String(text) => parse_text(walker, text, &format!("{path}<decoded>"), label, depth + 1),
        other => walker.document(other, path, label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"S","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

    fn encoded(text: &str) -> String {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    #[test]
    fn bare_and_string_and_percent_encoded_documents() {
        let expected = parse_policy(DOC, "x").expect("bare");
        assert_eq!(expected.statements[0].sid.as_deref(), Some("S"));
        let as_string = serde_json::to_string(DOC).expect("string");
        assert_eq!(parse_policy(&as_string, "x").expect("string form"), expected);
        assert_eq!(parse_policy(&encoded(DOC), "x").expect("encoded"), expected);
        // moto encodes only some characters.
        let partly = DOC.replace('{', "%7B").replace('"', "%22");
        assert_eq!(parse_policy(&partly, "x").expect("partly encoded"), expected);
    }

    #[test]
    fn cli_wrapper_shapes() {
        let doc: Value = serde_json::from_str(DOC).expect("json");
        let text = Value::String(DOC.to_string());
        let wrappers = [
            serde_json::json!({"RoleName": "r", "PolicyName": "p", "PolicyDocument": doc}),
            serde_json::json!({"RoleName": "r", "PolicyName": "p", "PolicyDocument": encoded(DOC)}),
            serde_json::json!({"PolicyVersion": {"Document": doc, "VersionId": "v2", "IsDefaultVersion": true}}),
            serde_json::json!({"PolicyVersion": {"Document": encoded(DOC), "VersionId": "v1"}}),
            serde_json::json!({"Policy": text, "PolicyName": "default"}),
            serde_json::json!({"registryId": "1", "repositoryName": "r", "policyText": text}),
            serde_json::json!({"ARN": "a", "Name": "n", "ResourcePolicy": text}),
            serde_json::json!({"Policy": text}),
        ];
        for w in wrappers {
            let p = parse_policy(&w.to_string(), "label").expect("wrapper");
            assert_eq!(p.label, "label");
            assert_eq!(p.statements.len(), 1, "{w}");
        }
    }

    #[test]
    fn wrapper_errors_name_the_embedded_path() {
        let bad = r#"{"Policy": "{\"Statement\": [{\"Effect\": \"allow\", \"Action\": \"*\"}]}"}"#;
        let err = parse_policy(bad, "key.json").expect_err("bad effect");
        assert_eq!(err.path, "$.Policy<decoded>.Statement[0].Effect");
        let err = parse_policy(r#"{"PolicyVersion": {"VersionId": "v1"}}"#, "v.json").expect_err("no doc");
        assert_eq!(err.to_string(), "v.json: $.PolicyVersion: missing \"Document\"");
        let err = parse_policy(r#"{"Foo": 1}"#, "f").expect_err("unknown shape");
        assert!(err.message.starts_with("expected a policy document"));
        let err = parse_policy("{\"Statement\": \u{7}", "f").expect_err("syntax");
        assert!(err.message.starts_with("not valid JSON"), "{err}");
        let err = parse_policy(r#"[1]"#, "f").expect_err("list");
        assert_eq!(err.message, "expected a policy document object, found a list");
    }

    #[test]
    fn file_loading_is_bounded_and_checks_utf8() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("test-tmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let good = dir.join("good.json");
        std::fs::write(&good, DOC).expect("write");
        let p = load_policy_file(&good, 10_000).expect("loads");
        std::fs::write(&good, format!("\u{feff}{DOC}\n")).expect("write with BOM");
        assert_eq!(load_policy_file(&good, 10_000).expect("BOM is skipped"), p);
        assert_eq!(p.label, good.display().to_string());
        let err = load_policy_file(&good, 10).expect_err("too big");
        assert!(err.to_string().ends_with(": $: file is larger than 10 bytes"), "{err}");
        let bin = dir.join("bin.json");
        std::fs::write(&bin, b"{\"a\": \xff}").expect("write");
        let err = load_policy_file(&bin, 100).expect_err("not utf8");
        assert!(err.message.contains("offset 6"), "{err}");
        let err = load_policy_file(&dir.join("missing.json"), 100).expect_err("missing");
        assert!(err.message.starts_with("cannot read file"), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
