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
    # The role's exact name; with `outlives_stack`, the prefix IAM completes with a suffix.
    role_name: str
    service: str
    # None for services that send no aws:SourceAccount when assuming (see the policy).
    account_id: str | None
    description: str
    policy: pulumi.Input[PolicyDocument]
    # A role that must outlive its stack (something outside the stack keeps using it) is left
    # in place by `pulumi destroy`; it then needs a name a later deployment cannot collide with.
    outlives_stack: bool = False


class ServiceRole(pulumi.ComponentResource):
    """`aws.iam.Role` trusted by one service (this account only) plus its inline policy."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy

    def __init__(
        self, name: str, args: ServiceRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("serverless:security:ServiceRole", name, None, opts)
        # Children do not inherit retain_on_delete from their parent: set it on each.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=args.outlives_stack or None)
        self.role = aws.iam.Role(
            name,
            name=None if args.outlives_stack else args.role_name,
            name_prefix=args.role_name if args.outlives_stack else None,
            description=args.description,
            assume_role_policy=json.dumps(service_trust_policy(args.service, args.account_id)),
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            name=f"{args.role_name.rstrip('-')}-policy",
            role=self.role.id,
            policy=pulumi.Output.from_input(args.policy).apply(_to_json),
            opts=child,
        )
        self.register_outputs({"role_arn": self.role.arn})


def _to_json(policy: Any) -> str:
    return json.dumps(policy, sort_keys=True)
