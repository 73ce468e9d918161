"""An IAM role that one AWS service assumes, with exactly one inline policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.policies import PolicyDocument, service_trust_policy


@dataclass
class ServiceRoleArgs:
    role_name: str
    service: str
    # None for services that send no aws:SourceAccount when assuming (see the policy).
    account_id: str | None
    description: str
    policy: pulumi.Input[PolicyDocument]


class ServiceRole(pulumi.ComponentResource):
    """`aws.iam.Role` trusted by one service (this account only) plus its inline policy."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy

    def __init__(
        self, name: str, args: ServiceRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("serverless:security:ServiceRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            name,
            name=args.role_name,
            description=args.description,
            assume_role_policy=json.dumps(service_trust_policy(args.service, args.account_id)),
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            name=f"{args.role_name}-policy",
            role=self.role.id,
            policy=pulumi.Output.from_input(args.policy).apply(_to_json),
            opts=child,
        )
        self.register_outputs({"role_arn": self.role.arn})


def _to_json(policy: Any) -> str:
    return json.dumps(policy, sort_keys=True)
