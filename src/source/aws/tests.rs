//! The SDK-to-evidence mapping and the error mapping, on mocked SDK clients: moto cannot
//! produce container reasons, exit codes, stop codes, timestamps or most error shapes, so these
//! fields are covered here (the real HTTP path is covered by tests/live.rs against moto).
use super::errors::map_err;
use super::*;
use crate::evidence::Timestamp;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudwatchlogs as logs;
use aws_sdk_ecs as ecs;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::error::display::DisplayErrorContext;

fn task_output() -> DescribeTasksOutput {
    use ecs::types::{Container as C, Task as T, TaskStopCode};
    DescribeTasksOutput::builder()
        .tasks(
            T::builder()
                .task_arn("arn:aws:ecs:us-east-1:123456789012:task/demo/0123456789abcdef0123456789abcdef")
                .cluster_arn("arn:aws:ecs:us-east-1:123456789012:cluster/demo")
                .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3")
                .last_status("STOPPED")
                .launch_type(ecs::types::LaunchType::Fargate)
                .stop_code(TaskStopCode::EssentialContainerExited)
                .stopped_reason("Essential container in task exited")
                .created_at(aws_smithy_types::DateTime::from_secs(1_763_900_000))
                .started_at(aws_smithy_types::DateTime::from_secs(1_763_900_020))
                .stopped_at(aws_smithy_types::DateTime::from_secs(1_763_902_410))
                .containers(
                    C::builder()
                        .name("app")
                        .exit_code(137)
                        .reason("OutOfMemoryError: Container killed due to memory usage")
                        .build(),
                )
                .build(),
        )
        .build()
}

fn td_output() -> DescribeTaskDefinitionOutput {
    use ecs::types::{ContainerDefinition as CD, LogConfiguration as LC, LogDriver, Secret as S, TaskDefinition as TD};
    DescribeTaskDefinitionOutput::builder()
        .task_definition(
            TD::builder()
                .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3")
                .execution_role_arn("arn:aws:iam::123456789012:role/ecsTaskExecutionRole")
                .task_role_arn("arn:aws:iam::123456789012:role/web-task")
                .container_definitions(
                    CD::builder()
                        .name("app")
                        .log_configuration(
                            LC::builder()
                                .log_driver(LogDriver::Awslogs)
                                .options("awslogs-group", "/ecs/web")
                                .options("awslogs-stream-prefix", "ecs")
                                .build()
                                .expect("log configuration"),
                        )
                        .secrets(
                            S::builder()
                                .name("DB")
                                .value_from("arn:aws:ssm:us-east-1:123456789012:parameter/db")
                                .build()
                                .expect("secret"),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

fn opts() -> AwsOptions {
    AwsOptions {
        log_lines: 50,
        timeout: Duration::from_secs(5),
        ..AwsOptions::default()
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn task_ref() -> TaskRef {
    crate::arn::parse_task("arn:aws:ecs:us-east-1:123456789012:task/demo/0123456789abcdef0123456789abcdef")
        .expect("arn")
}

#[tokio::test]
async fn fetch_maps_every_field_moto_cannot_hold_and_reads_the_right_stream() {
    let dt = mock!(ecs::Client::describe_tasks).then_output(task_output);
    let dtd = mock!(ecs::Client::describe_task_definition).then_output(td_output);
    let tracer = Arc::new(Tracer::new(None));
    let g = tracer.clone();
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&dt, &dtd], |c| c
        .interceptor(guard(g.clone())));
    let gle = mock!(logs::Client::get_log_events)
        .match_requests(|r| {
            r.log_group_name() == Some("/ecs/web")
                && r.log_stream_name() == Some("ecs/app/0123456789abcdef0123456789abcdef")
                && r.start_from_head() == Some(false)
        })
        .then_output(|| {
            logs::operation::get_log_events::GetLogEventsOutput::builder()
                .events(
                    logs::types::OutputLogEvent::builder()
                        .timestamp(5)
                        .message("java.lang.OutOfMemoryError")
                        .build(),
                )
                .build()
        });
    let fle = mock!(logs::Client::filter_log_events).then_output(|| {
        logs::operation::filter_log_events::FilterLogEventsOutput::builder()
            .events(
                logs::types::FilteredLogEvent::builder()
                    .timestamp(1)
                    .message("AccessDenied: Access Denied")
                    .build(),
            )
            .build()
    });
    let g = tracer.clone();
    let logs = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, [&gle, &fle], |c| c
        .interceptor(guard(g.clone())));
    let clients = Clients::from_clients(ecs, logs, "us-east-1", tracer.clone());
    let ev = fetch(&clients, &task_ref(), &opts(), &Limits::default(), deadline(), &|_| {})
        .await
        .expect("fetch");
    let c = &ev.task.containers[0];
    assert_eq!(c.exit_code, Some(137));
    assert_eq!(
        c.reason.as_deref(),
        Some("OutOfMemoryError: Container killed due to memory usage")
    );
    assert_eq!(ev.task.stop_code.as_deref(), Some("EssentialContainerExited"));
    assert_eq!(ev.task.started_at, Some(Timestamp(1_763_900_020_000)));
    let td = ev.task_definition.as_ref().expect("task definition");
    assert_eq!(
        td.task_role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/web-task")
    );
    assert_eq!(
        td.container_definitions[0].secrets[0].value_from,
        "arn:aws:ssm:us-east-1:123456789012:parameter/db"
    );
    // The filter pass found an earlier denial; both lines are kept in time order.
    let msgs: Vec<&str> = ev.logs[0].lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(msgs, ["AccessDenied: Access Denied", "java.lang.OutOfMemoryError"]);
    assert_eq!(gle.num_calls(), 1);
    // Three sequential rounds, every call on the read-only list.
    let calls = tracer.calls();
    assert_eq!(tracer.rounds(), 3, "{calls:?}");
    assert!(
        calls.iter().all(|(_, _, op)| ALLOWED_OPERATIONS.contains(&op.as_str())),
        "{calls:?}"
    );
}

#[tokio::test]
async fn the_guard_refuses_anything_not_read_only() {
    let stop =
        mock!(ecs::Client::stop_task).then_output(|| ecs::operation::stop_task::StopTaskOutput::builder().build());
    let tracer = Arc::new(Tracer::new(None));
    let g = tracer.clone();
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&stop], |c| c
        .interceptor(guard(g.clone())));
    let err = ecs
        .stop_task()
        .task("t")
        .send()
        .await
        .expect_err("a write must be refused");
    assert!(
        format!("{}", DisplayErrorContext(&err)).contains("read-only"),
        "{}",
        DisplayErrorContext(&err)
    );
    // Refused before serialization: never recorded as sent.
    assert!(tracer.calls().is_empty(), "{:?}", tracer.calls());
}

async fn error_for(status: u16, body: &'static str) -> SourceError {
    let rule = mock!(ecs::Client::describe_tasks).then_http_response(move || {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("status"),
            aws_smithy_types::body::SdkBody::from(body),
        )
    });
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(1)));
    let err = ecs
        .describe_tasks()
        .cluster("demo")
        .tasks("t")
        .send()
        .await
        .expect_err("error");
    map_err(
        "ecs:DescribeTasks",
        err,
        "demo",
        "us-east-1",
        &AwsOptions {
            profile: Some("ops".into()),
            ..opts()
        },
    )
}

#[tokio::test]
async fn aws_errors_become_one_line_messages_with_exit_3() {
    let e = error_for(400, r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::1:assumed-role/oncall/x is not authorized to perform: ecs:DescribeTasks"}"#).await;
    assert!(
        matches!(&e, SourceError::AccessDenied { action, .. } if action == "ecs:DescribeTasks"),
        "{e}"
    );
    let e = error_for(
        400,
        r#"{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}"#,
    )
    .await;
    assert!(e.to_string().contains("aws sso login --profile ops"), "{e}");
    let e = error_for(400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#).await;
    assert!(matches!(e, SourceError::Throttled { .. }), "{e}");
    let e = error_for(
        400,
        r#"{"__type":"ClusterNotFoundException","message":"Cluster not found."}"#,
    )
    .await;
    assert!(matches!(e, SourceError::ClusterNotFound { .. }), "{e}");
    assert_eq!(e.exit_code(), crate::error::EXIT_AWS);
    assert!(!e.to_string().contains('\n'));
}

#[tokio::test]
async fn a_missing_task_is_task_not_found_with_the_retention_hint() {
    let dt = mock!(ecs::Client::describe_tasks).then_output(|| {
        DescribeTasksOutput::builder()
            .failures(
                ecs::types::Failure::builder()
                    .arn("arn:aws:ecs:us-east-1:123456789012:task/demo/x")
                    .reason("MISSING")
                    .build(),
            )
            .build()
    });
    let ecs = mock_client!(aws_sdk_ecs, [&dt]);
    let logs = mock_client!(aws_sdk_cloudwatchlogs, Vec::<&aws_smithy_mocks::Rule>::new());
    let clients = Clients::from_clients(ecs, logs, "us-east-1", Arc::new(Tracer::new(None)));
    let e = fetch(&clients, &task_ref(), &opts(), &Limits::default(), deadline(), &|_| {})
        .await
        .expect_err("missing");
    assert!(matches!(e, SourceError::TaskNotFound { .. }));
    assert!(e.to_string().contains("about an hour"), "{e}");
}

#[tokio::test]
async fn no_credentials_is_a_credentials_error() {
    let client = aws_smithy_http_client::test_util::infallible_client_fn(|_req| {
        http::Response::builder()
            .status(200)
            .body(aws_smithy_types::body::SdkBody::from("{}"))
            .expect("response")
    });
    let conf = ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .http_client(client)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(NoCreds))
        .build();
    let err = ecs::Client::from_conf(conf)
        .describe_tasks()
        .tasks("t")
        .send()
        .await
        .expect_err("no creds");
    let e = map_err("ecs:DescribeTasks", err, "default", "us-east-1", &opts());
    assert!(matches!(e, SourceError::Credentials(_)), "{e}");
    assert!(e.to_string().contains("no AWS credentials found"), "{e}");
}

#[derive(Debug)]
struct NoCreds;
impl aws_credential_types::provider::ProvideCredentials for NoCreds {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no providers in chain provided credentials",
            ),
        ))
    }
}

fn throttled_log_rules() -> (aws_smithy_mocks::Rule, aws_smithy_mocks::Rule) {
    let gle = mock!(logs::Client::get_log_events).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).expect("status"),
            aws_smithy_types::body::SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
        )
    });
    let fle = mock!(logs::Client::filter_log_events)
        .then_output(|| logs::operation::filter_log_events::FilterLogEventsOutput::builder().build());
    (gle, fle)
}

/// Issue 9, defect 10: an incident is exactly when the API is busy. Logs that stay throttled
/// after the SDK's retries are a note, and the verdict still comes from the task.
#[tokio::test]
async fn a_throttled_log_read_is_a_note_not_a_failure() {
    let o = AwsOptions {
        retry_attempts: 2,
        ..opts()
    };
    let dt = mock!(ecs::Client::describe_tasks).then_output(task_output);
    let dtd = mock!(ecs::Client::describe_task_definition).then_output(td_output);
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&dt, &dtd]);
    let (gle, fle) = throttled_log_rules();
    let retry = clients::retry_config(&o).with_initial_backoff(Duration::from_millis(1));
    let logs = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, [&gle, &fle], |c| c
        .retry_config(retry.clone()));
    let clients = Clients::from_clients(ecs, logs, "us-east-1", Arc::new(Tracer::new(None)));
    let ev = fetch(&clients, &task_ref(), &o, &Limits::default(), deadline(), &|_| {})
        .await
        .expect("the task was read: the diagnosis goes on");
    assert_eq!(gle.num_calls(), 2, "the SDK retried as configured");
    assert!(ev.logs.is_empty());
    assert!(
        ev.notes
            .iter()
            .any(|n| n.starts_with("logs of `app` not read: ThrottlingException after 2 attempts")),
        "{:?}",
        ev.notes
    );
    assert_eq!(ev.task.containers[0].exit_code, Some(137));
}

/// Scan's throttled calls are retried by the SDK's own retry configuration (a bounded number of
/// attempts), not by a loop of ours.
#[tokio::test]
async fn throttling_is_retried_by_the_sdk_within_the_configured_attempts() {
    let o = AwsOptions {
        retry_attempts: 3,
        ..opts()
    };
    let throttled = mock!(ecs::Client::describe_tasks)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
        )
        .times(2)
        .output(task_output)
        .build();
    let retry = clients::retry_config(&o).with_initial_backoff(Duration::from_millis(1));
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&throttled], |c| c
        .retry_config(retry.clone()));
    let logs = mock_client!(aws_sdk_cloudwatchlogs, Vec::<&aws_smithy_mocks::Rule>::new());
    let clients = Clients::from_clients(ecs, logs, "us-east-1", Arc::new(Tracer::new(None)));
    let tasks = task::describe_tasks(&clients, "demo", &["t".to_string()], &o)
        .await
        .expect("the third attempt succeeds");
    assert_eq!(tasks.len(), 1);
    assert_eq!(throttled.num_calls(), 3);

    let always = mock!(ecs::Client::describe_tasks).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).expect("status"),
            aws_smithy_types::body::SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
        )
    });
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&always], |c| c
        .retry_config(retry.clone()));
    let logs = mock_client!(aws_sdk_cloudwatchlogs, Vec::<&aws_smithy_mocks::Rule>::new());
    let clients = Clients::from_clients(ecs, logs, "us-east-1", Arc::new(Tracer::new(None)));
    let e = task::describe_tasks(&clients, "demo", &["t".to_string()], &o)
        .await
        .expect_err("throttled on every attempt");
    assert!(matches!(e, SourceError::Throttled { .. }), "{e}");
    assert_eq!(always.num_calls(), 3, "no more than the configured attempts");
}

/// A service's events are mapped with their id, time and message (moto keeps no events, so the
/// mapping is checked on a mocked client; the wire call is covered by the live scan test).
#[tokio::test]
async fn service_events_are_read_from_describe_services() {
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    let ds = mock!(ecs::Client::describe_services)
        .match_requests(|r| r.cluster() == Some("demo") && r.services() == ["web".to_string()])
        .then_output(|| {
            DescribeServicesOutput::builder()
                .services(
                    ecs::types::Service::builder()
                        .service_name("web")
                        .events(
                            ecs::types::ServiceEvent::builder()
                                .id("e1")
                                .created_at(aws_smithy_types::DateTime::from_secs(1_763_900_000))
                                .message("(service web) was unable to place a task because no container instance met all of its requirements.")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let ecs = mock_client!(aws_sdk_ecs, [&ds]);
    let logs = mock_client!(aws_sdk_cloudwatchlogs, Vec::<&aws_smithy_mocks::Rule>::new());
    let clients = Clients::from_clients(ecs, logs, "us-east-1", Arc::new(Tracer::new(None)));
    let events = task::service_events(&clients, "demo", "web", &opts())
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, "e1");
    assert_eq!(events[0].created_at, Some(Timestamp(1_763_900_000_000)));
    assert!(events[0].message.contains("unable to place a task"));
}
