variable "name" {
  description = "Name of the function, and prefix of the rule, role, log group and queue names."
  type        = string
  default     = "ecsdoctor"
}

variable "zip_path" {
  description = "The deployment zip (bootstrap + ecsdoctor) built by scripts/lambda-zip.sh for var.architecture."
  type        = string
}

variable "architecture" {
  description = "Instruction set of the function: x86_64 or arm64 (build the zip for the same one)."
  type        = string
  default     = "x86_64"
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB (ecsdoctor needs about 30 MB; more memory is more CPU)."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Seconds one invocation may run: the reads get at most 20 s, the rest is for webhook retries."
  type        = number
  default     = 60
}

variable "cluster_arns" {
  description = "Only stops in these clusters (ARNs). Empty: every cluster of the account and region."
  type        = list(string)
  default     = []
}

variable "services" {
  description = "Only stops of these services (names; matched as detail.group = service:NAME). Empty: every task."
  type        = list(string)
  default     = []
}

variable "webhook_parameter_name" {
  description = "Name of an SSM SecureString parameter holding the webhook URL (created outside Terraform, so the URL stays out of the state)."
  type        = string
  default     = null
}

variable "webhook_secret_arn" {
  description = "ARN of a Secrets Manager secret whose SecretString is the webhook URL (instead of the parameter)."
  type        = string
  default     = null
}

variable "webhook_kms_key_arn" {
  description = "Customer managed KMS key that encrypts the parameter or secret. Null for the AWS managed key (aws/ssm, aws/secretsmanager), which needs no grant."
  type        = string
  default     = null
}

variable "webhook_format" {
  description = "Payload of the webhook: slack (also Mattermost and Rocket.Chat), teams (a Teams Workflows webhook) or chime."
  type        = string
  default     = "slack"
  validation {
    condition     = contains(["slack", "teams", "chime"], var.webhook_format)
    error_message = "webhook_format must be slack, teams or chime."
  }
}

variable "sns_topic_arn" {
  description = "SNS topic to publish every message to (with or without a webhook)."
  type        = string
  default     = null
}

variable "notify_on" {
  description = "Which stops are posted: failures (every verdict but a deliberate stop), all, or a comma-separated list of categories."
  type        = string
  default     = "failures"
}

variable "dedup_window" {
  description = "Stops with the same failure signature within this window after the first message are folded into one summary (e.g. 15m; 0 posts every stop)."
  type        = string
  default     = "15m"
}

variable "summary_schedule" {
  description = "EventBridge schedule of the tick that posts the summaries of ended windows (null: only the next task event posts them)."
  type        = string
  default     = "rate(5 minutes)"
}

variable "message_limit" {
  description = "Longest message in bytes (1000 to 40000)."
  type        = number
  default     = 4000
}

variable "redact_accounts" {
  description = "Mask AWS account ids in messages (for a channel shared outside the company)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 30
}

variable "on_failure_destination_arn" {
  description = "SQS queue for events whose message could not be delivered after Lambda's retries. Null: the module creates one."
  type        = string
  default     = null
  validation {
    condition     = var.on_failure_destination_arn == null || can(regex("^arn:[^:]+:sqs:", var.on_failure_destination_arn))
    error_message = "on_failure_destination_arn must be an SQS queue ARN."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
