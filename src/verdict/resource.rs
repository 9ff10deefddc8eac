//! The resource of a fix when the message names none, read off the task definition as the
//! knowledge tables say (`[resource_sources]`: secrets, repository credentials, ECR images,
//! awslogs groups, environment files), and the task's region, account and partition.

use crate::arn::Arn;
use crate::evidence::{ecr_image, Evidence};
use crate::rules::knowledge::{service_of, ResourceFrom};
use crate::rules::{expand_placeholders, Knowledge};

/// The task's region and account, from its ARN (or its cluster's).
pub(super) fn region_account(ev: &Evidence) -> Option<(String, String)> {
    let arn = ev
        .task
        .task_arn
        .as_deref()
        .or(ev.task.cluster_arn.as_deref())
        .or(ev.task.task_definition_arn.as_deref())?;
    let a = Arn::parse(arn)?;
    Some((a.region.to_string(), a.account.to_string()))
}

/// The task's partition (`aws`, `aws-cn`, ...), `aws` when unknown.
pub(super) fn partition(ev: &Evidence) -> String {
    ev.task
        .task_arn
        .as_deref()
        .and_then(Arn::parse)
        .map_or("aws", |a| a.partition)
        .to_string()
}

/// The resource to scope the fix to when the message does not name one.
pub(super) fn infer(ev: &Evidence, action: Option<&str>, k: &Knowledge) -> Option<String> {
    let action = action?;
    if let Some(r) = k.action(action).and_then(|f| f.resource.clone()) {
        return Some(r);
    }
    let service = service_of(action).to_ascii_lowercase();
    let source = k.resource_sources.get(&service)?;
    let td = ev.task_definition.as_ref()?;
    let (region, account) = region_account(ev)?;
    let partition = partition(ev);
    let template = |tpl: &str, region: &str, account: &str, name: &str| {
        expand_placeholders(tpl, |p| match p {
            "partition" => partition.clone(),
            "region" => region.to_string(),
            "account" => account.to_string(),
            "name" => name.to_string(),
            other => format!("{{{other}}}"),
        })
    };
    let mut out: Vec<String> = Vec::new();
    for c in &td.container_definitions {
        for from in &source.from {
            match from {
                ResourceFrom::Secrets => {
                    let values = c
                        .secrets
                        .iter()
                        .chain(c.log_configuration.iter().flat_map(|l| l.secret_options.iter()))
                        .map(|s| s.value_from.as_str());
                    for v in values {
                        match Arn::parse(v) {
                            Some(a) if a.service.eq_ignore_ascii_case(&service) => out.push(source.trim(v)),
                            Some(_) => {}
                            None => {
                                if let Some(tpl) = &source.arn {
                                    out.push(template(tpl, &region, &account, v.trim_start_matches('/')));
                                }
                            }
                        }
                    }
                }
                ResourceFrom::RepositoryCredentials => {
                    if let Some(rc) = &c.repository_credentials {
                        out.push(rc.credentials_parameter.clone());
                    }
                }
                ResourceFrom::EcrImages => {
                    if let (Some(img), Some(tpl)) = (c.image.as_deref().and_then(ecr_image), &source.arn) {
                        out.push(template(tpl, &img.region, &img.account, &img.repository));
                    }
                }
                ResourceFrom::AwslogsGroups => {
                    let Some(l) = c.log_configuration.as_ref().filter(|l| l.log_driver == "awslogs") else {
                        continue;
                    };
                    if let (Some(g), Some(tpl)) = (l.options.get("awslogs-group"), &source.arn) {
                        let reg = l.options.get("awslogs-region").unwrap_or(&region);
                        out.push(template(tpl, reg, &account, g));
                    }
                }
                ResourceFrom::EnvironmentFiles => {
                    out.extend(c.environment_files.iter().map(|f| f.value.clone()));
                }
            }
        }
    }
    out.dedup();
    (!out.is_empty()).then(|| out.join(", "))
}

/// Keeps the first `arn_segments` `:`-separated parts of a value (a secret reference may carry a
/// JSON key and a version after the ARN).
/// The resource (or the comma-separated resources) widened as the knowledge tables say, with the
/// note of the first widening; `None` when no part needs it.
pub(super) fn scope(resource: &str, k: &Knowledge) -> Option<(String, String)> {
    let mut note = None;
    let parts: Vec<String> = resource
        .split(", ")
        .map(|r| match k.scope_of(r) {
            Some((scoped, n)) => {
                note.get_or_insert(n);
                scoped
            }
            None => r.to_string(),
        })
        .collect();
    let mut unique: Vec<String> = Vec::new();
    for p in parts {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    note.map(|n| (unique.join(", "), n))
}

/// The account of the task's first ECR image.
pub(super) fn image_account(ev: &Evidence) -> Option<String> {
    ev.images().find_map(ecr_image).map(|i| i.account)
}
