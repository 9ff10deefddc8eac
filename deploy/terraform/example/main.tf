# An example: post every failed task of one cluster to a Slack channel, and keep undeliverable
# events in the module's SQS queue.
#
#   scripts/lambda-zip.sh --target x86_64-unknown-linux-gnu     # -> target/lambda/ecsdoctor-x86_64.zip
#   aws ssm put-parameter --name /ecsdoctor/slack-webhook --type SecureString \
#     --value 'https://hooks.slack.com/services/...'             # the URL stays out of Terraform state
#   terraform init && terraform apply -var cluster_arn=arn:aws:ecs:eu-west-1:123456789012:cluster/prod

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "cluster_arn" {
  type = string
}

module "ecsdoctor" {
  source = "../"

  zip_path               = "${path.module}/../../../target/lambda/ecsdoctor-x86_64.zip"
  architecture           = "x86_64"
  cluster_arns           = [var.cluster_arn]
  webhook_parameter_name = "/ecsdoctor/slack-webhook"
  webhook_format         = "slack"
  notify_on              = "failures"
  dedup_window           = "15m"

  tags = {
    app = "ecsdoctor"
  }
}

output "function_arn" {
  value = module.ecsdoctor.function_arn
}

output "on_failure_queue" {
  value = module.ecsdoctor.on_failure_destination_arn
}
