"""Will Lambda accept the reserved concurrency the layers are about to ask for?

Lambda refuses a reservation that would leave fewer than min(100, the account's concurrent
executions quota) executions unreserved in the region (Lambda documentation, "Configuring
reserved concurrency": "Lambda requires at least 100 unreserved concurrency" and, on accounts
whose quota is below that, keeps the whole quota unreserved; new accounts often have a quota of
10, so they can reserve nothing). The error arrives only when the function is created, after
the layers before it were deployed, so this check runs first and refuses with the quota, the
config keys and the ways out.

The layers' reservations are read from each layer's stack settings file
(`stacks/<layer>/Pulumi.<stack>.yaml`), falling back to the default its Pulumi.yaml declares, for
every key the programs read with `LayerConfig.reserved_concurrency` (they end in
`_reserved_concurrency`). The reservations this environment's functions hold now are released
by the same deploy, so they count as available.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from shared.config import NO_RESERVATION, RESERVED_CONCURRENCY_SUFFIX, read_schema
from shared.manifest import Layer
from shared.naming import APP_NAME

# Lambda keeps this many executions unreserved, or the whole quota when it is smaller.
UNRESERVED_FLOOR = 100
# The Service Quotas code of Lambda's "Concurrent executions" quota, for the message.
CONCURRENCY_QUOTA_CODE = "L-B99A9384"


class ConcurrencyRefusedError(Exception):
    """The account cannot hold the reservations; the message says why and what to do."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}. {fix}")
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class Reservation:
    """One config key's reservation, as the layer's program will read it."""

    layer: str
    key: str
    executions: int

    def __str__(self) -> str:
        return f"{self.layer}:{self.key} = {self.executions}"


class LambdaAccount(Protocol):
    """The two Lambda calls the check needs (a boto3 Lambda client has both)."""

    def get_account_settings(self) -> Mapping[str, Any]: ...

    def list_functions(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_function_concurrency(self, **kwargs: Any) -> Mapping[str, Any]: ...


def stack_settings(layer: Layer, stack: str) -> dict[str, Any]:
    """The `config:` block of the layer's Pulumi.<stack>.yaml; empty when there is none."""
    path = layer.directory / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return {}
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict(document.get("config") or {})


SettingsReader = Callable[[Layer, str], Mapping[str, Any]]


def planned_reservations(
    layers: Iterable[Layer], stack: str, *, settings_of: SettingsReader = stack_settings
) -> list[Reservation]:
    """Every reservation the layers' programs will make on `stack` (none for -1)."""
    planned = []
    for layer in layers:
        settings = settings_of(layer, stack)
        schema = read_schema(layer.directory / "Pulumi.yaml")
        for key, spec in schema.items():
            if not key.endswith(RESERVED_CONCURRENCY_SUFFIX):
                continue
            raw = settings.get(f"{layer.project}:{key}", spec.default)
            try:
                executions = int(raw)
            except (TypeError, ValueError):
                # The program itself reports a malformed value, naming the key.
                continue
            if executions != NO_RESERVATION:
                planned.append(Reservation(layer.name, key, executions))
    return planned


def environment_reservations(lambda_client: LambdaAccount, environment: str) -> int:
    """Executions this environment's functions reserve now (a deploy replaces them)."""
    prefix = f"{APP_NAME}-{environment}-"
    reserved = 0
    marker: str | None = None
    while True:
        page = lambda_client.list_functions(**({"Marker": marker} if marker else {}))
        for function in page.get("Functions", []):
            name = str(function["FunctionName"])
            if name.startswith(prefix):
                concurrency = lambda_client.get_function_concurrency(FunctionName=name)
                reserved += int(concurrency.get("ReservedConcurrentExecutions") or 0)
        marker = page.get("NextMarker")
        if not marker:
            return reserved


def check_reservations(
    lambda_client: LambdaAccount, planned: list[Reservation], environment: str, region: str
) -> str:
    """A one-line verdict when Lambda will accept `planned`; raise ConcurrencyRefused if not."""
    limits = lambda_client.get_account_settings()["AccountLimit"]
    quota = int(limits["ConcurrentExecutions"])
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    floor = min(UNRESERVED_FLOOR, quota)
    asked = sum(reservation.executions for reservation in planned)
    released = environment_reservations(lambda_client, environment) if asked else 0
    available = unreserved + released - floor
    if asked <= available:
        return (
            f"Lambda concurrency in {region}: quota {quota}, {asked} to reserve, "
            f"{available - asked} more could be reserved"
        )
    keys = ", ".join(str(reservation) for reservation in planned)
    raise ConcurrencyRefusedError(
        f"Lambda would refuse the reserved concurrency this deploy asks for: the account's "
        f"concurrent executions quota in {region} is {quota}, Lambda keeps "
        f"min({UNRESERVED_FLOOR}, {quota}) = {floor} of them unreserved, and "
        f"{unreserved + released} are free for this environment, so at most {max(available, 0)} "
        f"can be reserved, but the layers reserve {asked} ({keys})",
        f'Request a higher "Concurrent executions" quota (Service Quotas, code '
        f"{CONCURRENCY_QUOTA_CODE}), or lower those keys in the layers' stack configuration "
        "(`pulumi config set <key> -1` means no reservation; the policy pack then reports "
        "SLS.bounded-concurrency for that function, which you can suppress with your reason in "
        "policy/suppressions.yaml).",
    )
