# ecsdoctor's Lambda runner: an EventBridge rule for stopped ECS tasks, the function (the
# ecsdoctor binary as a provided.al2023 custom runtime), its log group, its role and an on-failure
# destination. See docs/eventbridge.md.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}
