"""The DIY file backend's layout, as pulumi/pulumi's pkg/backend/diy writes it.

Under the backend's directory (PULUMI_BACKEND_URL=file://<dir>):

- `.pulumi/meta.yaml`: `version: 1` (project mode) for a new store (meta.go, ensurePulumiMeta);
- `.pulumi/stacks/<project>/<stack>.json`: the checkpoint, `{"version": 3, "checkpoint":
  {"stack": "organization/<project>/<stack>", "latest": <deployment>}}`, compact JSON; the
  previous one is kept as `<stack>.json.bak` (state.go, saveCheckpoint/backupTarget);
- `.pulumi/history/<project>/<stack>/<stack>-<unixnano>.history.json` and `.checkpoint.json`, one
  pair per update, newest last by name (state.go, addToHistory/getHistory);
- `.pulumi/backups/<project>/<stack>/<stack>.<unixnano>.json` after each update (backupStack);
- `.pulumi/locks/organization/<project>/<stack>/<uuid>.json` while an update, destroy, refresh,
  stack creation or removal runs (lock.go).

Stack names (store.go, projectReferenceStore.ParseReference): `<stack>`, `<org>/<stack>` or
`<org>/<project>/<stack>`, where the organization must be `organization`, the project a valid
project name and the stack name 1-100 of `A-Za-z0-9_.-` (sdk/go/common/tokens).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from tests.support.pulumi_cli_double.errors import CliError

DIY_ORGANIZATION = "organization"
STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]*")
PROJECT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
DEFAULT_CLOUD_URL = "https://api.pulumi.com"


@dataclass(frozen=True)
class StackRef:
    """A stack of the file backend: project-scoped, organization always `organization`."""

    project: str
    name: str

    @property
    def fully_qualified(self) -> str:
        return f"{DIY_ORGANIZATION}/{self.project}/{self.name}"

    def shown(self, current_project: str | None, *, fully_qualify: bool = False) -> str:
        """How the CLI prints it: the short name inside its own project (diyBackendReference)."""
        if not fully_qualify and current_project == self.project:
            return self.name
        return self.fully_qualified


def validate_stack_name(name: str) -> None:
    """tokens.ParseStackName's rules and messages."""
    if not name:
        raise CliError("a stack name may not be empty")
    if len(name) > 100:
        raise CliError("a stack name cannot exceed 100 characters")
    match = STACK_NAME.match(name)
    end = match.end() if match else 0
    if end != len(name):
        raise CliError(
            "a stack name may only contain alphanumeric, hyphens, underscores, or periods: "
            f"invalid character {name[end]!r} at position {end}"
        )


def parse_stack_ref(text: str, current_project: str | None) -> StackRef:
    """projectReferenceStore.ParseReference: organization must be `organization`."""
    if text == "":
        raise CliError("stack name must not be empty")
    parts = text.split("/")
    org, project, name = "", "", ""
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        org, name = parts
    elif len(parts) == 3:
        org, project, name = parts
    else:
        # More slashes than org/project/stack: the last part is not a valid stack name.
        org, project, name = parts[0], parts[1], "/".join(parts[2:])
    if org and org != DIY_ORGANIZATION:
        raise CliError("organization name must be 'organization'")
    if not project:
        if current_project is None:
            raise CliError(
                "if you're using the --stack flag, pass the fully qualified name "
                "(organization/project/stack)"
            )
        project = current_project
    if not PROJECT_NAME.match(project):
        raise CliError(
            "project names may only contain alphanumerics, hyphens, underscores, and periods"
        )
    validate_stack_name(name)
    return StackRef(project, name)


def check_project(ref: StackRef, current_project: str) -> None:
    """Creating or updating a stack of another project from this one is refused
    (backend.CurrentProjectContradictsWorkspace)."""
    if ref.project != current_project:
        raise CliError(
            f"provided project name {ref.project!r} doesn't match Pulumi.yaml "
            f"(project {current_project!r})"
        )


def backend_url(environ: Mapping[str, str], project_backend: str | None) -> str:
    """The backend a command uses: PULUMI_BACKEND_URL, the project's `backend.url`, or the
    login stored in $PULUMI_HOME/credentials.json (pkg/workspace, GetCurrentCloudURL)."""
    url = environ.get("PULUMI_BACKEND_URL") or project_backend
    if url:
        return url
    credentials = pulumi_home(environ) / "credentials.json"
    if credentials.exists():
        current = json.loads(credentials.read_text(encoding="utf-8")).get("current")
        if current:
            return str(current)
    return DEFAULT_CLOUD_URL


def pulumi_home(environ: Mapping[str, str]) -> Path:
    """$PULUMI_HOME, else ~/.pulumi (sdk/go/common/workspace/paths.go, GetPulumiHomeDir)."""
    home = environ.get("PULUMI_HOME")
    return Path(home) if home else Path(environ.get("HOME", str(Path.home()))) / ".pulumi"


def _now_nanos() -> int:
    return time.time_ns()


def format_time(moment: datetime) -> str:
    """The JSON time format the CLI prints and the SDK parses (`%Y-%m-%dT%H:%M:%S.%fZ`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def _dump(document: Any) -> str:
    # The diy backend writes compact JSON without HTML escaping (state.go, compactJSONMarshaler).
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


class FileBackend:
    """A `file://` backend directory."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise CliError(
                f"the Pulumi CLI double only serves file:// backends, and the current backend is "
                f"{url}; set PULUMI_BACKEND_URL=file://<directory>"
            )
        raw = unquote(parsed.netloc + parsed.path)
        root = Path(raw).expanduser().resolve()
        if not root.is_dir():
            # gocloud's fileblob does not create the bucket's directory.
            raise CliError(
                f"unable to open bucket {url}: open blob.Bucket: stat {root}: no such file or "
                "directory"
            )
        self.url = url
        self.root = root
        self.pulumi = root / ".pulumi"
        self._ensure_meta()

    def _ensure_meta(self) -> None:
        meta = self.pulumi / "meta.yaml"
        if meta.exists():
            version = (yaml.safe_load(meta.read_text(encoding="utf-8")) or {}).get("version")
            if version != 1:
                raise CliError(
                    f"state store unsupported: 'meta.yaml' version ({version}) is not supported "
                    "by the Pulumi CLI double (project mode, version 1, only)"
                )
            return
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text("version: 1\n", encoding="utf-8")

    # Paths
    def stack_file(self, ref: StackRef) -> Path:
        return self.pulumi / "stacks" / ref.project / f"{ref.name}.json"

    def history_dir(self, ref: StackRef) -> Path:
        return self.pulumi / "history" / ref.project / ref.name

    def backup_dir(self, ref: StackRef) -> Path:
        return self.pulumi / "backups" / ref.project / ref.name

    def lock_dir(self, ref: StackRef) -> Path:
        return self.pulumi / "locks" / DIY_ORGANIZATION / ref.project / ref.name

    # Stacks
    def exists(self, ref: StackRef) -> bool:
        return self.stack_file(ref).exists()

    def stacks(self) -> list[StackRef]:
        found = []
        for path in sorted((self.pulumi / "stacks").glob("*/*.json")):
            found.append(StackRef(path.parent.name, path.stem))
        return found

    def create(self, ref: StackRef) -> None:
        with self.lock(ref):
            if self.exists(ref):
                # backenderr.StackAlreadyExistsError
                raise CliError(f"stack '{ref.fully_qualified}' already exists")
            self._write_checkpoint(ref, None)

    def checkpoint(self, ref: StackRef) -> dict[str, Any] | None:
        """The latest deployment (`resources`, `secrets_providers`, ...), None before any."""
        document = json.loads(self.stack_file(ref).read_text(encoding="utf-8"))
        latest: dict[str, Any] | None = document.get("checkpoint", {}).get("latest")
        return latest

    def _write_checkpoint(self, ref: StackRef, deployment: Mapping[str, Any] | None) -> None:
        path = self.stack_file(ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            shutil.copyfile(path, path.with_name(path.name + ".bak"))
        document = {
            "version": 3,
            "checkpoint": {"stack": ref.fully_qualified, "latest": deployment},
        }
        path.write_text(_dump(document) + "\n", encoding="utf-8")

    def save(self, ref: StackRef, deployment: Mapping[str, Any]) -> None:
        self._write_checkpoint(ref, deployment)

    def add_history(self, ref: StackRef, update: Mapping[str, Any]) -> None:
        """The update's record and a copy of the checkpoint it left, then a backup."""
        directory = self.history_dir(ref)
        directory.mkdir(parents=True, exist_ok=True)
        prefix = directory / f"{ref.name}-{_now_nanos()}"
        Path(f"{prefix}.history.json").write_text(_dump(update) + "\n", encoding="utf-8")
        shutil.copyfile(self.stack_file(ref), f"{prefix}.checkpoint.json")
        backups = self.backup_dir(ref)
        backups.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.stack_file(ref), backups / f"{ref.name}.{_now_nanos()}.json")

    def history(self, ref: StackRef, page_size: int, page: int) -> list[dict[str, Any]]:
        """Newest first; `page_size` <= 0 means every entry (getHistory)."""
        entries = sorted(self.history_dir(ref).glob("*.history.json"), reverse=True)
        if page_size > 0:
            page = max(page, 1)
            start = (page - 1) * page_size
            entries = entries[start : start + page_size]
        return [json.loads(path.read_text(encoding="utf-8")) for path in entries]

    def remove(self, ref: StackRef, *, remove_backups: bool) -> None:
        with self.lock(ref):
            stack_file = self.stack_file(ref)
            if remove_backups:
                stack_file.unlink(missing_ok=True)
                stack_file.with_name(stack_file.name + ".bak").unlink(missing_ok=True)
                shutil.rmtree(self.backup_dir(ref), ignore_errors=True)
            else:
                # The file is kept as <stack>.json.bak, as backupTarget(keepOriginal=false) does.
                stack_file.replace(stack_file.with_name(stack_file.name + ".bak"))
            shutil.rmtree(self.history_dir(ref), ignore_errors=True)

    # Locks
    @contextmanager
    def lock(self, ref: StackRef) -> Iterator[None]:
        """The stack's lock file while the block runs; a conflict is the CLI's error."""
        directory = self.lock_dir(ref)
        directory.mkdir(parents=True, exist_ok=True)
        self._check_unlocked(ref, ignore=None)
        own = directory / f"{uuid.uuid4()}.json"
        own.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "username": getpass.getuser(),
                    "hostname": socket.gethostname(),
                    "timestamp": datetime.now(UTC).isoformat(),
                }
            ),
            encoding="utf-8",
        )
        try:
            self._check_unlocked(ref, ignore=own)
            yield
        finally:
            own.unlink(missing_ok=True)

    def _check_unlocked(self, ref: StackRef, ignore: Path | None) -> None:
        others = sorted(p for p in self.lock_dir(ref).glob("*.json") if p != ignore)
        if not others:
            return
        lines = [
            f"the stack is currently locked by {len(others)} lock(s). Either wait for the other "
            "process(es) to end or delete the lock file with `pulumi cancel`."
        ]
        for path in others:
            content = json.loads(path.read_text(encoding="utf-8"))
            lines.append(
                f"  file://{path}: created by {content.get('username')}@{content.get('hostname')} "
                f"(pid {content.get('pid')}) at {content.get('timestamp')}"
            )
        if ignore is not None:
            ignore.unlink(missing_ok=True)
        raise CliError("\n".join(lines))

    def is_locked(self, ref: StackRef) -> bool:
        return any(self.lock_dir(ref).glob("*.json"))
