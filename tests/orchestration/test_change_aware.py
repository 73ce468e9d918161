"""Change-aware deploys over the in-memory engine: a layer is skipped only when its fingerprint
equals the one recorded with its newest (successful) update, and never silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.manifest import MANIFEST, Layer, Manifest
from shared.packaging import ArchiveMismatchError
from tests.orchestration.conftest import Harness, HarnessFactory, SmallRepo, git
from tooling.orchestrator.automation import AutomationEngine
from tooling.orchestrator.engine import OutputValue
from tooling.orchestrator.fingerprint import (
    Fingerprint,
    Part,
    Recorded,
    Unfingerprintable,
    decide,
    fingerprint,
)
from tooling.orchestrator.memory import InMemoryEngine, SimulatedSources
from tooling.orchestrator.orchestrator import ExitCode
from tooling.orchestrator.report import RunReport, Status
from tooling.orchestrator.targets import AwsTarget, RefusedError


def _ran(h: Harness) -> list[str]:
    return [layer for _, layer in h.engine.operations("up")]


def _deployed(harness: HarnessFactory) -> Harness:
    h = harness()
    assert h.orchestrator.deploy_all().exit_code == ExitCode.OK
    h.engine.calls.clear()
    return h


def _reasons(report: RunReport) -> dict[str, str]:
    return {row.layer: row.reason for row in report.layers}


def _change_output(h: Harness, layer: str, key: str, value: str) -> None:
    outputs = {k: v.value for k, v in h.engine.outputs(layer).items()}
    outputs[key] = value
    h.engine.set_program(layer, outputs)


def test_a_no_op_deploy_all_runs_no_update_and_says_why(harness: HarnessFactory) -> None:
    h = _deployed(harness)
    recorded = {
        name: Recorded.from_message(h.engine.history(name)[0].message) for name in MANIFEST.order
    }

    report = h.orchestrator.deploy_all()

    assert _ran(h) == []
    assert report.exit_code == ExitCode.OK
    for row in report.layers:
        fingerprint = recorded[row.layer]
        assert fingerprint is not None
        assert (row.status, row.ran, row.fingerprint) == (
            Status.UNCHANGED,
            False,
            fingerprint.digest,
        )
        assert row.reason == (
            f"unchanged since the latest update (fingerprint {fingerprint.digest[:12]})"
        )
    # Nothing was written: the history has no new entry.
    assert all(len(h.engine.history(name)) == 1 for name in MANIFEST.order)


def test_force_runs_every_layer(harness: HarnessFactory) -> None:
    h = _deployed(harness)
    report = h.orchestrator.deploy_all(force=True)
    assert _ran(h) == list(MANIFEST.order)
    assert set(_reasons(report).values()) == {"forced (--force)"}


def test_a_hand_run_pulumi_up_between_two_deploy_alls_makes_that_layer_run(
    harness: HarnessFactory,
) -> None:
    h = _deployed(harness)
    # The storage team runs `pulumi up` in stacks/storage: same program, no fingerprint.
    h.engine.deploy_directly("storage", commit="abcdef1")
    h.engine.calls.clear()

    report = h.orchestrator.deploy_all()

    # Its outputs did not change, so nothing that consumes them runs.
    assert _ran(h) == ["storage"]
    assert "carries no fingerprint" in report.result("storage").reason
    assert "a `pulumi up` by hand" in report.result("storage").reason
    assert report.result("storage").ran
    assert not report.result("compute").ran


def test_a_changed_config_value_runs_only_that_layer(harness: HarnessFactory) -> None:
    h = _deployed(harness)
    h.engine.set_config("storage", "serverless-storage:force_destroy", "true")

    report = h.orchestrator.deploy_all()

    assert _ran(h) == ["storage"]
    assert report.result("storage").reason == "changed since the latest update: config"


def test_a_changed_consumed_output_runs_exactly_its_consumers(harness: HarnessFactory) -> None:
    h = _deployed(harness)
    _change_output(h, "compute", "api_handler_function_name", "renamed-handler")

    report = h.orchestrator.deploy_all()

    # compute's program changed; api and observability read the renamed function.
    assert _ran(h) == ["compute", "api", "observability"]
    assert report.result("compute").reason == "changed since the latest update: code"
    assert report.result("api").reason == "changed since the latest update: upstream"
    assert report.result("api").outputs_changed == []
    assert not report.result("security").ran and not report.result("storage").ran


def test_a_code_change_whose_outputs_stay_the_same_runs_that_layer_only(
    harness: HarnessFactory,
) -> None:
    h = _deployed(harness)
    h.engine.sources.edit("compute", archives=True)  # the API handler changed

    report = h.orchestrator.deploy_all()

    assert _ran(h) == ["compute"]
    assert report.result("compute").reason == "changed since the latest update: code, archives"
    assert report.result("api").reason.startswith("unchanged since the latest update")


def test_a_provider_pin_bump_runs_every_layer(harness: HarnessFactory) -> None:
    h = _deployed(harness)
    h.engine.sources.bump_pins()

    report = h.orchestrator.deploy_all()

    assert _ran(h) == list(MANIFEST.order)
    assert set(_reasons(report).values()) == {"changed since the latest update: pins"}


def test_a_failed_previous_update_runs_again_with_the_same_fingerprint(
    harness: HarnessFactory,
) -> None:
    h = _deployed(harness)
    h.engine.sources.edit("compute")
    h.engine.fail("compute", "error: InvalidParameterValueException: bad runtime")
    assert h.orchestrator.deploy_all().result("compute").status is Status.FAILED
    h.engine.calls.clear()

    report = h.orchestrator.deploy_all()

    assert _ran(h) == ["compute"]
    assert report.result("compute").reason == "the latest update failed"
    assert report.result("compute").ran
    # A later no-op run finds the successful update's fingerprint.
    h.engine.calls.clear()
    h.orchestrator.deploy_all()
    assert _ran(h) == []


def test_a_failed_update_records_no_fingerprint_in_the_report(harness: HarnessFactory) -> None:
    h = _deployed(harness)
    h.engine.sources.edit("storage")
    h.engine.fail("storage", "error: BucketAlreadyExists")
    row = h.orchestrator.deploy_all().result("storage")
    assert (row.status, row.fingerprint) == (Status.FAILED, None)


def test_a_layer_consuming_a_secret_output_always_runs(harness: HarnessFactory) -> None:
    h = harness()
    outputs = {key: value.value for key, value in h.engine.default_outputs("security").items()}
    h.engine.set_program("security", outputs, secret=("kms_key_arn",))
    h.orchestrator.deploy_all()
    h.engine.calls.clear()

    report = h.orchestrator.deploy_all()

    # Every consumer of kms_key_arn runs; the fingerprint never holds a secret's value.
    assert _ran(h) == ["storage", "compute", "api", "observability"]
    assert report.result("storage").reason == (
        "runs every time: it consumes the secret output security.kms_key_arn, whose value "
        "never enters a fingerprint"
    )
    assert all("kms" not in (row.fingerprint or "") for row in report.layers)


def test_stale_consumers_are_still_found_and_deploy_all_clears_them(
    harness: HarnessFactory,
) -> None:
    h = _deployed(harness)
    # The compute team renames the API function and deploys by hand.
    _change_output(h, "compute", "api_handler_function_name", "renamed-handler")
    h.engine.deploy_directly("compute", commit="abcdef1")
    assert h.orchestrator.status().stale_layers == ["api", "observability"]
    h.engine.calls.clear()

    report = h.orchestrator.deploy_all()

    # compute's update carries no fingerprint; its consumers read a changed value.
    assert _ran(h) == ["compute", "api", "observability"]
    assert report.result("api").reason == "changed since the latest update: upstream"
    assert h.orchestrator.status().stale_layers == []


def test_deploy_of_one_layer_skips_when_unchanged_and_runs_with_force(
    harness: HarnessFactory,
) -> None:
    h = _deployed(harness)
    assert h.orchestrator.deploy("storage").result("storage").ran is False
    assert _ran(h) == []
    assert h.orchestrator.deploy("storage", force=True).result("storage").ran is True
    assert _ran(h) == ["storage"]


def test_the_update_message_carries_the_fingerprint_and_each_part(
    harness: HarnessFactory,
) -> None:
    h = harness()
    h.orchestrator.deploy_all(["security"])
    message = h.engine.history("security")[0].message
    current = h.orchestrator.fingerprint("security")
    assert isinstance(current, Fingerprint)

    recorded = Recorded.from_message(message)

    assert recorded is not None
    assert recorded.digest == current.digest
    assert recorded.changed_parts(current) == []
    assert message.endswith(current.message_fields())
    assert "parts=code:" in message and ",pins:" in message


# The rollback, which runs from a worktree of an earlier commit


def test_a_rollback_makes_the_next_deploy_all_run_that_layer_again(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    small_repo.commit("c1")
    engine = InMemoryEngine(small_manifest)
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    h.orchestrator.deploy_all()
    small_repo.commit("c2")  # every program changed
    assert [row.ran for row in h.orchestrator.deploy_all().layers] == [True, True, True]
    assert h.orchestrator.rollback("security").exit_code == ExitCode.OK
    engine.calls.clear()

    report = h.orchestrator.deploy_all()

    assert [layer for _, layer in engine.operations("up")] == ["security"]
    assert "(a rollback) carries no fingerprint" in report.result("security").reason


def test_a_file_edit_in_the_working_tree_changes_the_code_part(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    small_repo.commit("c1")
    engine = InMemoryEngine(small_manifest)
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    h.orchestrator.deploy_all()
    engine.calls.clear()
    # Uncommitted, untracked and settings-file edits: only the first two are code.
    (small_repo.root / "stacks" / "storage" / "helpers.py").write_text("X = 1\n")
    (small_repo.root / "stacks" / "compute" / "Pulumi.prod.yaml").write_text("config: {}\n")

    report = h.orchestrator.deploy_all()

    assert [layer for _, layer in engine.operations("up")] == ["storage"]
    assert report.result("storage").reason == "changed since the latest update: code"


# Selecting by change: --affected


def _affected_repo(small_repo: SmallRepo) -> None:
    small_repo.commit("c1")
    git(small_repo.root, "branch", "-M", "main")
    git(small_repo.root, "checkout", "-q", "-b", "feature")


def test_affected_selects_the_changed_layer_and_its_downstream(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    _affected_repo(small_repo)
    program: Path = small_repo.root / "stacks" / "storage" / "__main__.py"
    program.write_text('"""storage, edited."""\n')
    h = harness(manifest=small_manifest, repo=small_repo.repo)

    plan = h.orchestrator.plan(affected="main")

    assert plan.considered == ["storage", "compute"]
    reasons = {row.layer: row.reason for row in plan.layers}
    assert reasons == {
        "security": "not reached by the change since main",
        "storage": "changed since main: stacks/storage/__main__.py",
        "compute": "downstream of storage, which the change reaches",
    }


def test_affected_with_an_unknown_ref_is_refused_with_what_to_do(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    _affected_repo(small_repo)
    h = harness(manifest=small_manifest, repo=small_repo.repo)
    with pytest.raises(RefusedError, match="--affected origin/nowhere: cannot compare"):
        h.orchestrator.deploy_all(affected="origin/nowhere")


def test_a_deploy_all_with_affected_runs_only_the_reached_layers(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    _affected_repo(small_repo)
    engine = InMemoryEngine(small_manifest)
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    h.orchestrator.deploy_all()
    engine.calls.clear()
    (small_repo.root / "stacks" / "compute" / "__main__.py").write_text('"""edited."""\n')

    report = h.orchestrator.deploy_all(affected="main")

    assert [row.layer for row in report.layers] == ["compute"]
    assert [layer for _, layer in engine.operations("up")] == ["compute"]
    assert report.result("compute").reason == "changed since the latest update: code"


def test_only_the_upstream_part_moves_when_a_consumed_value_does() -> None:
    storage = MANIFEST.layer("storage")
    sources = SimulatedSources()

    def of(kms_key_arn: str) -> Fingerprint:
        upstream = {"security": {"kms_key_arn": OutputValue(kms_key_arn)}}
        result = fingerprint(storage, sources, {"aws:region": "eu-west-1"}, upstream)
        assert isinstance(result, Fingerprint)
        return result

    before, after = of("arn:aws:kms:eu-west-1:1:key/a"), of("arn:aws:kms:eu-west-1:1:key/b")

    assert before.digest != after.digest
    assert [part for part in Part if before.parts[part] != after.parts[part]] == [Part.UPSTREAM]
    assert of("arn:aws:kms:eu-west-1:1:key/a") == before  # deterministic


def test_a_missing_archive_makes_a_layer_unfingerprintable(tmp_path: Path) -> None:
    class NotBuilt(SimulatedSources):
        def archives(self, layer: Layer) -> str:
            raise ArchiveMismatchError("build/lambda/api_handler.zip does not exist")

    result = fingerprint(MANIFEST.layer("compute"), NotBuilt(), {}, {})

    assert isinstance(result, Unfingerprintable)
    assert decide(result, []).reason.startswith(
        "runs every time: its function archives are not built from this tree"
    )


# What the real engine gives the fingerprint as the stack's configuration


def test_the_real_engine_reads_the_committed_settings_without_decrypting(
    tmp_path: Path,
) -> None:
    settings = tmp_path / "stacks" / "storage" / "Pulumi.dev.yaml"
    settings.parent.mkdir(parents=True)
    settings.write_text(
        "secretsprovider: awskms://alias/deploy\n"
        "config:\n"
        "  serverless-storage:force_destroy: 'false'\n"
        "  serverless-storage:api_key:\n"
        "    secure: v1:AbCdEf==\n"
        "environment:\n"
        "  - aws/dev\n",
        encoding="utf-8",
    )
    target = AwsTarget(repo_root=tmp_path, region="eu-west-1", credentials_probe=lambda _: "x")
    # Nothing here runs the CLI: the settings file is read as committed.
    engine = AutomationEngine(target, "dev", command_factory=_no_cli)

    assert engine.configuration("storage") == {
        "serverless-storage:force_destroy": "false",
        "serverless-storage:api_key": {"secure": "v1:AbCdEf=="},
        "(environment)": ["aws/dev"],
        "aws:region": "eu-west-1",
    }
    assert engine.configuration("compute") == {"aws:region": "eu-west-1"}


def _no_cli() -> Any:
    raise AssertionError("reading the configuration must not start the Pulumi CLI")
