"""rollback: the choice of revision, the worktree it runs from, the guard, and the report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.manifest import Manifest
from tests.orchestration.conftest import HarnessFactory, SmallRepo, git, manifest_source
from tooling.orchestrator.engine import UpdateRecord
from tooling.orchestrator.memory import InMemoryEngine
from tooling.orchestrator.orchestrator import ExitCode, choose_rollback_revision
from tooling.orchestrator.report import Status
from tooling.orchestrator.targets import RefusedError

WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def record(commit: str | None, result: str = "succeeded", kind: str = "update") -> UpdateRecord:
    return UpdateRecord(kind=kind, result=result, started_at=WHEN, message="", commit=commit)


def test_the_default_is_the_previous_successful_updates_commit() -> None:
    history = [record("c3"), record("c2"), record("c1")]  # newest first
    assert choose_rollback_revision(history, 1) == "c2"
    assert choose_rollback_revision(history, 2) == "c1"
    assert choose_rollback_revision(history, 3) is None


def test_failed_updates_and_other_kinds_are_not_revisions() -> None:
    history = [
        record("c3"),
        record("c9", result="failed"),
        record(None, kind="refresh"),
        record("c2", kind="destroy"),
        record("c2"),
    ]
    assert choose_rollback_revision(history, 1) == "c2"


def test_redeploys_of_one_commit_count_once() -> None:
    history = [record("c2"), record("c2"), record("c1"), record("c1"), record("c0")]
    assert choose_rollback_revision(history, 1) == "c1"
    assert choose_rollback_revision(history, 2) == "c0"


def test_after_a_failed_update_one_step_back_is_the_last_good_revision() -> None:
    history = [record("c3", result="failed"), record("c2"), record("c1")]
    assert choose_rollback_revision(history, 1) == "c2"
    assert choose_rollback_revision(history, 2) == "c1"


def test_updates_without_a_recorded_commit_are_skipped() -> None:
    history = [record("c2"), record(None), record("c1")]
    assert choose_rollback_revision(history, 1) == "c1"


def test_steps_below_one_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        choose_rollback_revision([record("c1")], 0)


def _deployed_twice(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> tuple[InMemoryEngine, str, str]:
    """Everything deployed at c1, then security redeployed at c2."""
    c1 = small_repo.commit("c1")
    engine = InMemoryEngine(small_manifest)
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    assert h.orchestrator.deploy_all().exit_code == ExitCode.OK
    c2 = small_repo.commit("c2")
    assert h.orchestrator.deploy("security").exit_code == ExitCode.OK
    return engine, c1, c2


def test_rollback_redeploys_the_previous_revision_from_a_removed_worktree(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    engine, c1, c2 = _deployed_twice(harness, small_repo, small_manifest)
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    engine.calls.clear()
    # An edit in the main checkout does not make the rollback's clean worktree dirty.
    (small_repo.root / "scratch.txt").write_text("work in progress\n", encoding="utf-8")

    report = h.orchestrator.rollback("security")

    assert report.exit_code == ExitCode.OK
    (call,) = [call for call in engine.calls if call.operation == "up"]
    assert call.layer == "security"
    assert call.program_dir is not None
    assert call.program_dir.parts[-2:] == ("stacks", "security")
    # The program that ran is the one committed at c1, not the checkout's (c2).
    assert engine.program_snapshots["security"] == '"""security program at c1."""\n'
    assert f"commit={c1}" in call.message
    assert "uncommitted" not in call.message
    assert engine.history("security")[0].commit == c1
    # The temporary worktree is gone, from disk and from git's list.
    assert not call.program_dir.exists()
    assert git(small_repo.root, "worktree", "list").count("\n") == 0
    row = report.result("security")
    assert row.commit == c1
    assert row.note.startswith(f"rolled back from {c2[:12]} to {c1[:12]}")


def test_rollback_twice_goes_forward_again(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    engine, _, c2 = _deployed_twice(harness, small_repo, small_manifest)
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    h.orchestrator.rollback("security")

    assert h.orchestrator.rollback_revision("security", to=None, steps=1) == c2


def test_rollback_to_names_a_revision_and_steps_counts_back(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    engine, c1, c2 = _deployed_twice(harness, small_repo, small_manifest)
    small_repo.commit("c3")
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    h.orchestrator.deploy("security")

    assert h.orchestrator.rollback_revision("security", to="HEAD~1", steps=1) == c2
    assert h.orchestrator.rollback_revision("security", to=None, steps=1) == c2
    assert h.orchestrator.rollback_revision("security", to=None, steps=2) == c1
    with pytest.raises(RefusedError, match="fewer than 4 successful updates"):
        h.orchestrator.rollback_revision("security", to=None, steps=3)
    with pytest.raises(RefusedError, match="names no commit"):
        h.orchestrator.rollback_revision("security", to="no-such-ref", steps=1)


def test_rollback_that_would_drop_a_consumed_key_is_refused(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    old = small_repo.commit(
        "old",
        manifest_source(security_outputs=("kms_alias_name",), storage_reads=(), compute_reads=()),
    )
    small_repo.commit("current")
    engine = InMemoryEngine(small_manifest)
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    h.orchestrator.deploy_all()
    engine.calls.clear()

    report = h.orchestrator.rollback("security", to=old)

    assert engine.operations("up") == []
    row = report.result("security")
    assert row.status is Status.REFUSED
    assert "storage consumes security.kms_key_arn" in row.note
    assert "compute consumes security.kms_key_arn" in row.note
    assert report.exit_code == ExitCode.REFUSED


def test_rollback_that_drops_an_unconsumed_key_runs(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    old = small_repo.commit("old", manifest_source(security_outputs=("kms_key_arn",)))
    small_repo.commit("current")
    engine = InMemoryEngine(small_manifest)
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    h.orchestrator.deploy_all()
    # The old program exports what its manifest promised: no kms_alias_name.
    engine.set_program("security", {"kms_key_arn": "local:security:kms_key_arn"})

    report = h.orchestrator.rollback("security", to=old)

    row = report.result("security")
    assert row.status is Status.SUCCEEDED
    assert row.outputs_changed == ["kms_alias_name"]
    assert report.exit_code == ExitCode.OK


def test_rollback_without_enough_history_is_refused(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    small_repo.commit("only")
    h = harness(manifest=small_manifest, repo=small_repo.repo)
    h.orchestrator.deploy_all()
    with pytest.raises(RefusedError, match="--to"):
        h.orchestrator.rollback("security")


def test_a_deploy_from_an_edited_checkout_says_so_in_its_message(
    harness: HarnessFactory, small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    commit = small_repo.commit("c1")
    engine = InMemoryEngine(small_manifest)
    h = harness(manifest=small_manifest, repo=small_repo.repo, engine=engine)
    (small_repo.root / "scratch.txt").write_text("work in progress\n", encoding="utf-8")
    assert h.orchestrator.deploy("security").exit_code == ExitCode.OK
    (call,) = [call for call in engine.calls if call.operation == "up"]
    assert f"commit={commit} with uncommitted changes; fingerprint=" in call.message
