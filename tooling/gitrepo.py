"""The one git helper of the tooling, run with the git executable.

The orchestrator records the commit of every update, reads the manifest as it was at a
revision, runs a rollback from a temporary detached worktree (removed afterwards, even when the
update fails) and asks which files changed since a base commit (CI's change detection and
`--affected`); `synth --diff` synthesizes a ref in a worktree the same way.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tooling.orchestrator.targets import UnavailableError


class GitError(Exception):
    """A git command failed; the message is git's own explanation."""


class GitRepo:
    """A git working tree rooted at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        executable = shutil.which("git")
        if executable is None:
            raise UnavailableError(
                "git is needed to record the commit of every update and to roll a layer back, "
                "and it is not on PATH: install git (https://git-scm.com/downloads) and run "
                "the session again from inside the repository's clone."
            )
        self._git = executable

    def run(self, *args: str, cwd: Path | None = None) -> str:
        result = subprocess.run(  # noqa: S603 (fixed git executable, arguments are ours)
            [self._git, *args],
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            detail = result.stderr.strip() or result.stdout.strip()
            raise GitError(f"git {' '.join(args)}: {detail}")
        return result.stdout

    def head(self) -> str | None:
        """The checked-out commit, or None outside a repository or before the first commit."""
        try:
            return self.run("rev-parse", "--verify", "HEAD").strip()
        except GitError:
            return None

    def is_dirty(self) -> bool:
        """Whether tracked or untracked files differ from HEAD (the deploy is not exactly it)."""
        try:
            return bool(self.run("status", "--porcelain").strip())
        except GitError:
            return False

    def resolve(self, ref: str) -> str:
        """The full commit id `ref` names; GitError when it names none."""
        return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()

    def show(self, rev: str, path: str) -> str:
        """The text of `path` at `rev`."""
        return self.run("show", f"{rev}:{path}")

    def changed_files(self, base: str, head: str = "HEAD") -> list[str]:
        """Files changed on `head` since it forked from `base` (what a pull request changes)."""
        output = self.run("diff", "--name-only", f"{base}...{head}")
        return [line for line in output.splitlines() if line]

    def changed_in_working_tree(self, base: str) -> list[str]:
        """Files that differ between the working tree and the merge base of `base` and HEAD:
        committed, staged, unstaged and untracked (not ignored) changes alike, sorted."""
        fork = self.run("merge-base", base, "HEAD").strip()
        changed = self.run("diff", "--name-only", fork).splitlines()
        untracked = self.run("ls-files", "--others", "--exclude-standard").splitlines()
        return sorted({line for line in [*changed, *untracked] if line})

    def files(self, paths: Sequence[str]) -> list[str]:
        """Tracked and untracked (not ignored) files under `paths` that exist, sorted."""
        listed = self.run(
            "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *paths
        )
        return sorted(
            {name for name in listed.split("\0") if name and (self.root / name).is_file()}
        )

    @contextmanager
    def worktree(self, rev: str, *, prefix: str = "orchestrator-rollback-") -> Iterator[Path]:
        """A detached worktree at `rev` in a temporary directory, removed on exit."""
        parent = Path(tempfile.mkdtemp(prefix=prefix))
        path = parent / rev[:12]
        self.run("worktree", "add", "--detach", str(path), rev)
        try:
            yield path
        finally:
            try:
                self.run("worktree", "remove", "--force", str(path))
            finally:
                # Anything git left (an untracked symlink, a partial checkout) goes too.
                shutil.rmtree(parent, ignore_errors=True)
                self.run("worktree", "prune")
