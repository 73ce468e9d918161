"""The project, the selected stack and its settings file, and stack configuration.

- The project is the nearest Pulumi.yaml upwards from the working directory (`--cwd` first)
  (sdk/go/common/workspace/paths.go, DetectProjectPathFrom); its `config:` block declares
  keys with types and defaults, which the CLI applies and checks before an update
  (ValidateStackConfigAndApplyProjectConfig, sdk/go/common/workspace/config.go).
- The selected stack lives in $PULUMI_HOME/workspaces/<project>-<sha1 of the project file
  path>-workspace.json (sdk/go/common/workspace/workspace.go), never in the project directory.
- Stack settings are Pulumi.<stack>.yaml next to Pulumi.yaml (or under its `stackConfigDir`),
  or the file `--config-file` names: `encryptionsalt` and `config:`, where a secret is
  `{secure: v1:...}` and a `--path` key such as `aws:endpoints[0].s3` becomes a structured
  value of the key `aws:endpoints` (pulumi config set-all reference page; resource property
  paths, sdk/go/common/resource/properties_path.go).
- A structured value reaches the program as JSON; a key holding any secure part is secret.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from tests.support.pulumi_cli_double.backend import StackRef, parse_stack_ref, pulumi_home
from tests.support.pulumi_cli_double.errors import CliError
from tests.support.pulumi_cli_double.secrets import PassphraseSecrets
from tests.support.pulumi_cli_double.surface import Parsed

PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml", "Pulumi.json")
SECURE = "secure"


class Stream(Protocol):
    """Where a command writes: sys.stdout, or the server's connection."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...

    def isatty(self) -> bool: ...


@dataclass
class Invocation:
    """One run of the CLI: its arguments, environment, working directory and streams."""

    argv: list[str]
    environ: Mapping[str, str]
    cwd: Path
    stdout: Stream
    stderr: Stream
    parsed: Parsed | None = None

    def out(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def err(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()


@dataclass
class Project:
    """A Pulumi.yaml and where it is."""

    path: Path
    document: dict[str, Any]

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return str(self.document["name"])

    @property
    def runtime(self) -> tuple[str, dict[str, Any]]:
        runtime = self.document.get("runtime")
        if isinstance(runtime, dict):
            return str(runtime.get("name")), dict(runtime.get("options") or {})
        return str(runtime), {}

    @property
    def program_dir(self) -> Path:
        """`main`, relative to Pulumi.yaml; the project directory by default (project file
        reference, https://www.pulumi.com/docs/iac/concepts/projects/project-file/)."""
        main = self.document.get("main")
        return (self.directory / main).resolve() if main else self.directory

    @property
    def backend_url(self) -> str | None:
        backend = self.document.get("backend") or {}
        return str(backend["url"]) if backend.get("url") else None

    def declared_config(self) -> dict[str, dict[str, Any]]:
        """The project's `config:` declarations, by full key (`<project>:<key>`)."""
        declared: dict[str, dict[str, Any]] = {}
        for key, spec in (self.document.get("config") or {}).items():
            full = key if ":" in key else f"{self.name}:{key}"
            declared[full] = spec if isinstance(spec, dict) else {"default": spec}
        return declared

    def settings_path(self, stack: StackRef, config_file: str | None, cwd: Path) -> Path:
        if config_file:
            return (cwd / config_file).resolve()
        directory = self.directory / str(self.document.get("stackConfigDir") or "")
        return directory / f"Pulumi.{stack.name}.yaml"


def find_project(start: Path) -> Project | None:
    """The nearest project file from `start` upwards."""
    for directory in (start, *start.parents):
        for name in PROJECT_FILES:
            path = directory / name
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                document = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
                if not isinstance(document, dict) or not document.get("name"):
                    raise CliError(f"could not read project file {path}: missing name")
                return Project(path, document)
    return None


def require_project(invocation: Invocation) -> Project:
    project = find_project(invocation.cwd)
    if project is None:
        # workspace.ErrProjectNotFound's message.
        raise CliError(
            f"no Pulumi.yaml project file found (searching upwards from {invocation.cwd}). If "
            "you have not created a project yet, use `pulumi new` to do so: no project file found"
        )
    return project


def _workspace_file(project: Project, environ: Mapping[str, str]) -> Path:
    digest = hashlib.sha1(str(project.path).encode(), usedforsecurity=False).hexdigest()
    return pulumi_home(environ) / "workspaces" / f"{project.name}-{digest}-workspace.json"


def selected_stack(project: Project, environ: Mapping[str, str]) -> str | None:
    path = _workspace_file(project, environ)
    if not path.exists():
        return None
    stack = json.loads(path.read_text(encoding="utf-8")).get("stack")
    return str(stack) if stack else None


def select_stack(project: Project, environ: Mapping[str, str], ref: StackRef) -> None:
    path = _workspace_file(project, environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stack": ref.fully_qualified}), encoding="utf-8")


def stack_ref_for(invocation: Invocation, project: Project) -> StackRef:
    """The stack named by `--stack`, else the selected one (cmdStack.RequireStack)."""
    assert invocation.parsed is not None
    name = invocation.parsed.value("stack") or selected_stack(project, invocation.environ)
    if not name:
        raise CliError(
            "no stack selected; please use `pulumi stack select` to choose one, or `pulumi stack "
            "init` to create one"
        )
    return parse_stack_ref(name, project.name)


# Property paths (`aws:endpoints[0].s3`, `a["b.c"]`)
_SEGMENT = re.compile(r'\.([^.\[\]]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')


def parse_path(key: str, project: str) -> tuple[str, list[str | int]]:
    """(config key, segments below it) for a `--path` key."""
    match = re.match(r"[^.\[]+", key)
    if match is None:
        raise CliError(f"invalid configuration key {key!r}")
    head = match.group(0)
    segments: list[str | int] = []
    position = match.end()
    while position < len(key):
        step = _SEGMENT.match(key, position)
        if step is None:
            raise CliError(f"invalid property path {key!r}: unexpected {key[position]!r}")
        name, index, quoted = step.groups()
        if index is not None:
            segments.append(int(index))
        else:
            segments.append(name if name is not None else quoted)
        position = step.end()
    return full_key(head, project), segments


def full_key(key: str, project: str) -> str:
    """`key` qualified with the project's namespace when it has none (config.ParseKey)."""
    return key if ":" in key else f"{project}:{key}"


def _set_at(container: Any, segments: list[str | int], value: Any, key: str) -> Any:
    if not segments:
        return value
    head, rest = segments[0], segments[1:]
    if isinstance(head, int):
        items = container if isinstance(container, list) else []
        if head > len(items):
            raise CliError(f"{key}: array index {head} out of range")
        if head == len(items):
            items.append(None)
        items[head] = _set_at(items[head], rest, value, key)
        return items
    mapping = container if isinstance(container, dict) else {}
    mapping[head] = _set_at(mapping.get(head), rest, value, key)
    return mapping


def child(container: Any, segment: str | int) -> Any:
    """The value at `segment` of a structured config value; None when there is none."""
    if isinstance(container, dict):
        return container.get(segment)
    if isinstance(container, list) and isinstance(segment, int) and segment < len(container):
        return container[segment]
    return None


def _remove_at(container: Any, segments: list[str | int]) -> None:
    head, rest = segments[0], segments[1:]
    if rest:
        below = child(container, head)
        if below is not None:
            _remove_at(below, rest)
        return
    if isinstance(container, dict):
        container.pop(head, None)
    elif isinstance(container, list) and isinstance(head, int) and head < len(container):
        container.pop(head)


@dataclass
class StackSettings:
    """A Pulumi.<stack>.yaml (or the --config-file) and what it holds."""

    path: Path
    document: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> StackSettings:
        if not path.exists():
            return cls(path, {})
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls(path, dict(document))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            yaml.safe_dump(self.document, sort_keys=False, default_flow_style=False),
            encoding="utf-8",
        )

    @property
    def config(self) -> MutableMapping[str, Any]:
        config = self.document.setdefault("config", {})
        assert isinstance(config, dict)
        return config

    @property
    def salt(self) -> str | None:
        salt = self.document.get("encryptionsalt")
        return str(salt) if salt else None

    def set(self, key: str, value: Any, segments: list[str | int]) -> None:
        self.config[key] = _set_at(self.config.get(key), segments, value, key)

    def remove(self, key: str, segments: list[str | int]) -> None:
        if not segments:
            self.config.pop(key, None)
        elif key in self.config:
            _remove_at(self.config[key], segments)
        if not self.config:
            self.document.pop("config", None)


def secrets_provider_check(settings: StackSettings) -> None:
    provider = settings.document.get("secretsprovider")
    if provider and provider != "passphrase":
        raise CliError(
            f"the Pulumi CLI double implements only the passphrase secrets provider, and "
            f"{settings.path.name} uses {provider!r}"
        )


def has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        if set(value) == {SECURE}:
            return True
        return any(has_secure(item) for item in value.values())
    if isinstance(value, list):
        return any(has_secure(item) for item in value)
    return False


def reveal(value: Any, secrets: PassphraseSecrets | None) -> Any:
    """A stored config value with its secure parts decrypted (`secrets` None: `[secret]`)."""
    if isinstance(value, dict):
        if set(value) == {SECURE}:
            return secrets.decrypt(str(value[SECURE])) if secrets else "[secret]"
        return {key: reveal(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item, secrets) for item in value]
    return value


def as_program_value(value: Any) -> str:
    """What a program receives: strings as they are, structured values as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def apply_project_config(
    project: Project, stack: StackRef, config: MutableMapping[str, Any]
) -> None:
    """Apply declared defaults and check declared types, as the CLI does before an update."""
    for key, spec in project.declared_config().items():
        expected = spec.get("type")
        if key not in config:
            if "default" in spec:
                default = spec["default"]
                config[key] = (
                    default if isinstance(default, (list, dict)) else as_program_value(default)
                )
            elif "value" in spec:
                config[key] = as_program_value(spec["value"])
            elif expected:
                raise CliError(f"Stack '{stack.name}' is missing configuration value '{key}'")
            continue
        value = config[key]
        if has_secure(value) or expected is None:
            continue
        if not _has_type(value, str(expected)):
            raise CliError(
                f"Stack '{stack.name}' with configuration key '{key}' must be of type '{expected}'"
            )


def _has_type(value: Any, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        try:
            int(str(value))
        except ValueError:
            return False
        return True
    if expected == "boolean":
        return str(value).lower() in ("true", "false")
    if expected == "array":
        if isinstance(value, list):
            return True
        try:
            return isinstance(json.loads(str(value)), list)
        except json.JSONDecodeError:
            return False
    return True
