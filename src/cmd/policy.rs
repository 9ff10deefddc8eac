//! `ecsdoctor policy eval`: the local IAM evaluator on policy files given on the command line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::arn::Arn;
use crate::cli::{Format, PolicyCommand, PolicyEvalArgs};
use crate::error::{EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, EXIT_OK};
use crate::iam::{evaluate, load_policy_file, Decision, Evaluation, LayerDecision, Policy, PolicySet, Request};
use crate::sanitize::{error_quote, terminal_safe};

use super::{with_stdout, Failure, Outcome};

/// Largest policy file read. IAM's own limits are far lower (a key policy is at most 32 KB).
const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// Runs `ecsdoctor policy ...`.
pub fn run(command: &PolicyCommand) -> Outcome {
    match command {
        PolicyCommand::Eval(args) => eval(args),
    }
}

fn eval(args: &PolicyEvalArgs) -> Outcome {
    let request = request(args)?;
    let policies = PolicySet {
        identity: load_all(&args.identity)?,
        permissions_boundary: load_one(args.boundary.as_deref())?,
        session: load_all(&args.session_policy)?,
        resource: load_one(args.resource_policy.as_deref())?,
        kms_key: load_one(args.key_policy.as_deref())?,
        scps: load_all(&args.scp)?,
        rcps: load_all(&args.rcp)?,
    };
    let evaluation = evaluate(&request, &policies);
    with_stdout(|w| match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *w, &evaluation)?;
            writeln!(w)
        }
        Format::Text => write_text(w, &request, &evaluation, false),
        Format::Markdown => write_text(w, &request, &evaluation, true),
    })?;
    Ok(match evaluation.decision {
        Decision::Indeterminate => EXIT_INCONCLUSIVE,
        _ => EXIT_OK,
    })
}

fn bad(message: String) -> Failure {
    Failure::new(EXIT_BAD_INPUT, message)
}

/// Builds the request from the arguments, checking each value.
fn request(args: &PolicyEvalArgs) -> Result<Request, Failure> {
    let principal = Arn::parse(&args.principal)
        .filter(|a| {
            (a.service == "iam" && a.resource.starts_with("role/"))
                || (a.service == "sts" && a.resource.starts_with("assumed-role/"))
        })
        .ok_or_else(|| {
            bad(format!(
                "--principal {}: expected a role ARN (arn:aws:iam::ACCOUNT:role/NAME) or a role session ARN (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION)",
                error_quote(&args.principal, 120)
            ))
        })?;
    if !is_account(principal.account) {
        return Err(bad(format!(
            "--principal {}: the account must be 12 digits",
            error_quote(&args.principal, 120)
        )));
    }
    let (service, name) = args.action.split_once(':').unwrap_or(("", ""));
    if service.is_empty() || name.is_empty() || args.action.chars().any(char::is_whitespace) {
        return Err(bad(format!(
            "--action {}: expected service:Action, e.g. ssm:GetParameters",
            error_quote(&args.action, 120)
        )));
    }
    if args.resource != "*" && Arn::parse(&args.resource).is_none() {
        return Err(bad(format!(
            "--resource {}: expected an ARN, or * for actions without resource-level permissions",
            error_quote(&args.resource, 120)
        )));
    }
    if let Some(id) = &args.resource_account {
        if !is_account(id) {
            return Err(bad(format!(
                "--resource-account {}: expected a 12-digit account id",
                error_quote(id, 40)
            )));
        }
    }
    let mut context: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in &args.context {
        let (key, value) = pair
            .split_once('=')
            .filter(|(k, _)| k.contains(':') && !k.trim().is_empty())
            .ok_or_else(|| {
                bad(format!(
                    "--context {}: expected KEY=VALUE with a prefixed key, e.g. aws:SourceVpce=vpce-1a2b",
                    error_quote(pair, 120)
                ))
            })?;
        context
            .entry(key.trim().to_string())
            .or_default()
            .push(value.to_string());
    }
    Ok(Request {
        principal: args.principal.clone(),
        principal_account: principal.account.to_string(),
        action: args.action.clone(),
        resource: args.resource.clone(),
        resource_account: args.resource_account.clone(),
        context,
    })
}

fn is_account(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

fn load_one(path: Option<&Path>) -> Result<Option<Policy>, Failure> {
    path.map(|p| load_policy_file(p, MAX_POLICY_BYTES).map_err(|e| bad(e.to_string())))
        .transpose()
}

fn load_all(paths: &[std::path::PathBuf]) -> Result<Vec<Policy>, Failure> {
    paths
        .iter()
        .map(|p| load_policy_file(p, MAX_POLICY_BYTES).map_err(|e| bad(e.to_string())))
        .collect()
}

/// The answer for a person (or, with `markdown`, for chat): the decision, each layer that took
/// part, the missing context and the statement that would allow.
fn write_text(w: &mut dyn Write, request: &Request, e: &Evaluation, markdown: bool) -> std::io::Result<()> {
    let (bullet, code) = if markdown { ("- ", "`") } else { ("  ", "") };
    let decision = match e.decision {
        Decision::Allowed => "ALLOWED",
        Decision::ExplicitDeny => "EXPLICIT DENY",
        Decision::ImplicitDeny => "IMPLICIT DENY",
        Decision::Indeterminate => "INDETERMINATE",
    };
    let heading = if markdown { "**" } else { "" };
    writeln!(
        w,
        "{heading}{decision}{heading}: {code}{}{code} on {code}{}{code} by {code}{}{code}",
        terminal_safe(&request.action),
        terminal_safe(&request.resource),
        terminal_safe(&request.principal)
    )?;
    writeln!(w, "{}", terminal_safe(&e.summary()))?;
    writeln!(w)?;
    for layer in e.layers.iter().filter(|l| l.decision != LayerDecision::NotApplicable) {
        let verdict = match layer.decision {
            LayerDecision::Allow => "allow",
            LayerDecision::ExplicitDeny => "explicit deny",
            LayerDecision::ImplicitDeny => "no applicable statement",
            LayerDecision::Indeterminate => "indeterminate",
            LayerDecision::NotApplicable => "not applicable",
        };
        let statements: Vec<String> = layer.statements.iter().map(ToString::to_string).collect();
        let by = if statements.is_empty() {
            String::new()
        } else {
            format!(" — {}", statements.join("; "))
        };
        writeln!(w, "{bullet}{}: {verdict}{}", layer.layer.name(), terminal_safe(&by))?;
    }
    if !e.missing_context.is_empty() {
        writeln!(
            w,
            "{bullet}context keys the policies test but the request did not supply (absent, as in AWS): {}",
            terminal_safe(&e.missing_context.join(", "))
        )?;
    }
    for reason in &e.indeterminate {
        writeln!(w, "{bullet}undecided: {}", terminal_safe(reason))?;
    }
    if let Some(s) = &e.suggestion {
        let layer = s.get("layer").and_then(|l| l.as_str()).unwrap_or("identity");
        writeln!(w)?;
        writeln!(w, "The smallest statement that would allow it ({layer} layer):")?;
        let policy = s.get("policy").unwrap_or(s);
        let pretty = serde_json::to_string_pretty(policy).unwrap_or_default();
        if markdown {
            writeln!(w, "```json")?;
        }
        for line in pretty.lines() {
            writeln!(w, "{}", terminal_safe(line))?;
        }
        if markdown {
            writeln!(w, "```")?;
        }
        if let Some(note) = s.get("note").and_then(|n| n.as_str()) {
            writeln!(w, "{}", terminal_safe(note))?;
        }
    }
    Ok(())
}
