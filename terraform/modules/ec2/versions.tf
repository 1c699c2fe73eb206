# The EC2-compatible module needs only the AWS provider; govcloud pins the exact version it ships
# in its provider mirror (/opt/tf-plugins) in the rendered root module.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}
