"""The real engine: one `pulumi.automation` LocalWorkspace per layer.

The workspace is `stacks/<layer>`, or the target's private workspace for the layer (the local
target's, under its state directory), so no operation writes into the work tree; a preview
creates nothing. Every stack has the same short name (`--stack`) and is addressed fully
qualified as `<org>/serverless-<layer>/<stack>` (shared/references.py), the name the layers'
own StackReferences use; the organization is the backend's (`organization_of`). The Pulumi
CLI is pinned to the version of the `pulumi` SDK installed here: a CLI on PATH is used when
it is at least that version, otherwise that exact version is installed into `.pulumi-cli/`
(git-ignored) with `PulumiCommand.install`. When neither works, or the CLI on PATH is
broken, the run stops with one paragraph saying what to do; it never shows a traceback.

The git commit of each update is written into the update's message (`commit=<sha>`), which
every backend keeps in the stack's history; for updates someone ran by hand, the CLI's own
`git.head` metadata is used instead.

Drift is a preview-only refresh (`Stack.preview_refresh`, `pulumi refresh --preview-only`):
it writes no state and no history, and the drifted resources are read from its engine events
(`drifted_from_events`). Several layers may be refreshed at once from different threads: the
engine's lazily resolved CLI and organization are resolved once, under a lock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import yaml
from pulumi import automation as auto
from pulumi.automation.errors import InvalidVersionError
from semver import VersionInfo

from shared.manifest import MANIFEST, PROJECT_PREFIX, Manifest
from shared.references import FILE_BACKEND_ORG, stack_name
from tooling.orchestrator.engine import (
    DRIFT_CHANGES,
    ConsumedValue,
    DriftedResource,
    DriftResult,
    EngineError,
    OutputSink,
    OutputValue,
    PreviewResult,
    UpdateRecord,
    UpdateResult,
    commit_in_message,
    transient_reason,
)
from tooling.orchestrator.targets import Target, UnavailableError

CLI_CACHE_DIRNAME = ".pulumi-cli"
# Entries read per `pulumi stack history` call; pages are read until one comes back short.
HISTORY_PAGE_SIZE = 100
INSTALL_DOCS_URL = "https://www.pulumi.com/docs/install/"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"
# How Pulumi marks a secret in exported state (a documented wire constant, not a secret).
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"  # noqa: S105 (a public protocol marker)
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 (a public protocol marker)


def replace_if_changed(path: Path, text: str) -> None:
    """Write `text` to `path` unless the file holds it already; through a temporary file and an
    atomic rename, so a concurrent reader sees the old file or the new one, never a part."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except FileNotFoundError:
        pass
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def sdk_version() -> str:
    """The installed `pulumi` SDK's version: the CLI version this repository pins."""
    return metadata.version("pulumi")


def cli_cache_root(repo_root: Path, version: str) -> Path:
    return repo_root / CLI_CACHE_DIRNAME / f"v{version}"


def missing_cli_message(version: str, cache_root: Path, reason: str) -> str:
    """One paragraph: what is missing, why it was not installed, and how to install it."""
    return (
        f"The Pulumi CLI {version} is needed to run the layers (it is the version of the pulumi "
        f"SDK this repository pins) and {reason}. Install that version with "
        f"`curl -fsSL https://get.pulumi.com | sh -s -- --version {version}` (other systems and "
        f"methods: {INSTALL_DOCS_URL}), make sure `pulumi version` prints v{version} in this "
        f"shell, and run the session again; alternatively unpack that release into "
        f"{cache_root} (so {cache_root / 'bin' / 'pulumi'} exists), where the orchestrator "
        "looks when `pulumi` is not on PATH."
    )


def resolve_pulumi_command(
    repo_root: Path,
    *,
    which: Callable[[str], str | None] | None = None,
    on_path: Callable[[VersionInfo], auto.PulumiCommand] | None = None,
    install: Callable[[str, VersionInfo], auto.PulumiCommand] | None = None,
) -> auto.PulumiCommand:
    """The pinned Pulumi CLI: from PATH when recent enough, else installed under the repo."""
    version_text = sdk_version()
    version = VersionInfo.parse(version_text)
    cache_root = cli_cache_root(repo_root, version_text)
    use_path = on_path or (lambda pinned: auto.PulumiCommand(version=pinned))
    do_install = install or (
        lambda root, pinned: auto.PulumiCommand.install(root=root, version=pinned)
    )
    # Looked up at call time, so a test can substitute PATH lookups.
    found = (which or shutil.which)("pulumi")
    if found:
        try:
            return use_path(version)
        except InvalidVersionError:
            # An older CLI on PATH: fall through and install the pinned one into the cache.
            pass
        except (OSError, subprocess.SubprocessError) as error:
            # PulumiCommand runs `pulumi version` with check_output: a CLI that cannot answer
            # it (a broken install, a wrapper failing) raises CalledProcessError here.
            raise UnavailableError(broken_cli_message(version_text, found, error)) from None
    try:
        return do_install(str(cache_root), version)
    except (OSError, subprocess.SubprocessError, InvalidVersionError) as error:
        reason = (
            f"`pulumi` is not on PATH (or is older), and installing it into {cache_root} "
            f"failed ({type(error).__name__}: {_first_line(str(error))}), usually because "
            "this machine is offline"
        )
        raise UnavailableError(missing_cli_message(version_text, cache_root, reason)) from None


def broken_cli_message(version: str, path: str, error: Exception) -> str:
    """One paragraph: the `pulumi` on PATH does not work, and what to do."""
    stderr = getattr(error, "stderr", None)
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    detail = _first_line(str(stderr or error))
    if isinstance(error, subprocess.CalledProcessError):
        status = f"exit status {error.returncode}"
    else:
        status = type(error).__name__
    return (
        f"The `pulumi` found on PATH ({path}) does not work: `pulumi version` failed ({status}: "
        f"{detail}). The orchestrator needs the Pulumi CLI {version} (the version of the pulumi "
        "SDK this repository pins): repair or remove that installation, or put a working one "
        f"first on PATH (`curl -fsSL https://get.pulumi.com | sh -s -- --version {version}`; "
        f"other methods: {INSTALL_DOCS_URL}), check that `pulumi version` prints v{version}, "
        "and run the session again."
    )


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else "no detail"


def summarize_error(text: str, limit: int = 6) -> str:
    """The lines of a CLI failure worth showing in a report: its error lines, else its tail."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip().removeprefix("stderr:").removeprefix("stdout:").strip()
        if line and not line.startswith("code:") and line not in lines:
            lines.append(line)
    # Pulumi prints `error: N errors occurred:` followed by one `* <cause>` line per cause.
    errors = [line for line in lines if "error" in line.lower() or line.startswith("* ")]
    chosen = errors[-limit:] or lines[-limit:]
    return " | ".join(chosen)[:2000]


def _op_counts(changes: Mapping[Any, int] | None) -> dict[str, int]:
    """OpMap keys are OpType members in events and plain strings in history: normalize."""
    return {str(getattr(op, "value", op)): int(count) for op, count in (changes or {}).items()}


def _top_level(path: str) -> str:
    """The top-level property of a detailed-diff path (`tags.Name`, `rules[0].cidr`)."""
    for index, character in enumerate(path):
        if character in ".[":
            return path[:index]
    return path


def drifted_from_events(events: Iterable[auto.EngineEvent]) -> tuple[DriftedResource, ...]:
    """The resources a preview-only refresh found changed or gone, from its engine events.

    For every resource of the state the engine emits a `resourcePreEvent` whose op is
    `refresh`, then, once the provider has read the resource, a `resOutputsEvent` whose op is
    the step's result (pulumi/pulumi pkg/engine/update.go, previewActions.OnResourceStepPost:
    for a refresh step `op = step.(*deploy.RefreshStep).ResultOp()`, and the summary counts
    the same op). RefreshStep.ResultOp (pkg/resource/deploy/step.go) is `delete` when the
    provider's Read found nothing, `update` when the read state differs (the provider's diff
    between the read state and the program's last inputs, inverted to read from state to
    cloud; outputs only for an external resource such as a StackReference), else `same`. The
    event's `diffs` are the step's changed keys and `detailedDiff` its property paths
    (pkg/engine/event_emitter.go, makeStepEventMetadata); both are empty for a deletion. Only
    names are read here: the events' old and new states, which hold values, are not kept.
    """
    found: dict[str, DriftedResource] = {}
    for event in events:
        outputs = event.res_outputs_event
        if outputs is None:
            continue
        metadata = outputs.metadata
        change = str(getattr(metadata.op, "value", metadata.op))
        if change not in DRIFT_CHANGES:
            continue
        names = list(metadata.diffs or []) or sorted(
            {_top_level(path) for path in (metadata.detailed_diff or {})}
        )
        found[metadata.urn] = DriftedResource(
            urn=metadata.urn,
            type=metadata.type,
            change=change,
            properties=tuple(dict.fromkeys(names)),
        )
    return tuple(found.values())


def _decode_state_value(value: object) -> ConsumedValue:
    """A value from exported state; secrets appear as plaintext JSON with --show-secrets."""
    if isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG:
        if "plaintext" in value:
            return ConsumedValue(json.loads(str(value["plaintext"])))
        return ConsumedValue(None, known=False)
    return ConsumedValue(value)


class AutomationEngine:
    """`Engine` over the Pulumi CLI, one LocalWorkspace per layer."""

    def __init__(
        self,
        target: Target,
        stack: str,
        *,
        manifest: Manifest = MANIFEST,
        command: auto.PulumiCommand | None = None,
        command_factory: Callable[[], auto.PulumiCommand] | None = None,
        policy_packs: Sequence[str] = (),
    ) -> None:
        self.target = target
        self.stack = stack
        self.manifest = manifest
        # Policy packs run with every preview and update. The CLI runs in the layer's
        # workspace, where it would resolve a relative path (engine.MakeLocalPolicyPacks uses
        # filepath.Abs), so a repository-relative path is made absolute here.
        self.policy_packs = tuple(
            str(path if Path(path).is_absolute() else (target.repo_root / path).resolve())
            for path in policy_packs
        )
        self._command = command
        self._command_factory = command_factory or (
            lambda: resolve_pulumi_command(target.repo_root)
        )
        self._organization: str | None = None
        # Drift calls the engine from several threads: the CLI (which may be installed on
        # first use) and the organization are resolved by one of them only.
        self._resolving = threading.RLock()

    def work_dir(self, layer: str) -> Path:
        """The layer's Pulumi project directory."""
        return self.target.repo_root / "stacks" / self.manifest.layer(layer).name

    def organization(self) -> str:
        """The organization of every stack: asked of the backend once (see `organization_of`)."""
        with self._resolving:
            if self._organization is None:
                self._organization = organization_of(
                    self.target, self._workspace_for_backend, self._command_available
                )
            return self._organization

    def _command_available(self) -> None:
        self.command()

    def _workspace_for_backend(self) -> auto.LocalWorkspace:
        """A workspace only for backend-wide questions (who am I, the default organization)."""
        layer = self.manifest.order[0]
        work_dir, options = self._workspace(layer, None)
        options.work_dir = str(work_dir)
        return auto.LocalWorkspace(**options.__dict__)

    def fully_qualified_name(self, layer: str) -> str:
        return stack_name(self.organization(), self.manifest.layer(layer), self.stack)

    def preflight(self) -> None:
        """Fail now, with one paragraph, when the CLI or the programs' environment is missing."""
        self.command()
        venv = self.target.repo_root / ".venv"
        if not venv.exists():
            raise UnavailableError(
                "The layer programs run with the repository's shared environment (every "
                "stacks/<layer>/Pulumi.yaml sets virtualenv: ../../.venv), and "
                f"{venv} does not exist: create it once with `nox -s dev`, then run the "
                "session again."
            )

    def command(self) -> auto.PulumiCommand:
        """The pinned CLI, resolved on first use so constructing the engine runs nothing."""
        with self._resolving:
            if self._command is None:
                self._command = self._command_factory()
            return self._command

    def environment(self, program_dir: Path | None = None) -> dict[str, str]:
        """Variables for every CLI call on a layer; a rollback's program gets its own shared/."""
        env = self.target.environment()
        if program_dir is not None:
            # The old program must import the old shared/ package from its worktree, not the
            # editable install of the current checkout: PYTHONPATH comes before site-packages.
            inherited = os.environ.get("PYTHONPATH")
            worktree = str(program_dir.parent.parent)
            env["PYTHONPATH"] = os.pathsep.join([worktree, inherited]) if inherited else worktree
        return env

    def workspace_options(self, program_dir: Path | None = None) -> auto.LocalWorkspaceOptions:
        """Fresh options per stack: the automation helpers mutate the object they are given."""
        return auto.LocalWorkspaceOptions(
            env_vars=self.environment(program_dir),
            secrets_provider=self.target.secrets_provider(),
            pulumi_command=self.command(),
        )

    def _workspace(
        self, layer: str, program_dir: Path | None
    ) -> tuple[Path, auto.LocalWorkspaceOptions]:
        """Where the CLI runs for the layer, and the workspace's options.

        A target with a private workspace gets a Pulumi.yaml there, the Automation API's
        ProjectSettings of the layer's own project file with `main` pointing at the program
        (project file reference: `main` is relative to Pulumi.yaml, and may lead to a parent
        directory since pulumi/pulumi#6734) and the shared virtualenv made absolute, so nothing
        is written in stacks/<layer>. It is written here, not through
        LocalWorkspaceOptions.project_settings, which rewrites the file in place on every
        operation: environments deployed at once (--stacks) share the workspace, and one's
        CLI could read the file while another's workspace truncates it. Unchanged settings are
        not written again, and changed ones replace the file atomically.
        """
        program = program_dir or self.work_dir(layer)
        options = self.workspace_options(program_dir)
        private = self.target.workspace_dir(self.manifest.layer(layer))
        if private is None:
            return program, options
        private.mkdir(parents=True, exist_ok=True)
        document = yaml.safe_load((program / "Pulumi.yaml").read_text(encoding="utf-8"))
        runtime = document.get("runtime")
        if isinstance(runtime, dict):
            runtime_options = dict(runtime.get("options") or {})
            virtualenv = runtime_options.get("virtualenv")
            if virtualenv:
                # Resolved from the checkout's own layer directory, where the path is written.
                runtime_options["virtualenv"] = str((self.work_dir(layer) / virtualenv).resolve())
            document["runtime"] = {**runtime, "options": runtime_options}
        document["main"] = os.path.relpath(program, private)
        settings = auto.ProjectSettings.from_dict(document)
        replace_if_changed(private / "Pulumi.yaml", yaml.safe_dump(settings.to_dict()))
        return private, options

    def config_map(self, layer: str) -> dict[str, auto.ConfigValue]:
        entries = self.target.stack_config(self.manifest.layer(layer))
        return {
            key: auto.ConfigValue(value=entry.value, secret=entry.secret)
            for key, entry in entries.items()
        }

    @contextmanager
    def _cli(self, layer: str, operation: str) -> Iterator[None]:
        """Translate the automation API's failures into the orchestrator's."""
        try:
            yield
        except FileNotFoundError as error:
            # LocalWorkspace raises the builtin error when the CLI binary is missing; any other
            # missing file is a real error of its own.
            if Path(str(error.filename)).name != Path(self.command().command).name:
                raise
            version = sdk_version()
            raise UnavailableError(
                missing_cli_message(
                    version,
                    cli_cache_root(self.target.repo_root, version),
                    "the `pulumi` executable could not be started",
                )
            ) from None
        except auto.ConcurrentUpdateError as error:
            raise EngineError(
                layer,
                operation,
                summarize_error(str(error)),
                transient="stack locked by a concurrent update (ConcurrentUpdateError)",
            ) from None
        except auto.CommandError as error:
            detail = summarize_error(str(error))
            raise EngineError(
                layer, operation, detail, transient=transient_reason(str(error))
            ) from None

    def _open(
        self, layer: str, *, create: bool, program_dir: Path | None = None
    ) -> auto.Stack | None:
        """The layer's stack; None when it does not exist and `create` is False (or the target
        does not create stacks)."""
        self.target.prepare()
        name = self.fully_qualified_name(layer)
        work_dir, options = self._workspace(layer, program_dir)
        if create and self.target.creates_stacks:
            stack = auto.create_or_select_stack(
                stack_name=name, work_dir=str(work_dir), opts=options
            )
            config = self.config_map(layer)
            if config:
                # Written to the stack's settings file in the target's private workspace.
                # Keys are config paths, so a target can set structured values such as
                # `aws:endpoints[0].s3`; plain keys mean the same either way.
                stack.set_all_config(config, path=True)
            return stack
        try:
            return auto.select_stack(stack_name=name, work_dir=str(work_dir), opts=options)
        except auto.StackNotFoundError:
            return None

    @contextmanager
    def _config_file(self, layer: str, stack: auto.Stack) -> Iterator[str | None]:
        """The stack's settings with the target's configuration, for one operation, when the
        target keeps no settings of its own: a temporary copy outside the repository
        (`--config-file`), so the committed Pulumi.<stack>.yaml is never rewritten."""
        config = self.config_map(layer)
        if self.target.creates_stacks or not config:
            yield None
            return
        if any(value.secret for value in config.values()):
            raise UnavailableError(
                "a secret configuration value cannot be passed without writing the stack's "
                "settings file"
            )
        settings_file = Path(stack.workspace.work_dir) / f"Pulumi.{self.stack}.yaml"
        document: dict[str, Any] = {}
        if settings_file.exists():
            document = yaml.safe_load(settings_file.read_text(encoding="utf-8")) or {}
        document["config"] = {
            **(document.get("config") or {}),
            **{key: value.value for key, value in config.items()},
        }
        with tempfile.TemporaryDirectory(prefix="orchestrator-config-") as directory:
            path = Path(directory) / settings_file.name
            path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
            yield str(path)

    def _require(self, layer: str, program_dir: Path | None = None) -> auto.Stack:
        """The layer's stack for an update: created when the target creates stacks."""
        stack = self._open(layer, create=True, program_dir=program_dir)
        if stack is None:
            raise EngineError(layer, "update", self.missing_stack_note(layer))
        return stack

    def missing_stack_note(self, layer: str) -> str:
        """Why an update of a stack that does not exist is not attempted on this target."""
        provider = self.target.secrets_provider()
        flag = f" --secrets-provider {provider}" if provider else ""
        return (
            f"stack {self.fully_qualified_name(layer)} does not exist, and the {self.target.name} "
            "target does not create stacks (creating one writes its settings file, which is "
            f"yours to commit): run `pulumi stack init {self.fully_qualified_name(layer)}"
            f"{flag}` in stacks/{layer}, commit Pulumi.{self.stack}.yaml, and run again"
        )

    def _prepare_program_dir(self, layer: str, program_dir: Path) -> None:
        """Make a rollback worktree's copy of the layer runnable with this stack's settings."""
        if self.target.workspace_dir(self.manifest.layer(layer)) is not None:
            # The settings live in the target's private workspace, and the virtualenv is named
            # by an absolute path there: the worktree needs nothing.
            return
        # The stack's settings file holds its config and, for passphrase secrets, the salt
        # that decrypts its state: the old revision's copy may be missing or different.
        settings = self.work_dir(layer) / f"Pulumi.{self.stack}.yaml"
        if settings.exists():
            shutil.copy2(settings, program_dir / settings.name)
        # Pulumi.yaml runs programs with ../../.venv, which a fresh worktree does not have.
        venv = self.target.repo_root / ".venv"
        worktree_venv = program_dir.parent.parent / ".venv"
        if venv.exists() and not worktree_venv.exists():
            worktree_venv.symlink_to(venv, target_is_directory=True)

    def stack_exists(self, layer: str) -> bool:
        with self._cli(layer, "select"):
            return self._open(layer, create=False) is not None

    def outputs(self, layer: str) -> dict[str, OutputValue]:
        with self._cli(layer, "outputs"):
            stack = self._open(layer, create=False)
            if stack is None:
                return {}
            return {
                key: OutputValue(output.value, output.secret)
                for key, output in stack.outputs().items()
            }

    def up(
        self,
        layer: str,
        *,
        message: str,
        on_output: OutputSink,
        program_dir: Path | None = None,
    ) -> UpdateResult:
        with self._cli(layer, "update"):
            if program_dir is not None:
                self._prepare_program_dir(layer, program_dir)
            stack = self._require(layer, program_dir)
            with self._config_file(layer, stack) as config_file:
                result = stack.up(
                    message=message,
                    on_output=on_output,
                    on_error=on_output,
                    color="never",
                    policy_packs=list(self.policy_packs) or None,
                    config_file=config_file,
                    # The summary's config is not shown anywhere: leave its secrets encrypted.
                    show_secrets=False,
                )
            return UpdateResult(
                resource_changes=_op_counts(result.summary.resource_changes),
                outputs={
                    key: OutputValue(output.value, output.secret)
                    for key, output in result.outputs.items()
                },
            )

    def preview(self, layer: str, *, on_output: OutputSink) -> PreviewResult:
        """What an update would do. A read-only command: a stack that does not exist is not
        created (`pulumi preview` needs one), and nothing is written."""
        with self._cli(layer, "preview"):
            stack = self._open(layer, create=False)
            if stack is None:
                return PreviewResult(resource_changes={}, stack_exists=False)
            with self._config_file(layer, stack) as config_file:
                result = stack.preview(
                    on_output=on_output,
                    on_error=on_output,
                    color="never",
                    policy_packs=list(self.policy_packs) or None,
                    config_file=config_file,
                )
            return PreviewResult(resource_changes=_op_counts(result.change_summary))

    def destroy(self, layer: str, *, message: str, on_output: OutputSink) -> UpdateResult:
        with self._cli(layer, "destroy"):
            stack = self._open(layer, create=False)
            if stack is None:
                return UpdateResult(resource_changes={}, outputs={})
            with self._config_file(layer, stack) as config_file:
                result = stack.destroy(
                    message=message,
                    on_output=on_output,
                    on_error=on_output,
                    color="never",
                    config_file=config_file,
                    show_secrets=False,
                )
            return UpdateResult(
                resource_changes=_op_counts(result.summary.resource_changes), outputs={}
            )

    def refresh_preview(self, layer: str, *, on_output: OutputSink) -> DriftResult:
        """A preview-only refresh: `pulumi refresh --preview-only` asks each resource's
        provider to read it and reports what a refresh would record, without writing state or
        history (and, on a file backend since CLI v3.229.0, without taking the stack's lock:
        pulumi/pulumi#22385). It runs no program (`--run-program` is off by default), so it
        needs no upstream layer. A stack that does not exist is not created."""
        with self._cli(layer, "refresh"):
            stack = self._open(layer, create=False)
            if stack is None:
                return DriftResult(resource_changes={}, stack_exists=False)
            events: list[auto.EngineEvent] = []
            with self._config_file(layer, stack) as config_file:
                result = stack.preview_refresh(
                    on_output=on_output,
                    on_error=on_output,
                    # Called from the SDK's event reader thread; a list's append is atomic.
                    on_event=events.append,
                    color="never",
                    config_file=config_file,
                    show_secrets=False,
                )
            return DriftResult(
                resource_changes=_op_counts(result.change_summary),
                drifted=drifted_from_events(events),
            )

    def history(self, layer: str) -> list[UpdateRecord]:
        """Every entry, newest first. `pulumi stack history` returns only the 10 newest unless
        given `--page-size` (stack_history.go), so the pages are read until one is short."""
        with self._cli(layer, "history"):
            stack = self._open(layer, create=False)
            if stack is None:
                return []
            summaries: list[auto.UpdateSummary] = []
            page = 1
            while True:
                batch = stack.history(page_size=HISTORY_PAGE_SIZE, page=page, show_secrets=False)
                summaries.extend(batch)
                if len(batch) < HISTORY_PAGE_SIZE:
                    break
                page += 1
            records = []
            for summary in summaries:
                message = summary.message or ""
                commit = commit_in_message(message) or summary.environment.get("git.head")
                records.append(
                    UpdateRecord(
                        kind=summary.kind,
                        result=summary.result,
                        started_at=summary.start_time,
                        message=message,
                        commit=commit,
                        resource_changes=_op_counts(summary.resource_changes),
                    )
                )
            return records

    def configuration(self, layer: str) -> dict[str, object]:
        """The committed settings file's `config` (and `environment`, the ESC environments it
        imports, by name) when the target keeps none of its own, then what the target adds.
        Read from the file, not `pulumi config`: a secret stays its ciphertext, and asking the
        CLI would decrypt it. (A private workspace's settings are the target's, which the
        target re-encrypts on each run, so only the target's values count there.)"""
        config: dict[str, object] = {}
        if not self.target.creates_stacks:
            settings = self.work_dir(layer) / f"Pulumi.{self.stack}.yaml"
            if settings.exists():
                document = yaml.safe_load(settings.read_text(encoding="utf-8")) or {}
                config.update(document.get("config") or {})
                if document.get("environment"):
                    config["(environment)"] = document["environment"]
        for key, entry in self.target.stack_config(self.manifest.layer(layer)).items():
            # A target's secret is held only in memory here: it enters as a marker.
            config[key] = "(secret)" if entry.secret else entry.value
        return config

    def consumed_values(self, layer: str) -> dict[str, dict[str, ConsumedValue]]:
        """Read from the StackReference resources in the layer's state: Pulumi records there
        every upstream output as the layer's last update saw it, whoever ran that update."""
        with self._cli(layer, "export"):
            stack = self._open(layer, create=False)
            if stack is None:
                return {}
            deployment = stack.export_stack().deployment or {}
        return consumed_from_state(deployment)


# DIY backends (file, S3, Azure Blob, GCS, Postgres) name every stack `organization/...`
# (pkg/backend/diy/store.go); anything else is Pulumi Cloud or a self-hosted service.
DIY_SCHEMES = ("file://", "s3://", "azblob://", "gs://", "postgres://")
# What `pulumi org get-default` prints when no default organization is set (org/org.go).
NO_DEFAULT_ORG = "No Default Org Specified"


class Login(Protocol):
    """What `pulumi whoami --json` tells (the Automation API's WhoAmIResult has these)."""

    @property
    def url(self) -> str | None: ...

    @property
    def organizations(self) -> Sequence[str] | None: ...


class BackendQuestions(Protocol):
    """The two questions `organization_of` asks the backend (a LocalWorkspace answers both)."""

    def who_am_i(self) -> Login: ...

    def org_get_default(self) -> str: ...


def organization_of(
    target: Target,
    workspace: Callable[[], BackendQuestions],
    command: Callable[[], None],
) -> str:
    """The organization of the stacks: `organization` on a DIY backend; on Pulumi Cloud the
    one the user named (--org, PULUMI_ORG) or the backend's default organization. Raises
    UnavailableError (one paragraph) when it cannot tell, or when the two disagree."""
    url = target.backend_url()
    if url is None:
        command()
        with _backend_question():
            identity = workspace().who_am_i()
        url = identity.url or ""
        organizations = list(identity.organizations or [])
    else:
        organizations = []
    if url.startswith(DIY_SCHEMES):
        if target.org not in (None, FILE_BACKEND_ORG):
            raise UnavailableError(
                f"--org {target.org} (or PULUMI_ORG) names a Pulumi Cloud organization, but the "
                f"backend you are logged in to ({url}) is a file or object-store backend, where "
                f"every stack is {FILE_BACKEND_ORG}/<project>/<stack>: unset it, or log in to "
                "Pulumi Cloud (`pulumi login`) to deploy to that organization."
            )
        return FILE_BACKEND_ORG
    if target.org is not None:
        if organizations and target.org not in organizations:
            raise UnavailableError(
                f"--org {target.org} (or PULUMI_ORG) is not one of the organizations your Pulumi "
                f"Cloud login ({url}) belongs to ({', '.join(organizations)}): name one of them, "
                "or log in as a member of that organization."
            )
        return target.org
    with _backend_question():
        default = workspace().org_get_default().strip()
    if default and default != NO_DEFAULT_ORG:
        return default
    known = f" (you belong to: {', '.join(organizations)})" if organizations else ""
    raise UnavailableError(
        f"The stacks live on Pulumi Cloud ({url}), where each is named <org>/<project>/<stack>, "
        f"and no organization was given nor set as your default{known}: pass --org <name> (or "
        "set PULUMI_ORG), or set a default once with `pulumi org set-default <name>`, and run "
        "the session again."
    )


@contextmanager
def _backend_question() -> Iterator[None]:
    try:
        yield
    except auto.CommandError as error:
        raise UnavailableError(
            "Asking the Pulumi backend who you are and which organization to use failed "
            f"({summarize_error(str(error))}); log in with `pulumi login` (or set "
            "PULUMI_ACCESS_TOKEN / PULUMI_BACKEND_URL) and run the session again."
        ) from None


def consumed_from_state(deployment: Mapping[str, Any]) -> dict[str, dict[str, ConsumedValue]]:
    """upstream layer -> key -> value, from an exported deployment's StackReferences."""
    consumed: dict[str, dict[str, ConsumedValue]] = {}
    prefix = f"{PROJECT_PREFIX}-"
    for resource in deployment.get("resources") or []:
        if resource.get("type") != STACK_REFERENCE_TYPE:
            continue
        outputs = resource.get("outputs") or {}
        referenced = str(outputs.get("name") or (resource.get("inputs") or {}).get("name", ""))
        parts = referenced.split("/")
        if len(parts) < 2 or not parts[-2].startswith(prefix):
            continue
        upstream = parts[-2].removeprefix(prefix)
        values = outputs.get("outputs") or {}
        consumed[upstream] = {key: _decode_state_value(value) for key, value in values.items()}
    return consumed
