"""What a change deploys: per layer, the resources added, removed and modified vs a git ref.

The ref is checked out with `git worktree add --detach` into a temporary folder and
synthesized in a subprocess with that checkout's own code (`python -m tooling.synth
--inventory-only`); a ref older than tooling/synth is synthesized by this checkout's tooling
over the ref's layer programs and shared/. The worktree is removed afterwards. Resources are
compared by (layer, type, logical name); a resource is modified when its input properties or
its parent differ (computed placeholders are not compared).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.manifest import REPO_ROOT
from tooling.gitrepo import GitError, GitRepo

Inventory = Mapping[str, Any]
# Runs synth at a checkout: (checkout folder, output folder) -> None; raises DiffError.
InventoryRunner = Callable[[Path, Path], None]

MAX_SHOWN_VALUE = 80


class DiffError(RuntimeError):
    """The ref could not be checked out or synthesized."""


@dataclass(frozen=True)
class Change:
    key: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Modified:
    type: str
    name: str
    changes: tuple[Change, ...]


@dataclass
class LayerDiff:
    layer: str
    added: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    modified: list[Modified] = field(default_factory=list)
    note: str = ""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.modified or self.note)


def _by_key(inventory: Inventory | None) -> dict[tuple[str, str], Mapping[str, Any]]:
    if inventory is None:
        return {}
    return {(r["type"], r["name"]): r for r in inventory.get("resources", [])}


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    old_props = before.get("properties") or {}
    new_props = after.get("properties") or {}
    for key in sorted(set(old_props) | set(new_props)):
        if old_props.get(key) != new_props.get(key):
            changes.append(Change(key, old_props.get(key), new_props.get(key)))
    if before.get("parent") != after.get("parent"):
        changes.append(Change("(parent)", before.get("parent"), after.get("parent")))
    return changes


def compare_layer(layer: str, before: Inventory | None, after: Inventory | None) -> LayerDiff:
    old, new = _by_key(before), _by_key(after)
    diff = LayerDiff(layer)
    if before is None:
        diff.note = "layer not synthesized at the ref: every resource counts as added"
    if after is None:
        diff.note = "layer not synthesized now: every resource counts as removed"
    diff.added = sorted(set(new) - set(old))
    diff.removed = sorted(set(old) - set(new))
    for key in sorted(set(old) & set(new)):
        changes = _changes(old[key], new[key])
        if changes:
            diff.modified.append(Modified(key[0], key[1], tuple(changes)))
    return diff


def compare(
    before: Mapping[str, Inventory], after: Mapping[str, Inventory], order: tuple[str, ...] = ()
) -> list[LayerDiff]:
    """One LayerDiff per layer present on either side, in `order` then any others."""
    layers = [*order, *sorted((set(before) | set(after)) - set(order))]
    return [
        compare_layer(layer, before.get(layer), after.get(layer))
        for layer in layers
        if layer in before or layer in after
    ]


def short(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 3] + "..."


@contextmanager
def worktree(ref: str, repo: Path = REPO_ROOT) -> Iterator[Path]:
    """A detached checkout of `ref` in a temporary folder, removed on exit."""
    git = GitRepo(repo)
    try:
        commit = git.resolve(ref)
    except GitError as error:
        raise DiffError(f"{ref!r} names no commit: {error}") from None
    try:
        with git.worktree(commit, prefix="synth-diff-") as checkout:
            yield checkout
    except GitError as error:
        raise DiffError(str(error)) from None


def run_inventory(checkout: Path, out_dir: Path) -> None:
    """Synthesize the checkout's layers into `out_dir` in a subprocess (see module docstring)."""
    _share_dependency_cache(checkout)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(checkout)}
    cwd = checkout
    if not (checkout / "tooling" / "synth" / "__main__.py").is_file():
        # This checkout's tooling over the ref's shared/ and stacks/: run from a shim folder
        # (first on sys.path) holding only our `tooling`; the ref's packages come after it.
        cwd = out_dir.parent / "shim"
        cwd.mkdir(parents=True, exist_ok=True)
        (cwd / "tooling").symlink_to(REPO_ROOT / "tooling", target_is_directory=True)
    if (checkout / "tooling" / "build.py").is_file():
        # The ref's programs may read archives built beforehand (and never build them): build
        # the ref's with the ref's own code. Older refs built them inside the programs.
        subprocess.run(
            [sys.executable, "-m", "tooling", "build"],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    command = [sys.executable, "-m", "tooling.synth", "--inventory-only", "--out", str(out_dir)]
    result = subprocess.run(  # noqa: S603 (our own interpreter and module)
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode not in (0, 1) or not any(out_dir.glob("*.json")):
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise DiffError(f"synthesizing the ref failed: {' / '.join(tail)}")


def _share_dependency_cache(checkout: Path) -> None:
    """Reuse this checkout's Lambda dependency cache (keyed by pins, so safe to share)."""
    cache = REPO_ROOT / "build" / "lambda-deps"
    if cache.is_dir():
        target = checkout / "build" / "lambda-deps"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(cache, target_is_directory=True)


def inventories_at(
    ref: str, repo: Path = REPO_ROOT, runner: InventoryRunner = run_inventory
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The layer inventories synthesized at `ref`, and the layers that failed there."""
    from tooling.synth.inventory import read_inventories

    with worktree(ref, repo) as checkout, tempfile.TemporaryDirectory() as scratch:
        out_dir = Path(scratch) / "out"
        out_dir.mkdir()
        runner(checkout, out_dir)
        failed_file = out_dir / "failed.txt"
        failed = (
            failed_file.read_text(encoding="utf-8").splitlines() if failed_file.is_file() else []
        )
        return read_inventories(out_dir), failed
