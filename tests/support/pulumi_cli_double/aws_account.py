"""Two refusals of AWS that the double plays, since no provider or cloud runs behind it.

Both are what an orchestrator has to get right for a throwaway environment, and neither shows
under the SDK's mocks:

- DynamoDB refuses DeleteTable while the table's deletion protection is on. AWS: "Table can't
  be deleted while DeletionProtectionEnabled is set to True" (DeleteTable; moto 5.2.5 answers a
  ValidationException with that text); terraform-provider-aws wraps it as
  `deleting DynamoDB Table (<name>): ...`.
- Secrets Manager keeps a deleted secret's name reserved for its recovery window (7-30 days;
  `ForceDeleteWithoutRecovery` or a window of 0 frees it at once): CreateSecret with that name
  fails with InvalidRequestException "You can't create this secret because a secret with this
  name is already scheduled for deletion." (Secrets Manager DeleteSecret and CreateSecret API
  references).

The account's memory (secrets scheduled for deletion) is a JSON file named by
PULUMI_DOUBLE_AWS_ACCOUNT; without it, only the checks that need no memory apply.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ACCOUNT_VARIABLE = "PULUMI_DOUBLE_AWS_ACCOUNT"
TABLE = "aws:dynamodb/table:Table"
SECRET = "aws:secretsmanager/secret:Secret"
DEFAULT_RECOVERY_WINDOW_DAYS = 30


class AwsRefusalError(Exception):
    """AWS refused the step; the message is the provider's error."""


def _request_id() -> str:
    return str(uuid.uuid4())


class Account:
    """What the double remembers of the AWS account between commands."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        path = environ.get(ACCOUNT_VARIABLE)
        self.path = Path(path) if path else None

    def _load(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return {"scheduled_secret_deletions": {}}
        document: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return document

    def _save(self, document: Mapping[str, Any]) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(document, indent=2), encoding="utf-8")

    def check_create(self, typ: str, outputs: Mapping[str, Any]) -> None:
        if typ != SECRET:
            return
        name = str(outputs.get("name") or "")
        scheduled = self._load()["scheduled_secret_deletions"].get(name)
        if scheduled and datetime.fromisoformat(scheduled) > datetime.now(UTC):
            raise AwsRefusalError(
                f"creating Secrets Manager Secret ({name}): operation error Secrets Manager: "
                f"CreateSecret, https response error StatusCode: 400, RequestID: {_request_id()}, "
                "InvalidRequestException: You can't create this secret because a secret with "
                "this name is already scheduled for deletion."
            )

    def delete(self, typ: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        """Delete the resource in the account, or raise AwsRefusalError as AWS would."""
        if typ == TABLE and inputs.get("deletionProtectionEnabled") is True:
            name = outputs.get("name") or inputs.get("name")
            raise AwsRefusalError(
                f"deleting DynamoDB Table ({name}): operation error DynamoDB: DeleteTable, https "
                f"response error StatusCode: 400, RequestID: {_request_id()}, api error "
                f"ValidationException: 1 validation error detected: Table '{name}' can't be "
                "deleted while DeletionProtectionEnabled is set to True"
            )
        if typ == SECRET:
            force = inputs.get("forceOverwriteReplicaSecret") is None and inputs.get(
                "recoveryWindowInDays"
            ) in (0, "0")
            if force:
                return
            days = int(inputs.get("recoveryWindowInDays") or DEFAULT_RECOVERY_WINDOW_DAYS)
            document = self._load()
            until = datetime.now(UTC) + timedelta(days=days)
            document["scheduled_secret_deletions"][str(outputs.get("name"))] = until.isoformat()
            self._save(document)
