"""`--diff`: what a change adds, removes and modifies per layer, against a git revision."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.manifest import MANIFEST
from tooling.mock_engine import LayerRun
from tooling.synth.diff import DiffError, compare, inventories_at
from tooling.synth.inventory import layer_inventory


@pytest.fixture(scope="module")
def before(chain: dict[str, LayerRun]) -> dict[str, dict[str, Any]]:
    return {name: layer_inventory(run) for name, run in chain.items()}


def _resource(inventory: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in inventory["resources"] if r["name"] == name and r["custom"])


def test_diff_reports_an_added_a_removed_and_a_changed_resource(
    before: dict[str, dict[str, Any]],
) -> None:
    after = copy.deepcopy(before)
    # storage: the table loses deletion protection (changed)
    table = _resource(after["storage"], "idempotency-table")
    table["properties"]["deletionProtectionEnabled"] = False
    # api: the web ACL association is gone (removed)
    after["api"]["resources"] = [
        r for r in after["api"]["resources"] if r["name"] != "web-acl-association"
    ]
    # observability: a new alarm (added)
    alarm = copy.deepcopy(_resource(after["observability"], "api-5xx-alarm"))
    alarm["name"] = "api-4xx-alarm"
    after["observability"]["resources"].append(alarm)

    diffs = {d.layer: d for d in compare(before, after, MANIFEST.order)}
    assert list(diffs) == list(MANIFEST.order)
    assert diffs["security"].empty and diffs["compute"].empty
    storage = diffs["storage"]
    assert (storage.added, storage.removed) == ([], [])
    [modified] = storage.modified
    assert (modified.type, modified.name) == ("aws:dynamodb/table:Table", "idempotency-table")
    assert [(c.key, c.before, c.after) for c in modified.changes] == [
        ("deletionProtectionEnabled", True, False)
    ]
    assert diffs["api"].removed == [
        ("aws:wafv2/webAclAssociation:WebAclAssociation", "web-acl-association")
    ]
    assert diffs["api"].added == [] and diffs["api"].modified == []
    assert diffs["observability"].added == [
        ("aws:cloudwatch/metricAlarm:MetricAlarm", "api-4xx-alarm")
    ]


def test_a_layer_missing_at_the_ref_counts_every_resource_as_added(
    before: dict[str, dict[str, Any]],
) -> None:
    older = {name: inv for name, inv in before.items() if name != "observability"}
    [diff] = [d for d in compare(older, before, MANIFEST.order) if not d.empty]
    assert diff.layer == "observability"
    assert len(diff.added) == len(before["observability"]["resources"])
    assert "not synthesized at the ref" in diff.note


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    result = subprocess.run(  # noqa: S603 (git with fixed arguments on a temporary repo)
        [*command, *args], check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def test_the_ref_is_synthesized_in_a_temporary_worktree_that_is_removed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "version.txt").write_text("one\n", encoding="utf-8")
    _git(repo, "add", "version.txt")
    _git(repo, "commit", "-q", "-m", "one")
    _git(repo, "tag", "v1")
    (repo / "version.txt").write_text("two\n", encoding="utf-8")
    _git(repo, "commit", "-q", "-am", "two")
    seen: list[Path] = []

    def runner(checkout: Path, out_dir: Path) -> None:
        # Stands in for `python -m tooling.synth --inventory-only` in the checkout.
        seen.append(checkout)
        version = (checkout / "version.txt").read_text(encoding="utf-8").strip()
        inventory = {"layer": "security", "order": 0, "resources": [], "version": version}
        (out_dir / "security.json").write_text(json.dumps(inventory), encoding="utf-8")
        (out_dir / "failed.txt").write_text("compute: broken at this ref\n", encoding="utf-8")

    inventories, failed = inventories_at("v1", repo=repo, runner=runner)
    assert inventories["security"]["version"] == "one"
    assert failed == ["compute: broken at this ref"]
    assert not seen[0].exists()
    assert _git(repo, "worktree", "list").count("\n") == 0  # only the main checkout is left
    assert (repo / "version.txt").read_text(encoding="utf-8") == "two\n"


def test_an_unknown_ref_is_reported(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    with pytest.raises(DiffError, match="no-such-ref"):
        inventories_at("no-such-ref", repo=repo, runner=lambda checkout, out: None)


def test_the_current_commit_synthesizes_in_a_worktree_subprocess() -> None:
    # The real path: `git worktree add --detach`, then synth --inventory-only in a subprocess
    # (the ref's own tooling/synth, or this checkout's over the ref's programs).
    inventories, failed = inventories_at("HEAD")
    assert "security" in inventories, failed
    assert inventories["security"]["placeholder"] is True
    assert any(r["type"] == "aws:kms/key:Key" for r in inventories["security"]["resources"])
