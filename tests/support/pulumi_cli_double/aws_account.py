"""The AWS account behind the double: what exists there, and two refusals it plays.

No provider or cloud runs behind the double, so the account is a memory of what the double's
updates did to it, which is what a refresh reads and what a team changes out of band:

- Every resource an update creates or updates is recorded by URN with its type, id and
  properties (its outputs, which hold its inputs too); a delete removes it (unless
  `retainOnDelete`, which leaves it in the account, as the engine does). A secret property is
  kept as a SHA-256 digest of its value, never in the clear: enough to tell whether it changed.
- `change_out_of_band` and `delete_out_of_band` play someone changing a resource in the
  console or with the AWS CLI; `find` gives a test the URN of a resource by type and name.
  A `pulumi up` does not repair such a change (it compares the program with the state, not
  with the cloud); `pulumi refresh` finds it (engine.py, plan_refresh).
- A resource the account never recorded (deployed while PULUMI_DOUBLE_AWS_ACCOUNT was unset)
  reads as unchanged; one deleted out of band reads as gone.

The two refusals, which an orchestrator has to get right for a throwaway environment and which
do not show under the SDK's mocks:

- DynamoDB refuses DeleteTable while the table's deletion protection is on. AWS: "Table can't
  be deleted while DeletionProtectionEnabled is set to True" (DeleteTable; moto 5.2.5 answers a
  ValidationException with that text); terraform-provider-aws wraps it as
  `deleting DynamoDB Table (<name>): ...`.
- Secrets Manager keeps a deleted secret's name reserved for its recovery window (7-30 days;
  `ForceDeleteWithoutRecovery` or a window of 0 frees it at once): CreateSecret with that name
  fails with InvalidRequestException "You can't create this secret because a secret with this
  name is already scheduled for deletion." (Secrets Manager DeleteSecret and CreateSecret API
  references).

The account's memory is a JSON file named by PULUMI_DOUBLE_AWS_ACCOUNT, changed under an
exclusive file lock (the double's server runs commands in threads); without the variable, only
the checks that need no memory apply and every resource reads as unchanged.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.pulumi_cli_double.secrets import SECRET_SIG, SECRET_SIG_KEY

ACCOUNT_VARIABLE = "PULUMI_DOUBLE_AWS_ACCOUNT"
TABLE = "aws:dynamodb/table:Table"
SECRET = "aws:secretsmanager/secret:Secret"
DEFAULT_RECOVERY_WINDOW_DAYS = 30


class AwsRefusalError(Exception):
    """AWS refused the step; the message is the provider's error."""


def _request_id() -> str:
    return str(uuid.uuid4())


def as_kept(value: Any) -> Any:
    """A property value as the account keeps it: a secret as the digest of its value."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG and "value" in value:
            canonical = json.dumps(value["value"], sort_keys=True, separators=(",", ":"))
            return {
                SECRET_SIG_KEY: SECRET_SIG,
                "sha256": hashlib.sha256(canonical.encode()).hexdigest(),
            }
        return {key: as_kept(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_kept(item) for item in value]
    return value


@dataclass(frozen=True)
class Reading:
    """What the account says of a resource: `known` is False when it never recorded it;
    `properties` is None when the resource is gone."""

    known: bool
    properties: dict[str, Any] | None = None


class Account:
    """What the double remembers of the AWS account between commands."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        path = environ.get(ACCOUNT_VARIABLE)
        self.path = Path(path) if path else None

    @classmethod
    def at(cls, path: Path) -> Account:
        """The account whose memory is `path` (what a test changes out of band)."""
        return cls({ACCOUNT_VARIABLE: str(path)})

    def _load(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.path is not None and self.path.exists():
            document = json.loads(self.path.read_text(encoding="utf-8"))
        document.setdefault("scheduled_secret_deletions", {})
        document.setdefault("resources", {})
        document.setdefault("deleted", [])
        return document

    @contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """The memory, saved when the block ends, under an exclusive lock of the account."""
        if self.path is None:
            yield self._load()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_name(self.path.name + ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                document = self._load()
                yield document
                partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex}")
                partial.write_text(json.dumps(document, indent=2), encoding="utf-8")
                partial.replace(self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # What the double's updates do to the account
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

    def record(self, urn: str, typ: str, resource_id: str, outputs: Mapping[str, Any]) -> None:
        """A create or update the account carried out: the resource as it now exists."""
        if self.path is None:
            return
        with self._editing() as document:
            document["resources"][urn] = {
                "type": typ,
                "id": resource_id,
                "properties": as_kept(dict(outputs)),
            }
            if urn in document["deleted"]:
                document["deleted"].remove(urn)

    def delete(
        self, urn: str, typ: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any]
    ) -> None:
        """Delete the resource in the account, or raise AwsRefusalError as AWS would."""
        if typ == TABLE and inputs.get("deletionProtectionEnabled") is True:
            name = outputs.get("name") or inputs.get("name")
            raise AwsRefusalError(
                f"deleting DynamoDB Table ({name}): operation error DynamoDB: DeleteTable, https "
                f"response error StatusCode: 400, RequestID: {_request_id()}, api error "
                f"ValidationException: 1 validation error detected: Table '{name}' can't be "
                "deleted while DeletionProtectionEnabled is set to True"
            )
        with self._editing() as document:
            document["resources"].pop(urn, None)
            if typ == SECRET:
                force = inputs.get("forceOverwriteReplicaSecret") is None and inputs.get(
                    "recoveryWindowInDays"
                ) in (0, "0")
                if not force:
                    days = int(inputs.get("recoveryWindowInDays") or DEFAULT_RECOVERY_WINDOW_DAYS)
                    until = datetime.now(UTC) + timedelta(days=days)
                    name = str(outputs.get("name"))
                    document["scheduled_secret_deletions"][name] = until.isoformat()

    # What a refresh reads
    def read(self, urn: str) -> Reading:
        document = self._load()
        entry = document["resources"].get(urn)
        if entry is not None:
            return Reading(known=True, properties=dict(entry["properties"]))
        return Reading(known=urn in document["deleted"])

    # What a test does behind Pulumi's back
    def resources(self) -> dict[str, dict[str, Any]]:
        """URN -> {type, id, properties} of every resource the account holds."""
        resources: dict[str, dict[str, Any]] = self._load()["resources"]
        return resources

    def find(self, typ: str, name: str) -> str:
        """The URN of the resource of type `typ` whose logical name is `name`."""
        found = [
            urn
            for urn, entry in self.resources().items()
            if entry["type"] == typ and urn.rsplit("::", 1)[-1] == name
        ]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources of type {typ} are named {name!r}")
        return found[0]

    def change_out_of_band(self, urn: str, properties: Mapping[str, Any]) -> None:
        """Set `properties` of the resource (None removes one), as the console would."""
        with self._editing() as document:
            entry = document["resources"][urn]
            for key, value in properties.items():
                if value is None:
                    entry["properties"].pop(key, None)
                else:
                    entry["properties"][key] = as_kept(value)

    def delete_out_of_band(self, urn: str) -> None:
        """Delete the resource from the account, leaving every stack's state as it was."""
        with self._editing() as document:
            del document["resources"][urn]
            document["deleted"].append(urn)
