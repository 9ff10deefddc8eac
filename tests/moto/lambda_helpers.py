#!/usr/bin/env python3
"""Helpers for the Lambda runner's end-to-end tests (tests/it/lambda.rs), against a moto server.

    python tests/moto/lambda_helpers.py --endpoint http://127.0.0.1:PORT COMMAND [ARGS]

Commands (each prints one JSON value on stdout):
  describe CLUSTER TASK_ARN      the task as DescribeTasks returns it (the `detail` of an event)
  secure-parameter NAME VALUE    an SSM SecureString parameter (the webhook URL); prints its ARN
  topic-with-queue NAME          an SNS topic with an SQS queue subscribed (raw delivery off);
                                 prints {"topic_arn", "queue_url"}
  receive QUEUE_URL              the messages in the queue: the SNS notifications' Subject/Message

Only loopback endpoints are accepted: this script must never talk to real AWS.
"""

import json
import os
import sys
from urllib.parse import urlparse

os.environ.update(
    {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
)
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402  (after the environment is pinned)


def main():
    args = sys.argv[1:]
    if len(args) < 3 or args[0] != "--endpoint":
        sys.exit(__doc__)
    endpoint, command, rest = args[1], args[2], args[3:]
    u = urlparse(endpoint)
    if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"lambda_helpers.py: refusing endpoint {endpoint!r}: only http://127.0.0.1:PORT (moto)")

    def client(name):
        return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1")

    if command == "describe":
        cluster, arn = rest
        task = client("ecs").describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        out = task
    elif command == "secure-parameter":
        name, value = rest
        ssm = client("ssm")
        ssm.put_parameter(Name=name, Value=value, Type="SecureString")
        out = ssm.get_parameter(Name=name)["Parameter"]["ARN"]
    elif command == "topic-with-queue":
        (name,) = rest
        sns, sqs = client("sns"), client("sqs")
        topic = sns.create_topic(Name=name)["TopicArn"]
        queue_url = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        out = {"topic_arn": topic, "queue_url": queue_url}
    elif command == "receive":
        (queue_url,) = rest
        sqs = client("sqs")
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        out = []
        for m in got:
            body = json.loads(m["Body"])
            out.append({"subject": body.get("Subject"), "message": body.get("Message")})
    else:
        sys.exit(f"lambda_helpers.py: unknown command {command!r}")
    json.dump(out, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
