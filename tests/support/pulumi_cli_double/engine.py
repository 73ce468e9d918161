"""Updates, previews, destroys and refreshes of one stack, as the CLI and its engine do them.

- `up`/`preview` run the program (host.py) with the stack's configuration (defaults of the
  project applied and types checked; ValidateStackConfigAndApplyProjectConfig), then compare
  each registration with the previous checkpoint by URN and inputs: a new URN is `create`,
  equal inputs `same`, other inputs `update`, a URN no longer registered `delete`; each
  StackReference is a `read` (step.go, StepOp). The change summary counts every step; whether
  it "has changes" ignores `same` and the read operations (pkg/engine/events/
  resource_changes.go, HasChanges).
- `destroy` deletes every resource in reverse order (reads are discarded, `discard`).
- `refresh` reads every resource of the checkpoint from the account (aws_account.py) and a
  StackReference from the stack it names; see plan_refresh for the steps and events, which
  are the engine's. With `--preview-only` it writes nothing: no checkpoint, no history entry,
  no backup, and it takes no lock (pkg/backend/diy/backend.go, Refresh: since v3.229.0,
  pulumi/pulumi#22385, the PreviewOnly branch calls `b.apply` with DryRun and returns before
  `b.Lock`; apply writes history and backups only `if !opts.DryRun`).
- Steps run in order; one that AWS refuses (aws_account.py) fails the operation, and what ran
  before it is kept in the checkpoint, as the engine's snapshot manager keeps it. Every create
  and update is recorded in the account, every delete removed from it.
- A non-preview operation locks the stack, saves the checkpoint, appends a history entry
  (kind, start and end times, message, environment with git metadata and `exec.kind`, config,
  result, resource changes) and a backup (pkg/backend/diy/backend.go, apply).
- Secrets are AES-GCM ciphertext in the checkpoint and the stack outputs; they are printed as
  `[secret]` unless `--show-secrets`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.support.pulumi_cli_double.aws_account import Account, AwsRefusalError, as_kept
from tests.support.pulumi_cli_double.backend import (
    DIY_ORGANIZATION,
    FileBackend,
    StackRef,
    backend_url,
    check_project,
)
from tests.support.pulumi_cli_double.errors import BailError, CliError
from tests.support.pulumi_cli_double.events import EventLog
from tests.support.pulumi_cli_double.secrets import (
    SECRET_SIG,
    SECRET_SIG_KEY,
    PassphraseSecrets,
    is_secret,
)
from tests.support.pulumi_cli_double.workspace import (
    Invocation,
    Project,
    StackSettings,
    apply_project_config,
    as_program_value,
    has_secure,
    require_project,
    reveal,
    secrets_provider_check,
    stack_ref_for,
)

STACK_TYPE = "pulumi:pulumi:Stack"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"
# Operations that do not change anything (HasChanges in pkg/engine/events/resource_changes.go).
NO_CHANGE_OPS = frozenset({"same", "read", "discard", "read-replacement"})
REPO_ROOT = Path(__file__).resolve().parents[3]
LABELS = {
    ("update", False): "Updating",
    ("update", True): "Previewing update",
    ("destroy", False): "Destroying",
    ("destroy", True): "Previewing destroy",
    ("refresh", False): "Refreshing",
    ("refresh", True): "Previewing refresh",
}
SYMBOLS = {"create": "+", "update": "~", "delete": "-", "same": " ", "read": ">", "discard": "<"}
# The detailed diff kinds inverted, as a refresh inverts the provider's diff (DiffResult.Invert
# and DiffKind.Invert in pulumi/pulumi's sdk/go/common/resource/plugin): add <-> delete.
INVERTED = {"add": "delete", "delete": "add", "update": "update"}


def cli_version() -> str:
    """The double answers as the CLI of the installed SDK's version (the pinned one)."""
    return metadata.version("pulumi")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class StackContext:
    """Everything an operation on one stack needs."""

    invocation: Invocation
    project: Project
    backend: FileBackend
    ref: StackRef
    settings: StackSettings

    @property
    def environ(self) -> Mapping[str, str]:
        return self.invocation.environ


def open_backend(invocation: Invocation, project: Project | None) -> FileBackend:
    return FileBackend(backend_url(invocation.environ, project.backend_url if project else None))


def stack_context(invocation: Invocation, *, must_exist: bool = True) -> StackContext:
    """The project, backend, stack and settings of a command run on one stack."""
    project = require_project(invocation)
    backend = open_backend(invocation, project)
    ref = stack_ref_for(invocation, project)
    if must_exist and not backend.exists(ref):
        # cmdStack.RequireStack, non-interactive.
        raise CliError(f"no stack named '{ref.fully_qualified}' found")
    assert invocation.parsed is not None
    config_file = invocation.parsed.value("config-file")
    settings = StackSettings.load(project.settings_path(ref, config_file, invocation.cwd))
    return StackContext(invocation, project, backend, ref, settings)


def config_secrets(context: StackContext, *, verify: bool = True) -> PassphraseSecrets:
    """The stack's passphrase secrets manager for its configuration.

    The salt comes from the settings file; a stack whose file lost it gets it back from its
    checkpoint (the CLI's secrets-manager loader saves it then); a stack with neither gets a
    new one. With `verify`, the passphrase is checked against the salt now, as the CLI does
    when it loads a stack's configuration ("incorrect passphrase").
    """
    secrets_provider_check(context.settings)
    salt = context.settings.salt
    if salt is None:
        state = _checkpoint_salt(context.backend, context.ref)
        if state is not None:
            secrets = PassphraseSecrets(state, context.environ, context.invocation.cwd)
        else:
            secrets = PassphraseSecrets.new(context.environ, context.invocation.cwd)
        context.settings.document["encryptionsalt"] = secrets.state
        context.settings.save()
        return secrets
    secrets = PassphraseSecrets(salt, context.environ, context.invocation.cwd)
    if verify:
        secrets.verify()
    return secrets


def _checkpoint_salt(backend: FileBackend, ref: StackRef) -> str | None:
    if not backend.exists(ref):
        return None
    latest = backend.checkpoint(ref) or {}
    provider = latest.get("secrets_providers") or {}
    if provider.get("type") == "passphrase":
        return str((provider.get("state") or {}).get("salt") or "") or None
    return None


def state_secrets(
    backend: FileBackend, ref: StackRef, invocation: Invocation
) -> PassphraseSecrets | None:
    """The manager the checkpoint's own `secrets_providers` names (locked if the passphrase is
    wrong: it fails only when a value must be decrypted)."""
    state = _checkpoint_salt(backend, ref)
    if state is None:
        return None
    return PassphraseSecrets(state, invocation.environ, invocation.cwd)


# State values
def seal(value: Any, secrets: PassphraseSecrets | None) -> Any:
    """Plain (mock) form to state form: a secret's value becomes ciphertext."""
    if isinstance(value, dict):
        if is_secret(value) and "value" in value:
            if secrets is None:
                raise CliError("a secret value needs a secrets manager, and the stack has none")
            return {
                SECRET_SIG_KEY: SECRET_SIG,
                "ciphertext": secrets.encrypt(json.dumps(value["value"])),
            }
        return {key: seal(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [seal(item, secrets) for item in value]
    return value


def unseal(value: Any, secrets: PassphraseSecrets | None, *, form: str = "value") -> Any:
    """State form to plain form: `value` (the mocks' form) or `plaintext` (`stack export
    --show-secrets`) or `mask` (`[secret]`)."""
    if isinstance(value, dict):
        if is_secret(value) and "ciphertext" in value:
            if form == "mask":
                return "[secret]"
            if secrets is None:
                raise CliError("the checkpoint holds secrets but names no secrets provider")
            plaintext = secrets.decrypt(str(value["ciphertext"]))
            if form == "plaintext":
                return {SECRET_SIG_KEY: SECRET_SIG, "plaintext": plaintext}
            return {SECRET_SIG_KEY: SECRET_SIG, "value": json.loads(plaintext)}
        return {key: unseal(item, secrets, form=form) for key, item in value.items()}
    if isinstance(value, list):
        return [unseal(item, secrets, form=form) for item in value]
    return value


def _has_ciphertext(value: Any) -> bool:
    if isinstance(value, dict):
        if is_secret(value) and "ciphertext" in value:
            return True
        return any(_has_ciphertext(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_ciphertext(item) for item in value)
    return False


def stack_outputs(
    backend: FileBackend, ref: StackRef, invocation: Invocation, *, form: str
) -> dict[str, Any]:
    """The root stack resource's outputs (empty before the first update and after destroy)."""
    latest = backend.checkpoint(ref) or {}
    for resource in latest.get("resources") or []:
        if resource.get("type") == STACK_TYPE:
            outputs = resource.get("outputs") or {}
            secrets = (
                state_secrets(backend, ref, invocation)
                if form != "mask" and _has_ciphertext(outputs)
                else None
            )
            result: dict[str, Any] = unseal(outputs, secrets, form=form)
            return result
    return {}


def _all_stack_outputs(backend: FileBackend, invocation: Invocation) -> dict[str, Any]:
    """Every stack's outputs, for the program's StackReferences: {name: {key: {value, secret}}}."""
    answers: dict[str, Any] = {}
    for ref in backend.stacks():
        latest = backend.checkpoint(ref) or {}
        root = next((r for r in latest.get("resources") or [] if r.get("type") == STACK_TYPE), None)
        if root is None:
            continue
        outputs = root.get("outputs") or {}
        secrets = state_secrets(backend, ref, invocation) if _has_ciphertext(outputs) else None
        plain = unseal(outputs, secrets)
        answers[ref.fully_qualified] = {
            key: (
                {"value": value["value"], "secret": True}
                if is_secret(value)
                else {"value": value, "secret": False}
            )
            for key, value in plain.items()
        }
    return answers


# Program configuration
@dataclass
class ProgramConfig:
    values: dict[str, str]
    secret_keys: list[str]
    shown: dict[str, str]


def program_config(context: StackContext, secrets: PassphraseSecrets) -> ProgramConfig:
    config = copy.deepcopy(dict(context.settings.document.get("config") or {}))
    apply_project_config(context.project, context.ref, config)
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    shown: dict[str, str] = {}
    for key, stored in config.items():
        if has_secure(stored):
            secret_keys.append(key)
            values[key] = as_program_value(reveal(stored, secrets))
            shown[key] = "[secret]"
        else:
            values[key] = as_program_value(stored)
            shown[key] = values[key]
    return ProgramConfig(values, secret_keys, shown)


# Steps
@dataclass
class Step:
    op: str
    urn: str
    type: str
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    # A refresh step's outcome once the resource is read (RefreshStep.ResultOp): same, update
    # or delete; the keys that differ (Diffs) and their kinds (DetailedDiff), if any.
    result: str | None = None
    diffs: list[str] = field(default_factory=list)
    detailed: dict[str, str] | None = None

    @property
    def counted(self) -> str:
        """What the change summary counts the step as: a refresh counts its result."""
        return self.result or self.op

    @property
    def state(self) -> dict[str, Any] | None:
        if self.op == "refresh":
            return self.new
        return self.new if self.op not in ("delete", "discard") else None


@dataclass
class Outcome:
    steps: list[Step] = field(default_factory=list)
    failure: tuple[Step, str] | None = None
    applied: int = 0

    def changes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for step in self.steps[: self.applied] if self.failure else self.steps:
            counts[step.counted] = counts.get(step.counted, 0) + 1
        return counts


def stack_urn(ref: StackRef) -> str:
    return f"urn:pulumi:{ref.name}::{ref.project}::{STACK_TYPE}::{ref.project}-{ref.name}"


def _entry(resource: Mapping[str, Any], *, external: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "urn": resource["urn"],
        "custom": bool(resource["custom"]),
        "type": resource["type"],
        "inputs": resource["inputs"],
        "outputs": resource["outputs"],
    }
    if resource["custom"]:
        entry["id"] = resource["id"]
    if resource.get("parent"):
        entry["parent"] = resource["parent"]
    if external:
        entry["external"] = True
    if resource.get("dependencies"):
        entry["dependencies"] = resource["dependencies"]
    if resource.get("propertyDependencies"):
        entry["propertyDependencies"] = resource["propertyDependencies"]
    if resource.get("retainOnDelete"):
        entry["retainOnDelete"] = True
    return entry


def plan_update(ref: StackRef, old: list[dict[str, Any]], result: Mapping[str, Any]) -> list[Step]:
    """The steps from the previous resources (plain form) to what the program registered."""
    by_urn = {resource["urn"]: resource for resource in old}
    steps: list[Step] = []
    root_outputs = {
        key: (
            {SECRET_SIG_KEY: SECRET_SIG, "value": item["value"]}
            if item["secret"]
            else item["value"]
        )
        for key, item in result["exports"].items()
    }
    root: dict[str, Any] = {
        "urn": stack_urn(ref),
        "custom": False,
        "type": STACK_TYPE,
        "inputs": {},
        "outputs": root_outputs,
    }
    old_root = by_urn.get(root["urn"])
    steps.append(Step("same" if old_root else "create", root["urn"], STACK_TYPE, old_root, root))
    seen = {root["urn"]}
    for read in result["reads"]:
        entry = _entry(read, external=True)
        steps.append(Step("read", entry["urn"], entry["type"], by_urn.get(entry["urn"]), entry))
        seen.add(entry["urn"])
    for resource in result["resources"]:
        entry = _entry(resource)
        prior = by_urn.get(entry["urn"])
        if prior is None:
            op = "create"
        elif prior.get("inputs") == entry["inputs"]:
            op = "same"
        else:
            op = "update"
        steps.append(Step(op, entry["urn"], entry["type"], prior, entry))
        seen.add(entry["urn"])
    for resource in reversed(old):
        if resource["urn"] not in seen:
            op = "discard" if resource.get("external") else "delete"
            steps.append(Step(op, resource["urn"], resource["type"], resource, None))
    return steps


def plan_destroy(old: list[dict[str, Any]]) -> list[Step]:
    return [
        Step(
            "discard" if resource.get("external") else "delete",
            resource["urn"],
            resource["type"],
            resource,
            None,
        )
        for resource in reversed(old)
    ]


def plan_refresh(
    old: list[dict[str, Any]], account: Account, stack_outputs: Mapping[str, Any]
) -> list[Step]:
    """One `refresh` step per resource of the checkpoint (plain form), with what reading it
    found, as pulumi/pulumi's RefreshStep (pkg/resource/deploy/step.go) does:

    - the root stack and component resources are never read, and stay `same` (Apply returns
      at once for a resource that is not custom);
    - a StackReference is read by the builtin provider, which re-reads the outputs of the stack
      it names (pkg/resource/deploy/builtins.go, Read); it is external, so only its outputs are
      compared and no keys are named: `update` when they differ;
    - any other resource is read from the account: `delete` when it is gone (Read returned no
      outputs), `update` when a property differs, with the differing keys in `diffs` and
      `detailedDiff`, else `same`. The engine's diff is the provider's Diff from the read
      state to the program's last inputs, inverted (a key the cloud added reads `add`, one it
      lost `delete`); the double compares the account's properties with the checkpoint's
      outputs (which hold the inputs) key by key, so it names top-level keys only, where a
      provider may name nested paths and ignores keys it does not manage.

    The refreshed state of an `update` takes the account's properties as outputs and, for the
    keys that differ among its inputs, the account's values as inputs, as a bridged provider's
    Read returns the inputs it extracts from what it read; so a later `up` puts the program's
    values back. A secret property the account holds only as a digest keeps the state's value.
    """
    steps = []
    for resource in old:
        urn, typ = resource["urn"], resource["type"]
        if not resource.get("custom"):
            steps.append(Step("refresh", urn, typ, resource, resource, result="same"))
        elif resource.get("external"):
            steps.append(_refresh_reference(resource, stack_outputs))
        else:
            steps.append(_refresh_resource(resource, account))
    return steps


def _refresh_reference(resource: dict[str, Any], stack_outputs: Mapping[str, Any]) -> Step:
    urn, typ = resource["urn"], resource["type"]
    outputs = resource.get("outputs") or {}
    if typ != STACK_REFERENCE_TYPE:
        return Step("refresh", urn, typ, resource, resource, result="same")
    name = str(outputs.get("name") or (resource.get("inputs") or {}).get("name"))
    if name not in stack_outputs:
        # The builtin provider's GetStackOutputs of a stack the backend does not hold.
        raise CliError(f"refreshing {urn}: unknown stack {name!r}")
    current = {
        key: {SECRET_SIG_KEY: SECRET_SIG, "value": item["value"]}
        if item["secret"]
        else item["value"]
        for key, item in stack_outputs[name].items()
    }
    if current == (outputs.get("outputs") or {}):
        return Step("refresh", urn, typ, resource, resource, result="same")
    secret_names = [key for key, item in stack_outputs[name].items() if item["secret"]]
    new_outputs = {**outputs, "outputs": current, "secretOutputNames": secret_names}
    return Step("refresh", urn, typ, resource, {**resource, "outputs": new_outputs}, "update")


def _refresh_resource(resource: dict[str, Any], account: Account) -> Step:
    urn, typ = resource["urn"], resource["type"]
    reading = account.read(urn)
    if not reading.known:
        return Step("refresh", urn, typ, resource, resource, result="same")
    if reading.properties is None:
        return Step("refresh", urn, typ, resource, None, result="delete")
    live = reading.properties
    outputs = resource.get("outputs") or {}
    recorded = as_kept(outputs)
    differing = sorted(key for key in {*recorded, *live} if recorded.get(key) != live.get(key))
    if not differing:
        return Step("refresh", urn, typ, resource, resource, result="same")
    detailed = {
        key: INVERTED["add" if key not in live else "delete" if key not in recorded else "update"]
        for key in differing
    }
    new_outputs = {
        key: outputs[key] if key in outputs and as_kept(outputs[key]) == value else value
        for key, value in live.items()
    }
    inputs = dict(resource.get("inputs") or {})
    for key in differing:
        if key in inputs and key not in live:
            del inputs[key]
        elif key in inputs and not _is_digest(live[key]):
            inputs[key] = live[key]
    new = {**resource, "inputs": inputs, "outputs": new_outputs}
    return Step("refresh", urn, typ, resource, new, "update", differing, detailed)


def _is_digest(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG and "sha256" in value


def apply_steps(steps: list[Step], account: Account) -> Outcome:
    """Run the steps in order against the account; stop at the first refusal."""
    outcome = Outcome(steps)
    for index, step in enumerate(steps):
        try:
            if step.op == "create" and step.new is not None:
                account.check_create(step.type, step.new["outputs"])
            if step.op == "delete" and step.old is not None and not step.old.get("retainOnDelete"):
                account.delete(
                    step.urn,
                    step.type,
                    step.old.get("inputs") or {},
                    step.old.get("outputs") or {},
                )
            if step.op in ("create", "update") and step.new and step.new.get("custom"):
                account.record(
                    step.urn, step.type, str(step.new.get("id") or ""), step.new["outputs"]
                )
        except AwsRefusalError as refusal:
            outcome.failure = (step, str(refusal))
            outcome.applied = index
            return outcome
    outcome.applied = len(steps)
    return outcome


def resulting_resources(outcome: Outcome, old: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The checkpoint's resources after the applied steps (the rest as they were)."""
    applied = outcome.steps[: outcome.applied]
    done = {step.urn for step in applied}
    stamp = now_iso()
    resources: list[dict[str, Any]] = []
    for step in applied:
        state = step.state
        if state is None:
            continue
        entry = dict(state)
        created = (step.old or {}).get("created") or stamp
        entry["created"] = created
        entry["modified"] = (
            stamp
            if step.counted in ("create", "update")
            else ((step.old or {}).get("modified") or stamp)
        )
        resources.append(entry)
    resources.extend(resource for resource in old if resource["urn"] not in done)
    return resources


# Running the program
def run_host(request: Mapping[str, Any], invocation: Invocation) -> dict[str, Any]:
    """Start the language host (host.py) with the CLI call's environment."""
    env = dict(invocation.environ)
    # The double's own package must stay importable, after whatever PYTHONPATH asks for.
    env["PYTHONPATH"] = os.pathsep.join(
        [part for part in (env.get("PYTHONPATH"), str(REPO_ROOT)) if part]
    )
    process = subprocess.run(
        [sys.executable, "-m", "tests.support.pulumi_cli_double.host"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        cwd=request["program_dir"],
        check=False,
    )
    for line in process.stderr.splitlines():
        invocation.out(f"    {line}")
    if process.returncode != 0 or not process.stdout.strip():
        raise CliError(
            f"the language host exited with {process.returncode}: {process.stderr.strip()}"
        )
    result: dict[str, Any] = json.loads(process.stdout)
    return result


def check_program(project: Project) -> None:
    """What the Python language host checks before it runs the program."""
    runtime, options = project.runtime
    if runtime != "python":
        raise CliError(
            f"the Pulumi CLI double runs Python programs only, and {project.path} says {runtime!r}"
        )
    virtualenv = options.get("virtualenv")
    if virtualenv:
        path = (project.directory / str(virtualenv)).resolve()
        if not path.is_dir():
            raise CliError(
                f"The 'virtualenv' option in Pulumi.yaml is set to {virtualenv!r}, but {path} "
                "does not exist; run `pulumi install` to create the virtual environment"
            )
    if not (project.program_dir / "__main__.py").exists():
        raise CliError(f"no __main__.py in the program directory {project.program_dir}")


def policy_packs(invocation: Invocation) -> dict[str, str]:
    """Every `--policy-pack`, resolved from the working directory as the CLI resolves it
    (engine.MakeLocalPolicyPacks: filepath.Abs); its name and version for the summary."""
    assert invocation.parsed is not None
    paths = invocation.parsed.values_of("policy-pack")
    configs = invocation.parsed.values_of("policy-pack-config")
    # validatePolicyPackConfig (operations/up.go).
    if configs and not paths:
        raise CliError('"--policy-pack-config" must be specified with "--policy-pack"')
    if configs and len(configs) != len(paths):
        raise CliError(
            'the number of "--policy-pack-config" flags must match the number of "--policy-pack" '
            "flags"
        )
    packs: dict[str, str] = {}
    for raw in paths:
        path = (invocation.cwd / raw).resolve()
        if not (path / "PulumiPolicy.yaml").is_file():
            raise CliError(
                f'failed to load Pulumi policy project located at "{path}": no PulumiPolicy.yaml '
                "there"
            )
        packs[path.name] = "local"
    return packs


def git_metadata(directory: Path) -> dict[str, str]:
    """The `git.*` environment of an update (pkg/cmd/pulumi/metadata, addGitMetadata)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 (fixed git arguments)
                ["git", *args],  # noqa: S607 (git from PATH, as the CLI finds it)
                cwd=directory,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return {}
    environment = {
        "git.head": head,
        "git.dirty": "true" if git("status", "--porcelain") else "false",
    }
    name = git("symbolic-ref", "-q", "HEAD")
    if name:
        environment["git.headName"] = name
    return environment


def _print_steps(invocation: Invocation, steps: list[Step], dry_run: bool) -> None:
    for step in steps:
        op = step.counted
        if op in ("same",):
            continue
        verb = (
            op
            if dry_run
            else {"create": "created", "update": "updated", "delete": "deleted"}.get(op, op)
        )
        name = step.urn.rsplit("::", 1)[-1]
        diff = f" [diff: {', '.join(f'~{key}' for key in step.diffs)}]" if step.diffs else ""
        invocation.out(f" {SYMBOLS.get(op, '?')}  {step.type} {name} {verb}{diff}")


def _print_summary(invocation: Invocation, changes: Mapping[str, int], dry_run: bool) -> None:
    invocation.out("Resources:")
    words = {
        "create": "to create" if dry_run else "created",
        "update": "to update" if dry_run else "updated",
        "delete": "to delete" if dry_run else "deleted",
        "same": "unchanged",
    }
    for op, word in words.items():
        if changes.get(op):
            invocation.out(
                f"    {SYMBOLS[op].strip() or ''} {changes[op]} {word}".replace("  ", " ")
            )


def run_operation(invocation: Invocation, kind: str) -> int:
    """`up` (kind update), `preview`, `destroy` or `refresh`."""
    parsed = invocation.parsed
    assert parsed is not None
    dry_run = kind == "preview" or parsed.flag("preview-only")
    operation = "update" if kind in ("update", "preview") else kind
    if parsed.flag("run-program"):
        raise CliError("--run-program is a flag the Pulumi CLI double does not implement")
    if not dry_run:
        _require_yes(invocation, preview_only_allowed=kind == "refresh")
    context = stack_context(invocation)
    check_project(context.ref, context.project.name)
    secrets = config_secrets(context)
    config = program_config(context, secrets)
    packs = policy_packs(invocation) if operation == "update" else {}
    log = EventLog(parsed.value("event-log"))
    log.emit("preludeEvent", {"config": config.shown})
    invocation.out(f"{LABELS[(operation, dry_run)]} ({context.ref.shown(context.project.name)}):")
    started = time.time()
    if dry_run:
        outcome, deployment = _operate(context, operation, config, secrets, dry_run, log)
    else:
        with context.backend.lock(context.ref):
            outcome, deployment = _operate(context, operation, config, secrets, dry_run, log)
    changes = outcome.changes()
    log.emit(
        "summaryEvent",
        {
            "maybeCorrupt": False,
            "durationSeconds": int(time.time() - started),
            "resourceChanges": changes,
            "PolicyPacks": packs,
        },
    )
    log.deliver()
    _print_steps(invocation, outcome.steps[: outcome.applied], dry_run)
    if outcome.failure is not None:
        step, message = outcome.failure
        invocation.out("Diagnostics:")
        invocation.out(f"  {step.type} ({step.urn.rsplit('::', 1)[-1]}):")
        invocation.out(f"    error: {message}")
        invocation.out(f"  {STACK_TYPE} ({context.ref.project}-{context.ref.name}):")
        invocation.out(f"    error: {operation} failed")
    elif deployment is not None and operation == "update":
        _print_outputs(invocation, deployment)
    _print_summary(invocation, changes, dry_run)
    invocation.out(f"Duration: {max(1, int(time.time() - started))}s")
    if outcome.failure is not None:
        raise BailError()
    if parsed.flag("expect-no-changes") and any(
        count for op, count in changes.items() if op not in NO_CHANGE_OPS
    ):
        # refresh.go says "occurred" where up.go and preview.go say "were proposed".
        happened = "occurred" if kind == "refresh" else "were proposed"
        raise CliError(f"no changes were expected but changes {happened}")
    return 0


def _require_yes(invocation: Invocation, *, preview_only_allowed: bool = False) -> None:
    """operations/up.go (and destroy.go, refresh.go): non-interactive needs --yes; refresh
    also accepts --preview-only, and its message says so (refresh.go)."""
    parsed = invocation.parsed
    assert parsed is not None
    skip = invocation.environ.get("PULUMI_SKIP_CONFIRMATIONS", "").lower() in ("1", "true")
    if parsed.flag("yes") or parsed.flag("skip-preview") or skip:
        return
    if not interactive(invocation):
        flags = "--yes or --skip-preview" + (" or --preview-only" if preview_only_allowed else "")
        raise CliError(f"{flags} must be passed in to proceed when running in non-interactive mode")
    raise CliError("the Pulumi CLI double never prompts for a confirmation; pass --yes")


def interactive(invocation: Invocation) -> bool:
    """cmdutil.Interactive: a terminal on both ends, no --non-interactive, no CI."""
    parsed = invocation.parsed
    assert parsed is not None
    if parsed.flag("non-interactive") or invocation.environ.get("CI"):
        return False
    return invocation.stdout.isatty() and sys.stdin.isatty()


def _plain_resources(
    stored: list[dict[str, Any]], secrets: PassphraseSecrets | None
) -> list[dict[str, Any]]:
    plain = []
    for resource in stored:
        sealed = {key: resource[key] for key in ("inputs", "outputs") if key in resource}
        plain.append({**resource, **unseal(sealed, secrets)})
    return plain


def _operate(
    context: StackContext,
    operation: str,
    config: ProgramConfig,
    secrets: PassphraseSecrets,
    dry_run: bool,
    log: EventLog,
) -> tuple[Outcome, dict[str, Any] | None]:
    invocation = context.invocation
    latest = context.backend.checkpoint(context.ref) or {}
    stored = latest.get("resources") or []
    old_secrets = (
        state_secrets(context.backend, context.ref, invocation) if _has_ciphertext(stored) else None
    )
    old = _plain_resources(stored, old_secrets)
    if operation == "update":
        check_program(context.project)
        result = run_host(
            {
                "program_dir": str(context.project.program_dir),
                "project": context.project.name,
                "stack": context.ref.name,
                "organization": DIY_ORGANIZATION,
                "config": config.values,
                "secret_keys": config.secret_keys,
                "region": config.values.get("aws:region", "us-east-1"),
                "previous": [
                    {
                        "type": r["type"],
                        "name": r["urn"].rsplit("::", 1)[-1],
                        "id": r.get("id", ""),
                        "inputs": r.get("inputs") or {},
                        "outputs": r.get("outputs") or {},
                    }
                    for r in old
                    if r["type"] != STACK_TYPE and not r.get("external")
                ],
                "stack_outputs": _all_stack_outputs(context.backend, invocation),
            },
            invocation,
        )
        if not result["ok"]:
            lines = str(result["error"]).splitlines() or ["the program failed"]
            invocation.out("Diagnostics:")
            invocation.out(f"  {STACK_TYPE} ({context.ref.project}-{context.ref.name}):")
            invocation.out(f"    error: {lines[0]}")
            for line in lines[1:]:
                invocation.out(f"    {line}")
            if not dry_run:
                _record(context, operation, "failed", {})
            raise BailError()
        steps = plan_update(context.ref, old, result)
    elif operation == "destroy":
        steps = plan_destroy(old)
    else:
        steps = plan_refresh(
            old, Account(invocation.environ), _all_stack_outputs(context.backend, invocation)
        )
    for step in steps:
        log.emit(
            "resourcePreEvent",
            {
                "metadata": {"op": step.op, "urn": step.urn, "type": step.type, "provider": ""},
                "planning": dry_run,
            },
        )
        if step.result is not None:
            log.emit("resOutputsEvent", {"metadata": _refreshed(step), "planning": dry_run})
    if dry_run:
        return Outcome(steps, None, len(steps)), None
    outcome = apply_steps(steps, Account(invocation.environ))
    resources = resulting_resources(outcome, old)
    version = f"v{cli_version()}"
    deployment = {
        "manifest": {
            "time": now_iso(),
            "magic": hashlib.sha256(version.encode()).hexdigest(),
            "version": version,
        },
        "secrets_providers": secrets.state_json(),
        "resources": [
            {
                **resource,
                **seal({k: resource[k] for k in ("inputs", "outputs") if k in resource}, secrets),
            }
            for resource in resources
        ],
    }
    context.backend.save(context.ref, deployment)
    _record(context, operation, "failed" if outcome.failure else "succeeded", outcome.changes())
    return outcome, deployment


def _refreshed(step: Step) -> dict[str, Any]:
    """The metadata of a refresh step's `resOutputsEvent` (apitype.StepEventMetadata): its op
    is the step's result, not `refresh` (pkg/engine/update.go, OnResourceStepPost: `op =
    step.(*deploy.RefreshStep).ResultOp()`), with the step's Diffs and DetailedDiff
    (pkg/engine/event_emitter.go, makeStepEventMetadata); `detailedDiff` is null when the step
    has none. The old and new states have secrets masked as `[secret]` (filterPropertyMap)."""
    metadata: dict[str, Any] = {
        "op": step.result,
        "urn": step.urn,
        "type": step.type,
        "old": _event_state(step.old),
        "new": _event_state(step.new),
        "detailedDiff": (
            {key: {"diffKind": kind, "inputDiff": False} for key, kind in step.detailed.items()}
            if step.detailed
            else None
        ),
        "provider": "",
    }
    if step.diffs:
        metadata["diffs"] = list(step.diffs)
    return metadata


def _event_state(resource: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """apitype.StepEventStateMetadata of a resource in plain form; None when there is none."""
    if resource is None:
        return None
    return {
        "type": resource["type"],
        "urn": resource["urn"],
        "custom": bool(resource.get("custom")),
        "id": str(resource.get("id") or ""),
        "parent": str(resource.get("parent") or ""),
        "inputs": _masked(resource.get("inputs") or {}),
        "outputs": _masked(resource.get("outputs") or {}),
        "provider": "",
    }


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        if is_secret(value):
            return "[secret]"
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _record(context: StackContext, operation: str, result: str, changes: Mapping[str, int]) -> None:
    """The history entry of a non-preview operation (backend.UpdateInfo, apitype)."""
    parsed = context.invocation.parsed
    assert parsed is not None
    environment: dict[str, str] = {"exec.kind": parsed.value("exec-kind") or "cli"}
    if parsed.value("exec-agent"):
        environment["exec.agent"] = str(parsed.value("exec-agent"))
    environment.update(git_metadata(context.project.directory))
    now = int(time.time())
    context.backend.add_history(
        context.ref,
        {
            "kind": operation,
            "startTime": now,
            "message": parsed.value("message") or "",
            "environment": environment,
            # As stored: secure values stay ciphertext in history.
            "config": dict(context.settings.document.get("config") or {}),
            "result": result,
            "endTime": now,
            "resourceChanges": dict(changes),
        },
    )


def _print_outputs(invocation: Invocation, deployment: Mapping[str, Any]) -> None:
    """The stack's outputs after an update; secrets always masked (the double prints no
    secret value, `--show-secrets` included)."""
    root = next((r for r in deployment["resources"] if r["type"] == STACK_TYPE), None)
    if root is None or not root.get("outputs"):
        return
    invocation.out("Outputs:")
    for key, value in root["outputs"].items():
        shown = "[secret]" if is_secret(value) else json.dumps(value)
        invocation.out(f"    {key}: {shown}")
