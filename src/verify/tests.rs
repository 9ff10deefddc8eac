//! Unit tests of verification on an in-memory reader: the plan a verdict gives, the rounds the
//! reads take, the key behind a secret or parameter, and the status for what the policies say.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::calls::{Call, ReadError, Reader};
use super::{collect, plan, verify, On, Plan, Skip, Status, Target};
use crate::evidence::{Evidence, Task, TaskDefinition};
use crate::rules::engine::Matcher;
use crate::verdict::{diagnose, Options};

const ROLE: &str = "ecsTaskExecutionRole";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole";
const PARAM: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db-password";

/// Answers from a map; counts rounds and requests; calls not in the map are not found.
#[derive(Default)]
struct MapReader {
    answers: BTreeMap<Call, Result<Value, ReadError>>,
    prefetched: Mutex<Vec<Call>>,
    rounds: AtomicUsize,
    asked: Mutex<Vec<Call>>,
}

impl MapReader {
    fn with(mut self, call: Call, answer: Result<Value, ReadError>) -> MapReader {
        self.answers.insert(call, answer);
        self
    }
}

impl Reader for MapReader {
    async fn read(&self, call: &Call) -> Result<Value, ReadError> {
        self.asked.lock().unwrap().push(call.clone());
        self.prefetched.lock().unwrap().push(call.clone());
        self.answers
            .get(call)
            .cloned()
            .unwrap_or_else(|| Err(ReadError::NotFound(format!("{call:?}"))))
    }

    fn has(&self, call: &Call) -> bool {
        self.prefetched.lock().unwrap().contains(call)
    }

    fn next_round(&self) {
        self.rounds.fetch_add(1, Ordering::SeqCst);
    }
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn role(name: &str) -> String {
    name.to_string()
}

/// A role with one inline policy `p` holding `doc`, nothing attached, no boundary.
fn one_inline(doc: Value) -> MapReader {
    MapReader::default()
        .with(
            Call::GetRole { role: role(ROLE) },
            Ok(json!({"Role": {"RoleName": ROLE, "Arn": ROLE_ARN, "Tags": [{"Key": "team", "Value": "payments"}]}})),
        )
        .with(
            Call::ListRolePolicies { role: role(ROLE) },
            Ok(json!({"PolicyNames": ["p"]})),
        )
        .with(
            Call::ListAttachedRolePolicies { role: role(ROLE) },
            Ok(json!({"AttachedPolicies": []})),
        )
        .with(
            Call::GetRolePolicy {
                role: role(ROLE),
                policy: "p".into(),
            },
            Ok(json!({"RoleName": ROLE, "PolicyName": "p", "PolicyDocument": doc.to_string()})),
        )
}

fn ssm_plan() -> Plan {
    Plan {
        role_name: ROLE.into(),
        account: "123456789012".into(),
        partition: "aws".into(),
        actions: vec![Target {
            action: "ssm:GetParameters".into(),
            on: On::Resource(PARAM.into()),
        }],
        denied: Some("ssm:GetParameters".into()),
        resource: Some(PARAM.into()),
        encrypted: Some(PARAM.into()),
        region: "us-east-1".into(),
        role_arn: ROLE_ARN.into(),
        role_arn_exact: true,
        named_layer: None,
        named_explicit: false,
        stopped_at: None,
    }
}

fn allow(action: &str, resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": action, "Resource": resource}]})
}

#[test]
fn a_missing_allow_is_confirmed_in_the_identity_layer_with_the_statement_to_add() {
    let r = one_inline(allow("logs:PutLogEvents", "*"));
    let v = block(verify(&ssm_plan(), &r, false));
    assert_eq!(v.status, Status::Confirmed, "{v:?}");
    assert_eq!(v.layer, Some("identity"));
    assert!(
        v.summary
            .contains("no statement in ecsTaskExecutionRole's 1 policy allows"),
        "{}",
        v.summary
    );
    assert!(v.diff.as_ref().unwrap().to_string().contains("ssm:GetParameters"));
}

#[test]
fn an_allow_contradicts_and_names_what_could_still_deny() {
    let r = one_inline(allow(
        "ssm:GetParameters",
        "arn:aws:ssm:us-east-1:123456789012:parameter/prod/*",
    ));
    let v = block(verify(&ssm_plan(), &r, false));
    assert_eq!(v.status, Status::Contradicted, "{v:?}");
    assert_eq!(v.statement.as_ref().and_then(|s| s.sid.as_deref()), Some("A"));
    assert!(v.could_still_deny.iter().any(|c| c.contains("SCP")));
}

#[test]
fn a_condition_on_an_unknowable_key_is_indeterminate_and_a_known_one_is_not() {
    let vpce = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}}}]});
    let v = block(verify(&ssm_plan(), &one_inline(vpce), false));
    assert_eq!(v.status, Status::Indeterminate, "{v:?}");
    assert_eq!(v.missing_context, vec!["aws:SourceVpce".to_string()]);
    // The role's own tags are known: a condition on them decides.
    let tagged = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalTag/team": "payments"}}}]});
    let v = block(verify(&ssm_plan(), &one_inline(tagged), false));
    assert_eq!(v.status, Status::Contradicted, "{v:?}");
}

#[test]
fn a_denied_read_is_unavailable_with_the_permission_to_grant() {
    let r = one_inline(allow("ssm:*", "*")).with(
        Call::GetRolePolicy {
            role: role(ROLE),
            policy: "p".into(),
        },
        Err(ReadError::Denied("not authorized to perform: iam:GetRolePolicy".into())),
    );
    let v = block(verify(&ssm_plan(), &r, false));
    assert_eq!(v.status, Status::Unavailable, "{v:?}");
    assert_eq!(
        v.unreadable[0].grant.as_deref(),
        Some("iam:GetRolePolicy for ecsdoctor's identity")
    );
    assert!(v.summary.contains("grant iam:GetRolePolicy"), "{}", v.summary);
}

#[test]
fn an_explicit_deny_stands_even_when_another_policy_is_unreadable() {
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoProd", "Effect": "Deny", "Action": "ssm:*", "Resource": PARAM}]});
    let r = one_inline(deny)
        .with(
            Call::ListAttachedRolePolicies { role: role(ROLE) },
            Ok(json!({"AttachedPolicies": [{"PolicyName": "m", "PolicyArn": "arn:aws:iam::123456789012:policy/m"}]})),
        )
        .with(
            Call::GetPolicy {
                arn: "arn:aws:iam::123456789012:policy/m".into(),
            },
            Err(ReadError::Denied("no".into())),
        );
    let v = block(verify(&ssm_plan(), &r, false));
    assert_eq!(v.status, Status::Confirmed, "{v:?}");
    assert_eq!(v.statement.as_ref().and_then(|s| s.sid.as_deref()), Some("NoProd"));
    assert_eq!(v.unreadable.len(), 1);
}

#[test]
fn the_default_version_of_a_managed_policy_is_evaluated_not_an_older_one() {
    let arn = "arn:aws:iam::123456789012:policy/app-secrets";
    let r = one_inline(allow("logs:PutLogEvents", "*"))
        .with(
            Call::ListAttachedRolePolicies { role: role(ROLE) },
            Ok(json!({"AttachedPolicies": [{"PolicyName": "app-secrets", "PolicyArn": arn}]})),
        )
        .with(
            Call::GetPolicy { arn: arn.into() },
            Ok(json!({"Policy": {"Arn": arn, "DefaultVersionId": "v2"}})),
        )
        .with(
            Call::GetPolicyVersion {
                arn: arn.into(),
                version: "v1".into(),
            },
            Ok(json!({"PolicyVersion": {"Document": allow("ssm:GetParameters", "*"), "VersionId": "v1"}})),
        )
        .with(
            Call::GetPolicyVersion {
                arn: arn.into(),
                version: "v2".into(),
            },
            Ok(json!({"PolicyVersion": {"Document": allow("logs:*", "*"), "VersionId": "v2", "IsDefaultVersion": true}})),
        );
    let v = block(verify(&ssm_plan(), &r, false));
    assert_eq!(v.status, Status::Confirmed, "{v:?}");
    assert!(
        v.checked.iter().any(|c| c.contains("(v2, the default version)")),
        "{:?}",
        v.checked
    );
    assert!(!r
        .asked
        .lock()
        .unwrap()
        .iter()
        .any(|c| matches!(c, Call::GetPolicyVersion { version, .. } if version == "v1")));
}

/// A managed policy changed after the task stopped is said so: what was evaluated is its version
/// now, not necessarily the one that denied. One changed before the stop says nothing.
#[test]
fn a_managed_policy_changed_after_the_stop_is_named() {
    let arn = "arn:aws:iam::123456789012:policy/app-secrets";
    let reader = |updated: Value| {
        one_inline(allow("logs:PutLogEvents", "*"))
            .with(
                Call::ListAttachedRolePolicies { role: role(ROLE) },
                Ok(json!({"AttachedPolicies": [{"PolicyName": "app-secrets", "PolicyArn": arn}]})),
            )
            .with(
                Call::GetPolicy { arn: arn.into() },
                Ok(json!({"Policy": {"Arn": arn, "DefaultVersionId": "v3", "UpdateDate": updated}})),
            )
            .with(
                Call::GetPolicyVersion {
                    arn: arn.into(),
                    version: "v3".into(),
                },
                Ok(json!({"PolicyVersion": {"Document": allow("ssm:GetParameters", "*"), "VersionId": "v3"}})),
            )
    };
    // The task stopped at 2026-11-23T09:15:00Z.
    let plan = Plan {
        stopped_at: crate::evidence::Timestamp::parse_iso("2026-11-23T09:15:00Z").map(|t| t.0),
        ..ssm_plan()
    };
    let after = block(verify(&plan, &reader(json!("2026-11-23T09:40:12+00:00")), false));
    assert_eq!(after.status, Status::Contradicted, "{after:?}");
    assert_eq!(after.changed_after_stop.len(), 1, "{after:?}");
    let note = &after.changed_after_stop[0];
    assert!(
        note.contains(arn) && note.contains("v3") && note.contains("2026-11-23T09:40:12"),
        "{note}"
    );
    let before = block(verify(&plan, &reader(json!("2026-11-01T08:00:00Z")), false));
    assert!(before.changed_after_stop.is_empty(), "{before:?}");
    let unknown_stop = block(verify(&ssm_plan(), &reader(json!("2026-11-23T09:40:12Z")), false));
    assert!(unknown_stop.changed_after_stop.is_empty(), "{unknown_stop:?}");
    // Epoch seconds (as other tools dump the answer) count too.
    let r = reader(json!(1_795_425_612));
    let epoch = block(verify(&plan, &r, false));
    assert_eq!(epoch.changed_after_stop.len(), 1, "{epoch:?}");
}

/// The note quotes a policy ARN from AWS's answer: it is cleaned like every other string
/// (escape sequences gone, account ids masked when asked).
#[test]
fn the_changed_after_stop_note_is_scrubbed() {
    let mut v = block(verify(&ssm_plan(), &one_inline(allow("ssm:GetParameters", "*")), false));
    v.changed_after_stop = vec!["arn:aws:iam::123456789012:policy/x\u{1b}[31m`](http://evil.example) changed".into()];
    let opts = Options {
        redact: crate::sanitize::RedactOptions {
            secrets: true,
            accounts: true,
        },
    };
    super::scrub(&mut v, &opts);
    let note = &v.changed_after_stop[0];
    assert!(!note.contains('\u{1b}') && !note.contains("123456789012"), "{note:?}");
}

/// With the role's facts prefetched beside the logs, verification costs two rounds after the
/// verdict (and the key policy fits in them); without, three.
#[test]
fn prefetched_role_facts_save_a_round() {
    let arn = "arn:aws:iam::123456789012:policy/m";
    let build = || {
        one_inline(allow("logs:PutLogEvents", "*"))
            .with(
                Call::ListAttachedRolePolicies { role: role(ROLE) },
                Ok(json!({"AttachedPolicies": [{"PolicyName": "m", "PolicyArn": arn}]})),
            )
            .with(
                Call::GetPolicy { arn: arn.into() },
                Ok(json!({"Policy": {"DefaultVersionId": "v1"}})),
            )
            .with(
                Call::GetPolicyVersion {
                    arn: arn.into(),
                    version: "v1".into(),
                },
                Ok(json!({"PolicyVersion": {"Document": allow("logs:*", "*")}})),
            )
    };
    let cold = build();
    block(verify(&ssm_plan(), &cold, false));
    assert_eq!(cold.rounds.load(Ordering::SeqCst), 3);

    let warm = build();
    block(collect::prefetch(&[ROLE.to_string()], &warm));
    assert_eq!(
        warm.rounds.load(Ordering::SeqCst),
        0,
        "prefetch runs in the caller's round"
    );
    block(verify(&ssm_plan(), &warm, false));
    assert_eq!(warm.rounds.load(Ordering::SeqCst), 2);
}

fn secret_plan(secret: &str) -> Plan {
    Plan {
        actions: vec![
            Target {
                action: "secretsmanager:GetSecretValue".into(),
                on: On::Resource(secret.into()),
            },
            Target {
                action: "kms:Decrypt".into(),
                on: On::Key,
            },
        ],
        denied: None,
        resource: Some(secret.into()),
        encrypted: Some(secret.into()),
        ..ssm_plan()
    }
}

#[test]
fn the_key_behind_a_secret_is_read_and_an_aws_managed_key_is_not_checked() {
    let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let both = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}]});
    let describe = Call::DescribeSecret {
        region: "us-east-1".into(),
        secret: secret.into(),
    };
    // A key policy naming only an administrator: no IAM policy can allow.
    let r = one_inline(both.clone())
        .with(describe.clone(), Ok(json!({"ARN": secret, "KmsKeyId": key})))
        .with(
            Call::GetKeyPolicy {
                region: "us-east-1".into(),
                key: key.into(),
            },
            Ok(json!({"Policy": json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:role/key-admin"}, "Action": "kms:*", "Resource": "*"}]}).to_string()})),
        );
    let v = block(verify(&secret_plan(secret), &r, false));
    assert_eq!(v.status, Status::Confirmed, "{v:?}");
    assert_eq!(v.layer, Some("kms-key"));

    // No KmsKeyId: the AWS managed key, nothing to check, and the secret's own read decides.
    let r = one_inline(both.clone()).with(describe.clone(), Ok(json!({"ARN": secret, "KmsKeyId": null})));
    let v = block(verify(&secret_plan(secret), &r, false));
    assert_eq!(v.status, Status::Contradicted, "{v:?}");
    let kms = v.actions.iter().find(|a| a.action == "kms:Decrypt").unwrap();
    assert_eq!(kms.decision, "not-checked");
    assert!(kms.note.as_deref().unwrap_or_default().contains("aws/secretsmanager"));

    // A key named by an alias ecsdoctor cannot resolve: the secret's allow proves nothing.
    let r = one_inline(both.clone()).with(describe.clone(), Ok(json!({"ARN": secret, "KmsKeyId": "alias/app"})));
    let v = block(verify(&secret_plan(secret), &r, false));
    assert_eq!(v.status, Status::Indeterminate, "{v:?}");
    assert!(v.summary.contains("kms:Decrypt was not checked"), "{}", v.summary);

    // ecsdoctor may not describe the secret: unavailable, with the permission to grant.
    let r = one_inline(both.clone()).with(describe.clone(), Err(ReadError::Denied("no".into())));
    let v = block(verify(&secret_plan(secret), &r, false));
    assert_eq!(v.status, Status::Unavailable, "{v:?}");
    assert!(
        v.summary.contains("grant secretsmanager:DescribeSecret"),
        "{}",
        v.summary
    );

    // Another account's key: its policy cannot be read, and it is not asked for.
    let foreign = "arn:aws:kms:us-east-1:999999999999:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let r = one_inline(both).with(describe, Ok(json!({"ARN": secret, "KmsKeyId": foreign})));
    let v = block(verify(&secret_plan(secret), &r, false));
    assert_eq!(v.status, Status::Unavailable, "{v:?}");
    assert!(!r
        .asked
        .lock()
        .unwrap()
        .iter()
        .any(|c| matches!(c, Call::GetKeyPolicy { .. })));
}

/// A key used through Secrets Manager is a forward access session: aws:ViaAWSService is true
/// there, so a data-perimeter Deny of direct use does not apply.
#[test]
fn a_key_used_through_the_service_is_not_direct_use() {
    let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let both = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}]});
    let key_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "EnableIam", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "DenyDirectUse", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"Bool": {"aws:ViaAWSService": "false"}}}]});
    let r = one_inline(both)
        .with(
            Call::DescribeSecret {
                region: "us-east-1".into(),
                secret: secret.into(),
            },
            Ok(json!({"ARN": secret, "KmsKeyId": key})),
        )
        .with(
            Call::GetKeyPolicy {
                region: "us-east-1".into(),
                key: key.into(),
            },
            Ok(json!({"Policy": key_policy.to_string()})),
        );
    let v = block(verify(&secret_plan(secret), &r, false));
    let kms = v.actions.iter().find(|a| a.action == "kms:Decrypt").unwrap();
    assert_eq!(kms.decision, "allowed", "{v:?}");
}

/// A key the policies test but only an unrelated statement uses does not make the answer open.
#[test]
fn only_keys_the_decision_hangs_on_make_it_indeterminate() {
    let doc = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "NoProd", "Effect": "Deny", "Action": "ssm:GetParameters", "Resource": PARAM},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}]});
    let v = block(verify(&ssm_plan(), &one_inline(doc), false));
    assert_eq!(v.status, Status::Confirmed, "{v:?}");
    assert!(v.missing_context.is_empty(), "{v:?}");
}

#[test]
fn a_truncated_role_arn_does_not_decide_a_principal_condition() {
    // GetRole denied and the role known only from a session ARN: its path is unknown, so a Deny
    // on aws:PrincipalArn is undecided, not confirmed.
    let deny = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"},
        {"Sid": "OnlyServiceRoles", "Effect": "Deny", "Action": "ssm:*", "Resource": "*",
         "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/service-role/*"}}}]});
    let r = one_inline(deny).with(Call::GetRole { role: role(ROLE) }, Err(ReadError::Denied("no".into())));
    let plan = Plan {
        role_arn_exact: false,
        ..ssm_plan()
    };
    let v = block(verify(&plan, &r, false));
    assert_ne!(v.status, Status::Confirmed, "{v:?}");
}

fn task_with_roles(reason: &str) -> Evidence {
    Evidence {
        task: Task {
            task_arn: Some("arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef".into()),
            stopped_reason: Some(reason.into()),
            last_status: Some("STOPPED".into()),
            launch_type: Some("FARGATE".into()),
            ..Task::default()
        },
        task_definition: Some(TaskDefinition {
            execution_role_arn: Some(ROLE_ARN.into()),
            task_role_arn: Some("arn:aws:iam::123456789012:role/app".into()),
            ..TaskDefinition::default()
        }),
        ..Evidence::default()
    }
}

#[test]
fn a_role_denial_plans_its_role_actions_and_resource_and_other_verdicts_do_not() {
    let matcher = Matcher::load(true, &[]).unwrap();
    let k = matcher.knowledge();
    let ev = task_with_roles(&format!("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/{ROLE}/0123 is not authorized to perform: ssm:GetParameters on resource: {PARAM} because no identity-based policy allows the ssm:GetParameters action"));
    let d = diagnose(&ev, &matcher, &Options::default());
    let p = plan(&d, &ev, k).unwrap();
    assert_eq!(p.role_name, ROLE);
    assert_eq!(p.denied.as_deref(), Some("ssm:GetParameters"));
    assert_eq!(p.actions[0].on, On::Resource(PARAM.into()));
    assert_eq!(p.region, "us-east-1");
    assert_eq!(
        collect::roles_to_prefetch(&ev),
        vec![ROLE.to_string(), "app".to_string()]
    );

    let ev = task_with_roles("Essential container in task exited");
    let d = diagnose(&ev, &matcher, &Options::default());
    assert_eq!(plan(&d, &ev, k), Err(Skip::NotARoleDenial));
}

#[test]
fn a_key_denial_finds_the_secret_in_the_message() {
    let matcher = Matcher::load(true, &[]).unwrap();
    let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app/db-AbCdEf";
    let ev = task_with_roles(&format!("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret {secret} from secrets manager: AccessDeniedException: Access to KMS is not allowed status code: 400, request id: a87a66d9-f839-4353-b8c2-9984b1465695"));
    let d = diagnose(&ev, &matcher, &Options::default());
    let p = plan(&d, &ev, matcher.knowledge()).unwrap();
    assert_eq!(p.encrypted.as_deref(), Some(secret));
    assert!(
        p.actions.iter().any(|t| t.action == "kms:Decrypt" && t.on == On::Key),
        "{p:?}"
    );
}

/// A task whose app logged a denial of the task role.
fn runtime_denial(line: &str) -> Evidence {
    let mut ev = task_with_roles("Essential container in task exited");
    ev.task.started_at = Some(crate::evidence::Timestamp(1_700_000_000_000));
    ev.task.containers = vec![crate::evidence::Container {
        name: "app".into(),
        exit_code: Some(1),
        last_status: Some("STOPPED".into()),
        ..Default::default()
    }];
    ev.logs = vec![crate::evidence::ContainerLogs {
        container: "app".into(),
        lines: vec![crate::evidence::LogLine {
            timestamp: None,
            message: line.into(),
        }],
    }];
    ev
}

/// The app role `app` with one inline policy holding `doc`.
fn app_role(doc: Value) -> MapReader {
    let app = "app".to_string();
    MapReader::default()
        .with(
            Call::GetRole { role: app.clone() },
            Ok(json!({"Role": {"RoleName": "app", "Arn": "arn:aws:iam::123456789012:role/app"}})),
        )
        .with(
            Call::ListRolePolicies { role: app.clone() },
            Ok(json!({"PolicyNames": ["p"]})),
        )
        .with(
            Call::ListAttachedRolePolicies { role: app.clone() },
            Ok(json!({"AttachedPolicies": []})),
        )
        .with(
            Call::GetRolePolicy {
                role: app,
                policy: "p".into(),
            },
            Ok(json!({"PolicyDocument": doc.to_string()})),
        )
}

fn verified(ev: &Evidence, r: &MapReader) -> crate::verdict::Diagnosis {
    let matcher = Matcher::load(true, &[]).unwrap();
    let opts = Options::default();
    let mut d = diagnose(ev, &matcher, &opts);
    let plain = d.clone();
    block(super::verify_diagnosis(
        &mut d,
        &plain,
        ev,
        r,
        false,
        matcher.knowledge(),
        &opts,
    ));
    d
}

/// The message names an explicit deny in the bucket's policy; the role also lacks the Allow. The
/// verdict stays on the layer the message names (an Allow on the role would not help) and says
/// what the evaluation also found.
#[test]
fn a_layer_the_message_names_is_not_overridden_by_what_ecsdoctor_could_not_see() {
    let ev = runtime_denial("botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: User: arn:aws:sts::123456789012:assumed-role/app/0123456789abcdef is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::acme-uploads/reports/x.csv\" with an explicit deny in a resource-based policy");
    let d = verified(&ev, &app_role(allow("logs:PutLogEvents", "*")));
    let v = d.verdict.verification.as_ref().expect("verified");
    assert_eq!(
        d.verdict.policy,
        Some(crate::rules::PolicyLayer::Resource),
        "{:?}",
        d.verdict
    );
    assert!(
        v.disagreement
            .as_deref()
            .unwrap_or_default()
            .contains("stays the verdict"),
        "{v:?}"
    );
}

/// A Sid or resource from AWS in the fix cannot ping a channel or render a link in chat.
#[test]
fn a_hostile_sid_in_the_fix_is_inert_in_markdown() {
    let ev = runtime_denial("botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: User: arn:aws:sts::123456789012:assumed-role/app/0123456789abcdef is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::acme-uploads/reports/x.csv\" because no identity-based policy allows the s3:PutObject action");
    let doc = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "<!channel> see [the runbook](https://evil.example/x) @here", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}]});
    let d = verified(&ev, &app_role(doc));
    let v = d.verdict.verification.as_ref().expect("verified");
    assert_eq!(v.status, Status::Confirmed, "{v:?}");
    assert!(d.verdict.fix.contains("Deny statement"), "{}", d.verdict.fix);
    let mut out = Vec::new();
    crate::render::diagnosis(
        &d,
        crate::cli::Format::Markdown,
        &crate::render::RenderOptions {
            styles: crate::render::Styles::default(),
            max_evidence: 8,
        },
        &mut out,
    )
    .unwrap();
    let md = String::from_utf8(out).unwrap();
    assert!(!md.contains("<!channel>"), "{md}");
    // A link needs an unescaped `](`; the text may stay, escaped.
    for (i, _) in md.match_indices("](https://evil") {
        assert!(
            md[..i].ends_with('\\') || !md[..i].ends_with(|c: char| c.is_ascii()),
            "a live link at {i}:\n{md}"
        );
    }
    let fix = md.lines().find(|l| l.starts_with("**Fix:**")).expect("a fix line");
    assert!(fix.contains("Deny statement"), "{fix}");
}
