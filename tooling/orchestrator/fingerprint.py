"""Layer fingerprints: whether a layer's deployment could differ from its last successful one.

A layer's fingerprint is a SHA-256 over five parts, each itself a SHA-256:

- `code`: every file (tracked, or untracked and not ignored) under the layer's declared code
  paths (`Layer.code_paths`: its program, the functions it packages, lambdas/common/) and
  `SHARED_PATHS`, by path and content, as they are in the working tree. Stack settings files
  (stacks/<layer>/Pulumi.<stack>.yaml) are left out: they are the `config` part, per stack.
- `archives`: the SHA-256 of each built function archive the layer deploys (`nox -s build`).
- `config`: the stack's configuration as the engine keeps it (the settings file's values, a
  secret as its ciphertext, never decrypted) and what the target adds.
- `upstream`: the value of every output the layer consumes, read from the upstream stacks now
  (after an upstream layer ran in the same run, its new values).
- `pins`: the Pulumi SDK and AWS provider versions installed (constraints.txt pins them; the
  provider plugin's version follows the SDK package's).

It is written into the message of every update the orchestrator runs (`fingerprint=<hex>
parts=code:<8 hex>,...`), which Pulumi keeps in the stack's history, whoever reads it. A layer
is skipped only when the newest entry of its history is a successful update carrying exactly
the fingerprint computed now; anything else (never deployed, a failed or interrupted update, a
`pulumi up` or `refresh` run by hand without a fingerprint, a rollback, a destroy) runs it.

A value the layer consumes that is secret never enters a fingerprint (a hash of a
low-entropy secret can be brute-forced), so such a layer cannot be fingerprinted and always
runs; so does a layer whose archives are not built from the current tree (the update then
fails with the packaging error, which says to run `nox -s build`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Protocol

from shared.manifest import SHARED_PATHS, Layer
from shared.packaging import PackagingError, built_archive
from tooling.gitrepo import GitRepo
from tooling.orchestrator.engine import OutputValue, UpdateRecord

# The message fields: the whole digest, and each part's first 8 hex digits (enough to tell
# which part changed; the whole digest decides).
FINGERPRINT_FIELD = re.compile(r"\bfingerprint=([0-9a-f]{64})\b")
PARTS_FIELD = re.compile(r"\bparts=((?:[a-z]+:[0-9a-f]{8},?)+)")
SHORT = 12
PART_SHORT = 8

# Distributions whose version decides what an update does besides the repository's files.
PINNED_DISTRIBUTIONS = ("pulumi", "pulumi-aws")

# A stack settings file: its values are the `config` part of that stack's fingerprint.
STACK_SETTINGS = re.compile(r"^stacks/[^/]+/Pulumi\.[^/]+\.ya?ml$")


class Part(StrEnum):
    CODE = "code"
    ARCHIVES = "archives"
    CONFIG = "config"
    UPSTREAM = "upstream"
    PINS = "pins"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class Fingerprint:
    """The parts' digests; `digest` is the fingerprint itself."""

    parts: Mapping[Part, str]

    @property
    def digest(self) -> str:
        return _sha256(_canonical({part.value: self.parts[part] for part in Part}))

    @property
    def short(self) -> str:
        return self.digest[:SHORT]

    def message_fields(self) -> str:
        parts = ",".join(f"{part.value}:{self.parts[part][:PART_SHORT]}" for part in Part)
        return f"fingerprint={self.digest} parts={parts}"


@dataclass(frozen=True)
class Unfingerprintable:
    """Why no fingerprint can stand for this layer's deployment: it always runs."""

    reason: str


@dataclass(frozen=True)
class Recorded:
    """The fingerprint an update's message carries."""

    digest: str
    parts: Mapping[str, str]

    @classmethod
    def from_message(cls, message: str) -> Recorded | None:
        found = FINGERPRINT_FIELD.search(message)
        if found is None:
            return None
        listed = PARTS_FIELD.search(message)
        parts: dict[str, str] = {}
        if listed is not None:
            for item in listed.group(1).strip(",").split(","):
                name, _, short = item.partition(":")
                parts[name] = short
        return cls(found.group(1), parts)

    def changed_parts(self, current: Fingerprint) -> list[str]:
        """The parts whose short digest differs (all of them when none were recorded)."""
        return [
            part.value
            for part in Part
            if self.parts.get(part.value) != current.parts[part][:PART_SHORT]
        ]


class Sources(Protocol):
    """What a fingerprint reads besides the engine: the repository and the installed pins."""

    def code(self, layer: Layer) -> str:
        """Digest of the files under the layer's code paths and the shared paths."""
        ...

    def archives(self, layer: Layer) -> str:
        """Digest of the layer's built archives; PackagingError when one is missing or stale."""
        ...

    def pins(self) -> str:
        """Digest of the pinned SDK and provider versions installed."""
        ...


class RepoSources:
    """`Sources` read from a git working tree. A file is hashed again only when its size or
    modification time changed since this instance last hashed it."""

    def __init__(self, repo: GitRepo, build_dir: Path | None = None) -> None:
        self.repo = repo
        self.build_dir = build_dir
        self._file_digests: dict[str, tuple[int, int, str]] = {}

    def _file_digest(self, path: str) -> str:
        file = self.repo.root / path
        stat = file.stat()
        known = self._file_digests.get(path)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            return known[2]
        digest = _sha256(file.read_bytes())
        self._file_digests[path] = (stat.st_size, stat.st_mtime_ns, digest)
        return digest

    def code(self, layer: Layer) -> str:
        files = self.repo.files([*layer.code_paths, *SHARED_PATHS])
        listed = [
            (path, self._file_digest(path)) for path in files if not STACK_SETTINGS.match(path)
        ]
        return _sha256(_canonical(listed))

    def archives(self, layer: Layer) -> str:
        lambdas = self.repo.root / "lambdas"
        options = {"build_dir": self.build_dir} if self.build_dir is not None else {}
        digests = {
            function.name: built_archive(function.name, lambdas_dir=lambdas, **options).sha256_hex
            for function in layer.functions
        }
        return _sha256(_canonical(digests))

    def pins(self) -> str:
        versions = {name: _version(name) for name in PINNED_DISTRIBUTIONS}
        return _sha256(_canonical(versions))


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def fingerprint(
    layer: Layer,
    sources: Sources,
    configuration: Mapping[str, object],
    upstream_outputs: Mapping[str, Mapping[str, OutputValue]],
) -> Fingerprint | Unfingerprintable:
    """The layer's fingerprint now, given its stack's configuration and its upstreams' outputs."""
    consumed: dict[str, object] = {}
    for upstream, key in layer.consumed_keys():
        value = upstream_outputs.get(upstream, {}).get(key)
        if value is not None and value.secret:
            return Unfingerprintable(
                f"it consumes the secret output {upstream}.{key}, whose value never enters a "
                "fingerprint"
            )
        consumed[f"{upstream}.{key}"] = None if value is None else value.value
    try:
        archives = sources.archives(layer)
    except PackagingError as error:
        return Unfingerprintable(f"its function archives are not built from this tree ({error})")
    return Fingerprint(
        {
            Part.CODE: sources.code(layer),
            Part.ARCHIVES: archives,
            Part.CONFIG: _sha256(_canonical(dict(configuration))),
            Part.UPSTREAM: _sha256(_canonical(consumed)),
            Part.PINS: sources.pins(),
        }
    )


@dataclass(frozen=True)
class Decision:
    """Whether a deploy runs the layer, and why (shown in the report)."""

    run: bool
    reason: str


def decide(
    current: Fingerprint | Unfingerprintable,
    history: Sequence[UpdateRecord],
    *,
    force: bool = False,
) -> Decision:
    """Run unless the newest history entry is a successful update with this fingerprint."""
    if force:
        return Decision(True, "forced (--force)")
    if isinstance(current, Unfingerprintable):
        return Decision(True, f"runs every time: {current.reason}")
    if not history:
        return Decision(True, "never deployed on this stack")
    latest = history[0]
    if latest.kind != "update":
        return Decision(
            True, f"the latest operation on the stack is a {latest.kind} ({latest.result})"
        )
    if latest.result != "succeeded":
        return Decision(True, f"the latest update {latest.result}")
    recorded = Recorded.from_message(latest.message)
    if recorded is None:
        rollback = " (a rollback)" if latest.message.startswith("rollback ") else ""
        return Decision(
            True,
            f"the latest update{rollback} carries no fingerprint: it ran outside a change-aware "
            "deploy, for example a `pulumi up` by hand",
        )
    if recorded.digest != current.digest:
        changed = ", ".join(recorded.changed_parts(current)) or "fingerprint"
        return Decision(True, f"changed since the latest update: {changed}")
    return Decision(False, f"unchanged since the latest update (fingerprint {current.short})")
