"""The pack as a whole: one mandatory policy per control, and the suppressions file."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
import yaml
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from policy.controls import CONTROLS
from policy.controls import control as control_by_id
from policy.model import FSBP, SCOPE_CONFIG, Finding, to_policy
from policy.pack import build_policies
from policy.suppressions import (
    SUPPRESSIONS_FILE,
    Suppressions,
    SuppressionsError,
    load_suppressions,
)
from shared.manifest import REPO_ROOT
from tests.policy.helpers import collector, resource_args

PACK_DIR = REPO_ROOT / "policy"

# The controls issue 6 lists, by id.
REQUIRED_CONTROLS = {
    *(f"S3.{n}" for n in (2, 3, 5, 6, 8, 9, 10, 11, 12, 13, 14, 17)),
    "Lambda.1",
    "Lambda.2",
    *(f"APIGateway.{n}" for n in (1, 3, 4, 5)),
    *(f"KMS.{n}" for n in (1, 2, 4, 5)),
    "SecretsManager.1",
    "SQS.1",
    "SQS.3",
    "SNS.1",
    "SNS.2",
    "SNS.4",
    "DynamoDB.1",
    "DynamoDB.2",
    "DynamoDB.6",
    "IAM.1",
    "IAM.21",
    "CloudWatch.15",
    "CloudWatch.17",
    "Logs.retention",
    "SLS.async-failure-destination",
    "SLS.bounded-concurrency",
    "SLS.tracing-json-logs",
    "SLS.alarms",
    "SLS.api-authorization",
    "Tags.required",
}


def test_one_mandatory_policy_per_control_named_and_described_by_its_id() -> None:
    policies = build_policies()
    assert {c.control_id for c in CONTROLS} == REQUIRED_CONTROLS
    assert len({p.name for p in policies}) == len(CONTROLS) == len(policies)
    for control, policy in zip(CONTROLS, policies, strict=True):
        assert policy.enforcement_level is EnforcementLevel.MANDATORY
        assert policy.description.startswith(f"{control.control_id} (")
        assert re.fullmatch(r"[a-z0-9-]+", policy.name)
        if control.framework == FSBP:
            # s3-5-tls-only-bucket-policy for S3.5: the id leads the name.
            slug = control.control_id.lower().replace(".", "-")
            assert policy.name.startswith(f"{slug}-"), (policy.name, control.control_id)
        if isinstance(policy, StackValidationPolicy):
            assert policy.config_schema is SCOPE_CONFIG


def test_suppressions_file_is_read_and_every_entry_gives_its_reason() -> None:
    suppressions = load_suppressions()
    entries = list(suppressions)
    assert {e.control_id for e in entries} >= {"APIGateway.2", "Lambda.3"}
    for entry in entries:
        assert len(entry.reason.split()) >= 15, f"{entry.control_id}: say why"
    implemented = {c.control_id for c in CONTROLS}
    for entry in entries:
        # A narrowed suppression must name a control the pack evaluates.
        if not entry.whole_control:
            assert entry.control_id in implemented


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("suppressions:\n  - control: S3.9\n", "gives no reason"),
        ("suppressions:\n  - reason: because it is so for a reason\n", "names no control"),
        ("suppressions:\n  - {control: S3.9, reason: a b c d e f, scope: x}\n", "unknown keys"),
        ("nothing: here\n", "list under `suppressions:`"),
    ],
)
def test_a_suppression_without_control_or_reason_is_refused(
    tmp_path: Path, text: str, error: str
) -> None:
    path = tmp_path / "suppressions.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SuppressionsError, match=re.escape(error)):
        load_suppressions(path)


def test_suppressions_match_by_exception_and_by_resource(tmp_path: Path) -> None:
    path = tmp_path / "suppressions.yaml"
    path.write_text(
        "suppressions:\n"
        "  - control: DynamoDB.6\n"
        "    resources: [{layer: storage, name: scratch-table}]\n"
        "    reason: the scratch table is rebuilt from the upload bucket on every deploy\n",
        encoding="utf-8",
    )
    suppressions = load_suppressions(path)
    assert suppressions.match(
        "DynamoDB.6", layer="storage", resource="scratch-table", exception=None
    )
    assert not suppressions.match("DynamoDB.6", layer="storage", resource="table", exception=None)
    policy = to_policy(control_by_id("DynamoDB.6"), suppressions)
    assert isinstance(policy, ResourceValidationPolicy)
    reported: list[str] = []
    for name in ("scratch-table", "idempotency-table"):
        args = resource_args("aws:dynamodb/table:Table", {}, name=name)
        policy.validate(args, collector(reported))
    assert len(reported) == 1
    assert "idempotency-table" in reported[0]


def test_exception_suppression_leaves_other_findings_of_the_control_reported() -> None:
    suppressions = load_suppressions()
    log_target = Finding("urn:pulumi:dev::serverless-storage::t::logs", "m", "log-delivery-target")
    plain = Finding("urn:pulumi:dev::serverless-storage::t::uploads", "m")
    assert suppressions.match(
        "S3.17", layer="storage", resource="logs", exception=log_target.exception
    )
    assert not suppressions.match("S3.17", layer="storage", resource="uploads", exception=None)
    assert plain.exception is None


def test_repository_file_is_the_one_the_pack_reads() -> None:
    expected = Path(__file__).resolve().parents[2] / "policy" / "suppressions.yaml"
    assert expected == SUPPRESSIONS_FILE
    assert isinstance(load_suppressions(), Suppressions)


def test_the_pack_entry_point_serves_every_policy_mandatory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: dict[str, Any] = {}

    def serve(**kwargs: Any) -> None:
        # The real PolicyPack starts the gRPC server the CLI talks to and never returns.
        served.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", serve)
    runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="__main__")
    assert served["name"] == "serverless-security-baseline"
    assert served["enforcement_level"] is EnforcementLevel.MANDATORY
    assert [p.name for p in served["policies"]] == [c.policy_name for c in CONTROLS]


def test_pack_project_file_uses_python_and_the_shared_environment() -> None:
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert project["runtime"]["name"] == "python"
    venv = (PACK_DIR / project["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == REPO_ROOT / ".venv"
