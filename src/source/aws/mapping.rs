//! SDK types to evidence: the only place an `aws_sdk_ecs` type is turned into the crate's own
//! plain structs, so nothing of the SDK crosses the source seam.

use aws_sdk_ecs as ecs;

use crate::evidence::{
    Container, ContainerDefinition, EnvironmentFile, LogConfiguration, RepositoryCredentials, Secret, Task,
    TaskDefinition, Timestamp,
};

fn ts(d: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    d.and_then(|d| d.to_millis().ok()).map(Timestamp)
}

fn opt(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

/// SDK task -> evidence task.
pub fn map_task(t: &ecs::types::Task) -> Task {
    Task {
        task_arn: opt(t.task_arn()),
        cluster_arn: opt(t.cluster_arn()),
        task_definition_arn: opt(t.task_definition_arn()),
        container_instance_arn: opt(t.container_instance_arn()),
        last_status: opt(t.last_status()),
        desired_status: opt(t.desired_status()),
        stop_code: t.stop_code().map(|c| c.as_str().to_string()),
        stopped_reason: opt(t.stopped_reason()),
        launch_type: t.launch_type().map(|l| l.as_str().to_string()),
        capacity_provider_name: opt(t.capacity_provider_name()),
        platform_version: opt(t.platform_version()),
        group: opt(t.group()),
        started_by: opt(t.started_by()),
        created_at: ts(t.created_at()),
        pull_started_at: ts(t.pull_started_at()),
        pull_stopped_at: ts(t.pull_stopped_at()),
        started_at: ts(t.started_at()),
        stopping_at: ts(t.stopping_at()),
        stopped_at: ts(t.stopped_at()),
        containers: t
            .containers()
            .iter()
            .map(|c| Container {
                name: c.name().unwrap_or_default().to_string(),
                image: opt(c.image()),
                last_status: opt(c.last_status()),
                reason: opt(c.reason()),
                exit_code: c.exit_code().map(i64::from),
                runtime_id: opt(c.runtime_id()),
                health_status: c.health_status().map(|h| h.as_str().to_string()),
            })
            .collect(),
    }
}

fn map_secret(s: &ecs::types::Secret) -> Secret {
    Secret {
        name: s.name().to_string(),
        value_from: s.value_from().to_string(),
    }
}

/// SDK task definition -> evidence task definition.
pub fn map_task_definition(td: &ecs::types::TaskDefinition) -> TaskDefinition {
    TaskDefinition {
        task_definition_arn: opt(td.task_definition_arn()),
        family: opt(td.family()),
        revision: Some(i64::from(td.revision())).filter(|r| *r > 0),
        execution_role_arn: opt(td.execution_role_arn()),
        task_role_arn: opt(td.task_role_arn()),
        network_mode: td.network_mode().map(|n| n.as_str().to_string()),
        requires_compatibilities: td
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        container_definitions: td
            .container_definitions()
            .iter()
            .map(|c| ContainerDefinition {
                name: c.name().unwrap_or_default().to_string(),
                image: opt(c.image()),
                essential: c.essential(),
                log_configuration: c.log_configuration().map(|l| LogConfiguration {
                    log_driver: l.log_driver().as_str().to_string(),
                    options: l
                        .options()
                        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                    secret_options: l.secret_options().iter().map(map_secret).collect(),
                }),
                secrets: c.secrets().iter().map(map_secret).collect(),
                repository_credentials: c.repository_credentials().map(|r| RepositoryCredentials {
                    credentials_parameter: r.credentials_parameter().to_string(),
                }),
                environment_files: c
                    .environment_files()
                    .iter()
                    .map(|f| EnvironmentFile {
                        value: f.value().to_string(),
                        kind: f.r#type().as_str().to_string(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// SDK service event -> [`super::task::ServiceEvent`].
pub fn map_service_event(e: &ecs::types::ServiceEvent) -> super::task::ServiceEvent {
    super::task::ServiceEvent {
        id: e.id().unwrap_or_default().to_string(),
        created_at: ts(e.created_at()),
        message: e.message().unwrap_or_default().to_string(),
    }
}
