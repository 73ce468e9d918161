"""Checks of the AWS account a deploy is about to reach, run before any resource is created."""
