//! The runner's pieces that need no Runtime API: clients built once per source, the error an
//! invocation reports, and the log line. The whole runner is tested end to end in
//! tests/it/lambda.rs against a local Runtime API stand-in, moto and a webhook receiver.

use super::*;

#[test]
fn clients_are_built_once_per_source() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let source = AwsSource::new(
        AwsOptions {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            region: Some("us-east-1".into()),
            ..AwsOptions::default()
        },
        Limits::default(),
    );
    let a = rt.block_on(source.clients(Some("us-east-1"))).expect("clients");
    let b = rt.block_on(source.clone().clients(Some("us-east-1"))).expect("clients");
    assert!(
        Arc::ptr_eq(&a.tracer, &b.tracer),
        "the second call reuses the first clients"
    );
}

#[test]
fn a_rejected_webhook_is_its_own_error_type_and_one_line() {
    let e = InvocationError::Delivery(vec![DeliveryError::Rejected {
        host: "hooks.slack.com".into(),
        status: 404,
        detail: ": no_service".into(),
    }]);
    let d: Diagnostic = e.into();
    assert_eq!(d.error_type, "ecsdoctor.WebhookRejected");
    assert!(d.error_message.contains("HTTP 404: no_service"), "{}", d.error_message);
    assert!(!d.error_message.contains('\n'));
    let e = InvocationError::Delivery(vec![DeliveryError::Unavailable {
        host: "hooks.slack.com".into(),
        attempts: 3,
        last: "HTTP 503".into(),
    }]);
    assert_eq!(Diagnostic::from(e).error_type, "ecsdoctor.DeliveryFailed");
}

#[test]
fn the_log_line_names_the_outcome() {
    let ok: Result<Value, InvocationError> = Ok(json!({"status": "posted", "task_arn": "arn:t", "category": "iam"}));
    let line = log_line("req-1", &ok, Duration::from_millis(12));
    assert_eq!(line, "ecsdoctor: req-1 posted task=arn:t category=iam rule=- 12 ms");
}
