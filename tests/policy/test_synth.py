"""Synth over the real layers and over a deliberately broken one."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from shared.manifest import MANIFEST
from tooling.mock_engine import LayerRun, run_layer
from tooling.synth import __main__ as synth_main
from tooling.synth.evaluate import evaluate
from tooling.synth.iam_lint import lint_document, lint_runs
from tooling.synth.inventory import REDACTED, layer_inventory, read_inventories, write_inventories


def test_the_five_real_layers_synthesize_with_zero_violations(chain: dict[str, LayerRun]) -> None:
    evaluation = evaluate(chain)
    assert evaluation.violations == [], "\n".join(v.line() for v in evaluation.violations)
    assert evaluation.undecided == []
    errors = [finding.line() for finding in lint_runs(chain) if finding.error]
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize("layer", MANIFEST.order)
def test_each_real_layer_alone_passes_the_pack_as_the_engine_runs_it(
    chain: dict[str, LayerRun], layer: str
) -> None:
    # The engine runs the pack per stack: a cross-layer check must not fail a stack only
    # because the other half of its pair is another layer's.
    evaluation = evaluate({layer: chain[layer]}, product_scope=False)
    assert evaluation.violations == [], "\n".join(v.line() for v in evaluation.violations)


def test_every_suppressed_finding_of_the_real_layers_carries_its_reason(
    chain: dict[str, LayerRun],
) -> None:
    for record in evaluate(chain).suppressed:
        assert len(record.reason.split()) >= 15, record


def test_the_broken_layer_is_caught_naming_layer_resource_and_control(
    broken_run: LayerRun,
) -> None:
    lines = {violation.line() for violation in evaluate({"broken_layer": broken_run}).violations}
    expected = [
        "broken_layer/open-bucket [S3.2]: bucket open-bucket-123 policy allows public read",
        "broken_layer/open-bucket [S3.8]: bucket open-bucket-123 has no BucketPublicAccessBlock",
        "broken_layer/anyone-invokes [Lambda.1]: permission anyone-invokes grants invoke to "
        "everyone ('*')",
        "broken_layer/admin-policy [IAM.1]: policy admin-policy statement #1 allows the action '*'",
        "broken_layer/open-bucket [Tags.required]: open-bucket lacks the required tags project",
    ]
    for fragment in expected:
        assert any(line.startswith(fragment) for line in lines), (fragment, sorted(lines))


def test_parliament_flags_a_misspelled_action(broken_run: LayerRun) -> None:
    findings = lint_runs({"broken_layer": broken_run})
    unknown = [f for f in findings if f.issue == "UNKNOWN_ACTION"]
    assert [(f.resource, f.error) for f in unknown] == [("admin-policy", True)]
    assert "s3:GetObjcet" in unknown[0].detail
    good = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    good += '"Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}'
    assert lint_document(good) == []


def test_trust_policies_are_linted_with_the_role_as_their_resource() -> None:
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    assert [f.issue for f in lint_document(trust, "identity")] == ["MALFORMED"]
    assert lint_document(trust, "trust", "arn:aws:iam::123456789012:role/r") == []


def test_synth_exits_non_zero_and_names_the_violation(
    broken_run: LayerRun,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(synth_main, "run_all_layers", lambda stack: {"broken_layer": broken_run})
    assert synth_main.main(["--out", str(tmp_path)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "broken_layer/anyone-invokes [Lambda.1]: permission anyone-invokes grants" in out
    assert "synth failed" in out
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["placeholder"] is True
    assert any(v["control_id"] == "IAM.1" for v in report["violations"])
    assert any(f["issue"] == "UNKNOWN_ACTION" and f["error"] for f in report["parliament"])


def test_synth_passes_on_the_real_layers_and_writes_every_inventory(
    chain: dict[str, LayerRun],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(synth_main, "run_all_layers", lambda stack: chain)
    assert synth_main.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "synth passed" in out
    assert "APIGateway.2" in out  # suppressions are listed beside the verdicts
    assert sorted(read_inventories(tmp_path)) == sorted(chain)


def test_inventory_lists_dependencies_and_parents_marks_placeholders_and_hides_secrets(
    chain: dict[str, LayerRun], tmp_path: Path
) -> None:
    inventories = {name: layer_inventory(run) for name, run in chain.items()}
    write_inventories(inventories, tmp_path)
    security = json.loads((tmp_path / "security.json").read_text(encoding="utf-8"))
    assert security["placeholder"] is True
    assert "never usable for a real deployment" in security["note"]
    by_name = {(r["type"], r["name"]): r for r in security["resources"]}
    policy = by_name[("aws:iam/rolePolicy:RolePolicy", "s3-processor-role-policy")]
    role = by_name[("aws:iam/role:Role", "s3-processor-role")]
    assert role["urn"] in policy["dependencies"]
    assert (
        policy["parent"] == by_name[("serverless:security:ServiceRole", "s3-processor-role")]["urn"]
    )
    # A value supplied as secret config is a Pulumi secret: redacted in the inventory.
    supplied = run_layer(MANIFEST.layer("security"), secret_config={"api_key": "supplied-value"})
    write_inventories({"security": layer_inventory(supplied)}, tmp_path / "supplied")
    text = (tmp_path / "supplied" / "security.json").read_text(encoding="utf-8")
    assert "supplied-value" not in text
    resources = json.loads(text)["resources"]
    (version,) = [r for r in resources if r["name"] == "app-secret-value"]
    assert version["properties"]["secretString"] == REDACTED
    compute = json.loads((tmp_path / "compute.json").read_text(encoding="utf-8"))
    functions = [r for r in compute["resources"] if r["type"] == "aws:lambda/function:Function"]
    assert all(f["properties"]["code"]["file"].startswith("build/lambda/") for f in functions)


def test_inventory_only_writes_the_layers_that_synthesize_and_names_the_rest(
    chain: dict[str, LayerRun], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_layer(layer, *, stack, upstream):  # type: ignore[no-untyped-def]
        if layer.name == "compute":
            raise RuntimeError("no source files")
        return copy.deepcopy(chain[layer.name])

    monkeypatch.setattr(synth_main, "run_layer", run_layer)
    assert synth_main.main(["--inventory-only", "--out", str(tmp_path)]) == 1
    assert sorted(read_inventories(tmp_path)) == ["security", "storage"]
    failed = (tmp_path / "failed.txt").read_text(encoding="utf-8")
    assert "compute: RuntimeError: no source files" in failed
    assert "api: upstream layer(s) compute did not synthesize" in failed
