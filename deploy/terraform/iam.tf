# The function's role. Two policies, and nothing else (no managed policy):
#
# - "runner": EXACTLY what ecsdoctor itself sends. The read-only allow-list
#   (ALLOWED_OPERATIONS in src/source/aws/guard.rs) with their IAM prefixes, and the runner's
#   delivery actions (DELIVERY_OPERATIONS): read the webhook URL (ssm:GetParameter or
#   secretsmanager:GetSecretValue on that one resource), kms:Decrypt only for a customer managed
#   key (the AWS managed aws/ssm and aws/secretsmanager keys need no grant in the role's policy),
#   and sns:Publish on the one topic. tests/it/deploy.rs fails when this list and the code's
#   allow-list differ.
# - "platform": what Lambda itself does with the role: write the function's own log group, and
#   send undeliverable events to the on-failure queue.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-runner"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

locals {
  partition = data.aws_partition.current.partition
  webhook_parameter_arn = var.webhook_parameter_name == null ? null : (
    startswith(var.webhook_parameter_name, "arn:")
    ? var.webhook_parameter_name
    : "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${trimprefix(var.webhook_parameter_name, "/")}"
  )
  webhook_via = var.webhook_secret_arn != null ? "secretsmanager" : "ssm"
}

data "aws_iam_policy_document" "runner" {
  # ecsdoctor's read-only allow-list: the task definition and logs of a stopped task, and what its
  # verification reads (roles and their policies, resource policies). DescribeTaskDefinition and
  # the policy reads have no useful resource-level scoping for an account-wide runner.
  statement {
    sid = "EcsdoctorReadOnly"
    actions = [
      "ecs:DescribeTasks",
      "ecs:DescribeTaskDefinition",
      "ecs:ListTasks",
      "ecs:DescribeServices",
      "logs:GetLogEvents",
      "logs:FilterLogEvents",
      "iam:GetRole",
      "iam:ListRolePolicies",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:GetPolicy",
      "iam:GetPolicyVersion",
      "iam:SimulatePrincipalPolicy",
      "kms:GetKeyPolicy",
      "ecr:GetRepositoryPolicy",
      "s3:GetBucketPolicy",
      "secretsmanager:GetResourcePolicy",
      "secretsmanager:DescribeSecret",
      "ssm:DescribeParameters",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = local.webhook_parameter_arn == null ? [] : [local.webhook_parameter_arn]
    content {
      sid       = "ReadWebhookParameter"
      actions   = ["ssm:GetParameter"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.webhook_secret_arn == null ? [] : [var.webhook_secret_arn]
    content {
      sid       = "ReadWebhookSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.webhook_kms_key_arn == null ? [] : [var.webhook_kms_key_arn]
    content {
      sid       = "DecryptWebhook"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["${local.webhook_via}.${local.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.sns_topic_arn == null ? [] : [var.sns_topic_arn]
    content {
      sid       = "PublishMessages"
      actions   = ["sns:Publish"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "runner" {
  name   = "ecsdoctor-runner"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.runner.json
}

data "aws_iam_policy_document" "platform" {
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "OnFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [local.on_failure_arn]
  }
}

resource "aws_iam_role_policy" "platform" {
  name   = "lambda-platform"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.platform.json
}
