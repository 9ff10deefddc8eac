data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region  = data.aws_region.current.name
  account = data.aws_caller_identity.current.account_id

  # Optional filters: every key under detail is a field of the task.
  filters = {
    clusterArn = var.cluster_arns
    group      = [for s in var.services : "service:${s}"]
  }
  event_pattern = {
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = merge(
      { lastStatus = ["STOPPED"] },
      { for k, v in local.filters : k => v if length(v) > 0 },
    )
  }

  environment = {
    ECSDOCTOR_WEBHOOK_PARAMETER = var.webhook_parameter_name
    ECSDOCTOR_WEBHOOK_SECRET    = var.webhook_secret_arn
    ECSDOCTOR_WEBHOOK_FORMAT    = var.webhook_format
    ECSDOCTOR_SNS_TOPIC_ARN     = var.sns_topic_arn
    ECSDOCTOR_NOTIFY_ON         = var.notify_on
    ECSDOCTOR_DEDUP_WINDOW      = var.dedup_window
    ECSDOCTOR_MESSAGE_LIMIT     = tostring(var.message_limit)
    ECSDOCTOR_REDACT_ACCOUNTS   = tostring(var.redact_accounts)
  }

  on_failure_arn = coalesce(var.on_failure_destination_arn, one(aws_sqs_queue.failures[*].arn))
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_sqs_queue" "failures" {
  count                     = var.on_failure_destination_arn == null ? 1 : 0
  name                      = "${var.name}-failures"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_lambda_function" "this" {
  function_name    = var.name
  description      = "ecsdoctor: posts why each ECS task stopped, and which principal needs the fix"
  role             = aws_iam_role.this.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.zip_path
  source_code_hash = filebase64sha256(var.zip_path)
  memory_size      = var.memory_size
  timeout          = var.timeout

  # One sandbox sees every event, so the folding state in memory is complete (docs/eventbridge.md).
  reserved_concurrent_executions = 1

  environment {
    variables = { for k, v in local.environment : k => v if v != null }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.platform]
}

# Asynchronous invocations (EventBridge) are retried twice by Lambda; what still fails goes to the
# on-failure destination instead of being dropped.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = local.on_failure_arn
    }
  }
}

resource "aws_cloudwatch_event_rule" "stopped" {
  name          = "${var.name}-task-stopped"
  description   = "Stopped ECS tasks, for ecsdoctor"
  event_pattern = jsonencode(local.event_pattern)
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "stopped" {
  rule = aws_cloudwatch_event_rule.stopped.name
  arn  = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "stopped" {
  statement_id  = "AllowStoppedTaskEvents"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.stopped.arn
}

# The tick: an invocation that only posts the summaries of folding windows that have ended, so a
# summary does not wait for the next stopped task.
resource "aws_cloudwatch_event_rule" "tick" {
  count               = var.summary_schedule == null ? 0 : 1
  name                = "${var.name}-summary-tick"
  description         = "Posts ecsdoctor's summaries of folded stops"
  schedule_expression = var.summary_schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "tick" {
  count = var.summary_schedule == null ? 0 : 1
  rule  = aws_cloudwatch_event_rule.tick[0].name
  arn   = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "tick" {
  count         = var.summary_schedule == null ? 0 : 1
  statement_id  = "AllowSummaryTick"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.tick[0].arn
}
