output "function_arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's role."
  value       = aws_iam_role.this.arn
}

output "rule_arn" {
  description = "ARN of the EventBridge rule for stopped tasks."
  value       = aws_cloudwatch_event_rule.stopped.arn
}

output "event_pattern" {
  description = "The rule's event pattern."
  value       = aws_cloudwatch_event_rule.stopped.event_pattern
}

output "on_failure_destination_arn" {
  description = "Where undeliverable events go."
  value       = local.on_failure_arn
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.this.name
}
