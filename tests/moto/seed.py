#!/usr/bin/env python3
"""Seed a moto server with one stopped ECS task, the way a real failure would leave it.

    python tests/moto/seed.py --endpoint http://127.0.0.1:PORT --scenario NAME

Prints one JSON object on stdout:
    {"task_arn", "task_id", "cluster", "region", "execution_role_arn", "task_role_arn",
     "log_group", "log_stream", ...}
(plus "scenario", "cluster_arn", "stopped_reason", "log_group_created", "log_event_count").

Only loopback endpoints are accepted: this script must never talk to real AWS.
The caller sets dummy credentials (tests/support/moto.rs, scripts/test.sh); this script also
pins them, so running it by hand cannot pick up a real profile.

Scenarios (stop reasons are real message shapes from public reports; only ids are substituted):
  startup-ssm-denied   execution role lacks ssm:GetParameters for a `secrets` entry; the container
                       never started, so the log group exists but has no stream.
  runtime-s3-denied    the app (task role) is denied s3:PutObject; the denial is in the container log,
                       followed by a chained traceback so it is not in the last lines.
  network-ecr-timeout  image pull times out (no route to ECR): not IAM.
  missing-log-group    like runtime-s3-denied, but the awslogs group named by the task definition
                       does not exist, so logs cannot be read.
  startup-secret-kms-denied
                       the execution role cannot read a Secrets Manager secret (`secrets` entry) because
                       of the customer managed KMS key that encrypts it; like startup-ssm-denied, no
                       log stream. Seeds the key (alias/app-secrets, created with CreateKey's default
                       policy) and the secret; adds "secret_arn", "secret_name", "kms_key_id",
                       "kms_key_arn" to the JSON. tests/moto/seed_iam.py --case cmk-no-delegation
                       then seeds the policies (it replaces the key policy).
  many-tasks           a fleet for `ecsdoctor scan`: 500 stopped tasks from 5 task definition revisions
                       in their own cluster, with five causes (see MANY_TASKS below). Prints
                       {"scenario", "cluster", "cluster_arn", "region", "tasks", "task_definitions",
                        "causes": {name: {"count", "task_definition_arn", "group", "task_arns"}}, ...}.
"""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

# Hard safety: whatever the caller's environment says, never reach beyond loopback.
SAFE_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}
os.environ.update(SAFE_ENV)
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402  (after the environment is pinned)

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER = "ecsdoctor-live"
EXECUTION_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"
TASK_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/app-task-role"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app:1.4.2"
LOG_GROUP = "/ecs/app"
LOG_PREFIX = "ecs"
CONTAINER = "app"
SSM_PARAMETER_ARN = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/prod/db-password"

SECRET_NAME = "prod/app/db-credentials"
KMS_ALIAS = "alias/app-secrets"

SCENARIOS = (
    "startup-ssm-denied",
    "runtime-s3-denied",
    "network-ecr-timeout",
    "missing-log-group",
    "startup-secret-kms-denied",
    "many-tasks",
)


def stop_reason(scenario, task_id, secret_arn=None):
    if scenario == "startup-secret-kms-denied":
        # Shape: GiamPy5/terraform-aws-directus#10 (Fargate, execution role without kms:Decrypt on the
        # secret's customer managed key; also rules/secrets.toml secret-kms-access-not-allowed):
        #   ResourceInitializationError: unable to pull secrets or registry auth: execution resource
        #   retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s):
        #   failed to fetch secret arn:aws:secretsmanager:eu-central-1:account_id:secret:algo-dev-directus-
        #   secret20240626183203358800000004-EaPYTy from secrets manager: AccessDeniedException: Access to
        #   KMS is not allowed status code: 400, request id: a87a66d9-f839-4353-b8c2-9984b1465695
        # with the secret ARN (region, account, name) substituted. No principal or key is named.
        return (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution "
            "resource retrieval failed: unable to retrieve secret from asm: service call has been "
            f"retried 1 time(s): failed to fetch secret {secret_arn} from secrets manager: "
            "AccessDeniedException: Access to KMS is not allowed status code: 400, request id: "
            "a87a66d9-f839-4353-b8c2-9984b1465695"
        )
    if scenario == "startup-ssm-denied":
        # Shape: Fargate PV1.4 secrets retrieval denial (dev_cases exec-ssm-google-maps-key,
        # KNOWLEDGE.md section 1/3); the session name of the execution role is the task id.
        return (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution "
            "resource retrieval failed: unable to retrieve secrets from ssm: service call has been "
            "retried 1 time(s): AccessDeniedException: User: "
            f"arn:aws:sts::{ACCOUNT}:assumed-role/ecsTaskExecutionRole/{task_id} is not authorized "
            f"to perform: ssm:GetParameters on resource: {SSM_PARAMETER_ARN} because no "
            "identity-based policy allows the ssm:GetParameters action"
        )
    if scenario == "network-ecr-timeout":
        # Shape: deepfence/terraform-aws-cloud-scanner#13 (Fargate, containerd era):
        #   CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to
        #   resolve ref quay.io/...:latest: failed to do request: Head "https://quay.io/v2/.../manifests/latest":
        #   dial tcp 3.210.148.47:443: i/o timeout
        # with the registry, repository, tag and address substituted for a private ECR pull.
        return (
            f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to "
            f"resolve ref {IMAGE}: failed to do request: Head "
            f'"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/v2/app/manifests/1.4.2": '
            "dial tcp 10.0.1.23:443: i/o timeout"
        )
    # runtime-s3-denied, missing-log-group: the Fargate wording when the essential container exits.
    return "Essential container in task exited"


def app_log_lines(task_id):
    """~50 ordinary lines, the boto3 denial, then a ~30-line chained traceback after it."""
    lines = [
        "[2026-11-23 09:14:02 +0000] [1] [INFO] Starting gunicorn 23.0.0",
        "[2026-11-23 09:14:02 +0000] [1] [INFO] Listening at: http://0.0.0.0:8000 (1)",
        "[2026-11-23 09:14:02 +0000] [1] [INFO] Using worker: sync",
        "[2026-11-23 09:14:02 +0000] [7] [INFO] Booting worker with pid: 7",
        "[2026-11-23 09:14:02 +0000] [8] [INFO] Booting worker with pid: 8",
        "INFO app.config: loaded settings for environment=prod region=us-east-1",
        "INFO app.db: connected to postgres host=db.internal port=5432 pool_size=10",
        "INFO app.cache: redis ping ok (0.8 ms)",
    ]
    for i in range(38):
        job = 48210 + i
        lines.append(
            f"INFO app.worker: job={job} kind=report status=done rows={(i * 37) % 500 + 12} "
            f"duration_ms={(i * 53) % 900 + 40}"
        )
    lines += [
        "INFO app.reports: building daily report date=2026-11-23 rows=18342",
        "INFO app.reports: report written to /tmp/reports/2026-11-23.csv (2.4 MB)",
        "INFO app.reports: uploading report to s3://acme-uploads-prod/reports/2026-11-23.csv",
        "[2026-11-23 09:16:40 +0000] [7] [ERROR] Exception in worker process",
        "Traceback (most recent call last):",
        '  File "/app/app/reports.py", line 88, in upload_report',
        "    s3.put_object(Bucket=bucket, Key=key, Body=fh)",
        '  File "/usr/local/lib/python3.12/site-packages/botocore/client.py", line 569, in _api_call',
        "    return self._make_api_call(operation_name, kwargs)",
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
        '  File "/usr/local/lib/python3.12/site-packages/botocore/client.py", line 1023, in _make_api_call',
        "    raise error_class(parsed_response, operation_name)",
        # The denial itself (real botocore wording; the session name is the task id).
        "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject "
        f"operation: User: arn:aws:sts::{ACCOUNT}:assumed-role/app-task-role/{task_id} is not "
        'authorized to perform: s3:PutObject on resource: "arn:aws:s3:::acme-uploads-prod/reports/'
        '2026-11-23.csv" because no identity-based policy allows the s3:PutObject action',
        # (the blank lines Python prints around this are dropped: awslogs sends no empty events)
        "The above exception was the direct cause of the following exception:",
        "Traceback (most recent call last):",
        '  File "/usr/local/lib/python3.12/site-packages/gunicorn/arbiter.py", line 608, in spawn_worker',
        "    worker.init_process()",
        '  File "/usr/local/lib/python3.12/site-packages/gunicorn/workers/base.py", line 135, in init_process',
        "    self.load_wsgi()",
        '  File "/usr/local/lib/python3.12/site-packages/gunicorn/workers/base.py", line 147, in load_wsgi',
        "    self.wsgi = self.app.wsgi()",
        "                ^^^^^^^^^^^^^^^",
        '  File "/usr/local/lib/python3.12/site-packages/gunicorn/app/base.py", line 66, in wsgi',
        "    self.callable = self.load()",
        "                    ^^^^^^^^^^^",
        '  File "/app/app/main.py", line 36, in create_app',
        "    run_startup_jobs(settings)",
        '  File "/app/app/jobs.py", line 112, in run_startup_jobs',
        "    publish_reports(settings, day)",
        '  File "/app/app/jobs.py", line 74, in publish_reports',
        "    upload_report(path, settings.report_bucket, key)",
        '  File "/app/app/reports.py", line 91, in upload_report',
        '    raise ReportUploadError(f"could not upload {key}") from exc',
        "app.errors.ReportUploadError: could not upload reports/2026-11-23.csv",
        "[2026-11-23 09:16:40 +0000] [7] [INFO] Worker exiting (pid: 7)",
        "[2026-11-23 09:16:40 +0000] [8] [INFO] Handling signal: term",
        "[2026-11-23 09:16:40 +0000] [8] [INFO] Worker exiting (pid: 8)",
        "[2026-11-23 09:16:41 +0000] [1] [ERROR] Worker (pid:7) exited with code 3",
        "[2026-11-23 09:16:41 +0000] [1] [ERROR] Shutting down: Master",
        "[2026-11-23 09:16:41 +0000] [1] [ERROR] Reason: Worker failed to boot.",
    ]
    return lines


def seed_cmk_secret(kms, secretsmanager):
    """A secret encrypted with a customer managed key; the key keeps CreateKey's default policy here
    (seed_iam.py decides the policies)."""
    key = kms.create_key(Description="app secrets")["KeyMetadata"]
    kms.create_alias(AliasName=KMS_ALIAS, TargetKeyId=key["KeyId"])
    secret = secretsmanager.create_secret(
        Name=SECRET_NAME,
        SecretString=json.dumps({"username": "app", "password": "not-a-real-password"}),
        # The key ARN (moto's DescribeSecret echoes KmsKeyId exactly as given: id, ARN or alias).
        KmsKeyId=key["Arn"],
    )
    return {
        "secret_arn": secret["ARN"],
        "secret_name": SECRET_NAME,
        "kms_key_id": key["KeyId"],
        "kms_key_arn": key["Arn"],
    }


def check_endpoint(endpoint):
    u = urlparse(endpoint)
    if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"seed.py: refusing endpoint {endpoint!r}: only http://127.0.0.1:PORT (moto) is allowed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--scenario", required=True, choices=SCENARIOS)
    args = ap.parse_args()
    check_endpoint(args.endpoint)

    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name=REGION,
    )

    def client(name):
        return session.client(name, endpoint_url=args.endpoint, region_name=REGION)

    ecs, ec2, logs = client("ecs"), client("ec2"), client("logs")
    scenario = args.scenario
    if scenario == "many-tasks":
        json.dump(seed_many_tasks(ecs, ec2, logs), sys.stdout)
        sys.stdout.write("\n")
        return

    cluster_arn = ecs.create_cluster(clusterName=CLUSTER)["cluster"]["clusterArn"]
    secrets = [{"name": "DB_PASSWORD", "valueFrom": SSM_PARAMETER_ARN}]
    extra = {}
    if scenario == "startup-secret-kms-denied":
        extra = seed_cmk_secret(client("kms"), client("secretsmanager"))
        secrets = [{"name": "DB_CREDENTIALS", "valueFrom": extra["secret_arn"]}]
    td = ecs.register_task_definition(
        family="app",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        executionRoleArn=EXECUTION_ROLE_ARN,
        taskRoleArn=TASK_ROLE_ARN,
        containerDefinitions=[
            {
                "name": CONTAINER,
                "image": IMAGE,
                "essential": True,
                # moto answers HTTP 500 on run-task unless every container has memory set.
                "memory": 512,
                "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
                "secrets": secrets,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": LOG_GROUP,
                        "awslogs-region": REGION,
                        "awslogs-stream-prefix": LOG_PREFIX,
                    },
                },
            }
        ],
    )["taskDefinition"]

    # awsvpc needs a subnet and security group that exist in moto (a fake id is rejected,
    # and omitting securityGroups gives HTTP 500).
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    sg = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    run = ecs.run_task(
        cluster=CLUSTER,
        taskDefinition=td["taskDefinitionArn"],
        launchType="FARGATE",
        count=1,
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg], "assignPublicIp": "DISABLED"}
        },
    )
    if run.get("failures") or not run.get("tasks"):
        sys.exit(f"seed.py: run_task failed: {run.get('failures')}")
    task_arn = run["tasks"][0]["taskArn"]
    task_id = task_arn.rsplit("/", 1)[-1]
    log_stream = f"{LOG_PREFIX}/{CONTAINER}/{task_id}"

    log_group_created = False
    events = 0
    if scenario != "missing-log-group":
        logs.create_log_group(logGroupName=LOG_GROUP)
        log_group_created = True
    if scenario == "runtime-s3-denied":
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=log_stream)
        lines = app_log_lines(task_id)
        start = int(time.time() * 1000) - 60_000  # a minute ago: inside moto's accepted window
        batch = [{"timestamp": start + i * 50, "message": m} for i, m in enumerate(lines)]
        resp = logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=log_stream, logEvents=batch)
        if resp.get("rejectedLogEventsInfo"):
            sys.exit(f"seed.py: moto rejected log events: {resp['rejectedLogEventsInfo']}")
        events = len(batch)

    reason = stop_reason(scenario, task_id, extra.get("secret_arn"))
    ecs.stop_task(cluster=CLUSTER, task=task_arn, reason=reason)

    json.dump(
        {
            "scenario": scenario,
            "task_arn": task_arn,
            "task_id": task_id,
            "cluster": CLUSTER,
            "cluster_arn": cluster_arn,
            "region": REGION,
            "execution_role_arn": EXECUTION_ROLE_ARN,
            "task_role_arn": TASK_ROLE_ARN,
            "log_group": LOG_GROUP,
            "log_stream": log_stream,
            "log_group_created": log_group_created,
            "log_event_count": events,
            "stopped_reason": reason,
            "task_definition_arn": td["taskDefinitionArn"],
            **extra,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


# --- many-tasks: a fleet for `ecsdoctor scan` ----------------------------------------------------

FLEET_CLUSTER = "ecsdoctor-fleet"

# (cause, family, group, count, stop reason kind, log kind). Two revisions of `web` (a deploy that
# broke differently), so 5 distinct task definition revisions in all; 500 tasks.
MANY_TASKS = (
    ("ssm-denied", "web", "service:web", 120, "ssm", None),
    ("elb-health-check", "web", "service:web", 80, "elb", None),
    ("s3-denied", "worker", "family:worker", 120, "essential", "s3-denied"),
    ("ecr-timeout", "api", "family:api", 100, "ecr", None),
    ("db-refused", "batch", "family:batch", 80, "essential", "db-refused"),
)


def fleet_stop_reason(kind, task_id):
    if kind == "ssm":
        return stop_reason("startup-ssm-denied", task_id)
    if kind == "ecr":
        return stop_reason("network-ecr-timeout", task_id)
    if kind == "elb":
        # Shape: the service scheduler's wording (tests/fixtures/elb-health-check), new target group.
        return (
            f"Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:"
            "targetgroup/web-tg/6d0ecf831eec9f09)"
        )
    return "Essential container in task exited"


def db_refused_log_lines(task_id):
    """A Node batch job that cannot reach its database (not IAM)."""
    return [
        f"2026-11-23T09:20:01.112Z INFO  batch: starting nightly import task={task_id}",
        "2026-11-23T09:20:01.530Z INFO  batch: 3 input files in s3://acme-imports-prod/2026-11-23/",
        "2026-11-23T09:20:01.998Z INFO  batch: connecting to postgres host=10.0.3.17 port=5432 db=imports",
        "2026-11-23T09:20:02.004Z ERROR batch: database unavailable: Error: connect ECONNREFUSED 10.0.3.17:5432",
        "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16)",
        "2026-11-23T09:20:12.010Z ERROR batch: giving up after 5 attempts",
    ]


def seed_many_tasks(ecs, ec2, logs):
    cluster_arn = ecs.create_cluster(clusterName=FLEET_CLUSTER)["cluster"]["clusterArn"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    sg = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    created_groups = set()
    revisions = {}
    causes = {}
    start = int(time.time() * 1000) - 60_000
    for cause, family, group, count, reason_kind, log_kind in MANY_TASKS:
        log_group = f"/ecs/{family}"
        # Each cause registers its own revision: `web` gets revisions 1 and 2.
        td = ecs.register_task_definition(
            family=family,
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            executionRoleArn=EXECUTION_ROLE_ARN,
            taskRoleArn=TASK_ROLE_ARN,
            containerDefinitions=[
                {
                    "name": CONTAINER,
                    "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{family}:1.4.2",
                    "essential": True,
                    "memory": 512,
                    "secrets": [{"name": "DB_PASSWORD", "valueFrom": SSM_PARAMETER_ARN}],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": log_group,
                            "awslogs-region": REGION,
                            "awslogs-stream-prefix": LOG_PREFIX,
                        },
                    },
                }
            ],
        )["taskDefinition"]
        td_arn = td["taskDefinitionArn"]
        revisions[td_arn] = cause
        if log_group not in created_groups:
            logs.create_log_group(logGroupName=log_group)
            created_groups.add(log_group)
        arns = []
        # RunTask starts at most 10 tasks per call.
        while len(arns) < count:
            run = ecs.run_task(
                cluster=FLEET_CLUSTER,
                taskDefinition=td_arn,
                launchType="FARGATE",
                count=min(10, count - len(arns)),
                group=group,
                networkConfiguration={
                    "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg], "assignPublicIp": "DISABLED"}
                },
            )
            if run.get("failures") or not run.get("tasks"):
                sys.exit(f"seed.py: run_task failed: {run.get('failures')}")
            arns.extend(t["taskArn"] for t in run["tasks"])

        def finish(arn, log_group=log_group, log_kind=log_kind, reason_kind=reason_kind):
            task_id = arn.rsplit("/", 1)[-1]
            if log_kind:
                stream = f"{LOG_PREFIX}/{CONTAINER}/{task_id}"
                lines = app_log_lines(task_id) if log_kind == "s3-denied" else db_refused_log_lines(task_id)
                logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
                batch = [{"timestamp": start + i * 50, "message": m} for i, m in enumerate(lines)]
                resp = logs.put_log_events(logGroupName=log_group, logStreamName=stream, logEvents=batch)
                if resp.get("rejectedLogEventsInfo"):
                    raise RuntimeError(f"moto rejected log events: {resp['rejectedLogEventsInfo']}")
            ecs.stop_task(cluster=FLEET_CLUSTER, task=arn, reason=fleet_stop_reason(reason_kind, task_id))

        # boto3 clients are thread-safe and moto's server is threaded: a few workers halve the
        # seeding time (about a thousand calls in all).
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(finish, arns))
        causes[cause] = {
            "count": len(arns),
            "family": family,
            "task_definition_arn": td_arn,
            "group": group,
            "log_group": log_group,
            "task_arns": arns,
        }
    return {
        "scenario": "many-tasks",
        "cluster": FLEET_CLUSTER,
        "cluster_arn": cluster_arn,
        "region": REGION,
        "tasks": sum(c["count"] for c in causes.values()),
        "task_definitions": sorted(revisions),
        "execution_role_arn": EXECUTION_ROLE_ARN,
        "task_role_arn": TASK_ROLE_ARN,
        "causes": causes,
    }


if __name__ == "__main__":
    main()
