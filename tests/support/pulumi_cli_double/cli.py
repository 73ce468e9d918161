"""The double's commands: parse the command line, run the command, print and exit as the CLI.

Every failure prints `error: <message>` on stderr and exits 255 (pkg/cmd/pulumi/main.go:
`cmd.DisplayErrorMessage(err)`, `os.Exit(-1)`); the Automation API maps the messages to its
errors (pulumi/automation/errors.py): "no stack named ... found" is StackNotFoundError,
"stack ... already exists" StackAlreadyExistsError, "the stack is currently locked by"
ConcurrentUpdateError, anything else CommandError.
"""

from __future__ import annotations

import getpass
import json
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.pulumi_cli_double import engine
from tests.support.pulumi_cli_double.backend import (
    StackRef,
    check_project,
    format_time,
    parse_stack_ref,
)
from tests.support.pulumi_cli_double.errors import EXIT_FAILURE, BailError, CliError
from tests.support.pulumi_cli_double.secrets import PassphraseSecrets, is_secret
from tests.support.pulumi_cli_double.surface import parse
from tests.support.pulumi_cli_double.workspace import (
    Invocation,
    StackSettings,
    child,
    find_project,
    full_key,
    has_secure,
    parse_path,
    require_project,
    reveal,
    select_stack,
    selected_stack,
)

Handler = Callable[[Invocation], int]


def _print_json(invocation: Invocation, value: Any) -> None:
    # ui.PrintJSON: indented by two spaces, no HTML escaping.
    invocation.out(json.dumps(value, indent=2, ensure_ascii=False))


def version(invocation: Invocation) -> int:
    invocation.out(f"v{engine.cli_version()}")
    return 0


def whoami(invocation: Invocation) -> int:
    """pkg/cmd/pulumi/whoami.go; the file backend's user is the OS user (CurrentUser)."""
    assert invocation.parsed is not None
    backend = engine.open_backend(invocation, find_project(invocation.cwd))
    user = getpass.getuser()
    if invocation.parsed.flag("json"):
        _print_json(invocation, {"user": user, "url": backend.url})
    else:
        invocation.out(user)
    return 0


def org_get_default(invocation: Invocation) -> int:
    """pkg/cmd/pulumi/org/org.go: DIY backends do not support organizations."""
    engine.open_backend(invocation, find_project(invocation.cwd))
    raise CliError(f'backends of this type "{socket.gethostname()}" do not support organizations')


def stack_select(invocation: Invocation) -> int:
    parsed = invocation.parsed
    assert parsed is not None
    project = require_project(invocation)
    backend = engine.open_backend(invocation, project)
    name = parsed.value("stack") or (parsed.args[0] if parsed.args else None)
    if not name:
        raise CliError("no stack name given, and the double never prompts for one")
    ref = parse_stack_ref(name, project.name)
    if not backend.exists(ref):
        if not parsed.flag("create"):
            raise CliError(f"no stack named '{ref.fully_qualified}' found")
        _create(invocation, project, backend, ref)
    select_stack(project, invocation.environ, ref)
    return 0


def stack_init(invocation: Invocation) -> int:
    parsed = invocation.parsed
    assert parsed is not None
    project = require_project(invocation)
    backend = engine.open_backend(invocation, project)
    name = parsed.args[0] if parsed.args else parsed.value("stack")
    if not name:
        raise CliError("no stack name given, and the double never prompts for one")
    ref = parse_stack_ref(name, project.name)
    check_project(ref, project.name)
    _create(invocation, project, backend, ref)
    if not parsed.flag("no-select"):
        select_stack(project, invocation.environ, ref)
    return 0


def _create(invocation: Invocation, project: Any, backend: Any, ref: StackRef) -> None:
    """Create the stack and give it a passphrase salt (stack_init.go, CreateStack; for the
    file backend the default secrets provider is the passphrase: createSecretsManager)."""
    parsed = invocation.parsed
    assert parsed is not None
    provider = parsed.value("secrets-provider") or "default"
    if provider not in ("default", "passphrase"):
        raise CliError(
            "the Pulumi CLI double implements only the passphrase secrets provider, not "
            f"{provider!r}"
        )
    if backend.exists(ref):
        raise CliError(f"stack '{ref.fully_qualified}' already exists")
    settings = StackSettings.load(project.settings_path(ref, None, invocation.cwd))
    if settings.salt:
        # A settings file with a salt already: the passphrase must open it.
        PassphraseSecrets(settings.salt, invocation.environ, invocation.cwd).verify()
    else:
        secrets = PassphraseSecrets.new(invocation.environ, invocation.cwd)
        settings.document["encryptionsalt"] = secrets.state
    backend.create(ref)
    settings.save()
    invocation.out(f"Created stack '{ref.shown(project.name)}'")


def stack_ls(invocation: Invocation) -> int:
    """stack_ls.go: this project's stacks (`--all`: every project's), JSON with --json."""
    parsed = invocation.parsed
    assert parsed is not None
    project = find_project(invocation.cwd)
    backend = engine.open_backend(invocation, project)
    wanted = parsed.value("project") or (
        None if parsed.flag("all") or project is None else project.name
    )
    current = selected_stack(project, invocation.environ) if project else None
    rows = []
    for ref in backend.stacks():
        if wanted and ref.project != wanted:
            continue
        row: dict[str, Any] = {
            "name": ref.shown(
                project.name if project else None,
                fully_qualify=parsed.flag("fully-qualify-stack-names"),
            ),
            "current": current == ref.fully_qualified,
            "updateInProgress": backend.is_locked(ref),
        }
        latest = backend.checkpoint(ref)
        if latest is not None:
            manifest_time = (latest.get("manifest") or {}).get("time")
            if manifest_time:
                row["lastUpdate"] = format_time(datetime.fromisoformat(manifest_time))
            row["resourceCount"] = len(latest.get("resources") or [])
        rows.append(row)
    if parsed.flag("json"):
        _print_json(invocation, rows)
    else:
        for row in rows:
            invocation.out(f"{row['name']}{'*' if row['current'] else ''}")
    return 0


def stack_output(invocation: Invocation) -> int:
    """stack_output.go: every output as JSON, secrets `[secret]` unless --show-secrets."""
    parsed = invocation.parsed
    assert parsed is not None
    context = engine.stack_context(invocation)
    form = "value" if parsed.flag("show-secrets") else "mask"
    outputs = engine.stack_outputs(context.backend, context.ref, invocation, form=form)
    plain = {key: (value["value"] if is_secret(value) else value) for key, value in outputs.items()}
    if parsed.args:
        name = parsed.args[0]
        if name not in plain:
            raise CliError(f"current stack does not have output property '{name}'")
        value = plain[name]
        if parsed.flag("json"):
            _print_json(invocation, value)
        else:
            invocation.out(value if isinstance(value, str) else json.dumps(value))
        return 0
    if parsed.flag("json"):
        _print_json(invocation, plain)
    else:
        invocation.out("Current stack outputs:")
        for key, value in plain.items():
            invocation.out(f"    {key}  {value if isinstance(value, str) else json.dumps(value)}")
    return 0


def stack_history(invocation: Invocation) -> int:
    """stack_history.go: newest first, `--page-size` entries (default 10) of `--page` (1);
    config secrets shown only with --show-secrets."""
    parsed = invocation.parsed
    assert parsed is not None
    context = engine.stack_context(invocation)
    page_size = _integer(parsed.value("page-size", "10"), "page-size")
    page = _integer(parsed.value("page", "1"), "page")
    updates = context.backend.history(context.ref, page_size, page)
    secrets: PassphraseSecrets | None = None
    if parsed.flag("show-secrets"):
        secrets = engine.config_secrets(context)
    rows = []
    for update in updates:
        config = {
            key: config_entry(stored, secrets)
            for key, stored in (update.get("config") or {}).items()
        }

        row: dict[str, Any] = {
            "version": 0,
            "kind": update["kind"],
            "startTime": format_time(datetime.fromtimestamp(update["startTime"], UTC)),
            "message": update.get("message", ""),
            "environment": update.get("environment") or {},
            "config": config,
            "result": update.get("result"),
        }
        if update.get("result") != "in-progress":
            row["endTime"] = format_time(datetime.fromtimestamp(update["endTime"], UTC))
            row["resourceChanges"] = update.get("resourceChanges") or {}
        rows.append(row)
    if parsed.flag("json"):
        _print_json(invocation, rows)
    else:
        if not rows:
            invocation.out("Stack has never been updated")
        for row in rows:
            invocation.out(
                f"UpdateKind: {row['kind']}\nStatus: {row['result']}\nMessage: {row['message']}\n"
            )
    return 0


def _integer(text: str | None, flag: str) -> int:
    try:
        return int(str(text))
    except ValueError:
        raise CliError(
            f'invalid argument "{text}" for "--{flag}" flag: strconv.ParseInt: parsing '
            f'"{text}": invalid syntax'
        ) from None


def stack_export(invocation: Invocation) -> int:
    """stack_export.go: `{"version": 3, "deployment": ...}`; --show-secrets decrypts."""
    parsed = invocation.parsed
    assert parsed is not None
    context = engine.stack_context(invocation)
    latest = context.backend.checkpoint(context.ref) or {}
    deployment: Any = latest
    if parsed.flag("show-secrets"):
        secrets = engine.state_secrets(context.backend, context.ref, invocation)
        deployment = engine.unseal(latest, secrets, form="plaintext")
    document = {"version": 3, "deployment": deployment}
    target = parsed.value("file")
    if target:
        (invocation.cwd / target).write_text(json.dumps(document, indent=4), encoding="utf-8")
    else:
        _print_json(invocation, document)
    return 0


def stack_rm(invocation: Invocation) -> int:
    """stack_rm.go: needs --yes when non-interactive; refuses a stack with resources unless
    --force; removes Pulumi.<stack>.yaml unless --preserve-config."""
    parsed = invocation.parsed
    assert parsed is not None
    project = require_project(invocation)
    backend = engine.open_backend(invocation, project)
    name = (
        parsed.args[0]
        if parsed.args
        else parsed.value("stack") or selected_stack(project, invocation.environ)
    )
    if not name:
        raise CliError("no stack selected; please use `pulumi stack select`")
    ref = parse_stack_ref(name, project.name)
    if not parsed.flag("yes"):
        raise CliError("--yes must be passed in to proceed when running in non-interactive mode")
    if not backend.exists(ref):
        raise CliError(f"no stack named '{ref.fully_qualified}' found")
    resources = (backend.checkpoint(ref) or {}).get("resources") or []
    if not parsed.flag("force") and (
        len(resources) > 1 or (resources and resources[0].get("type") != engine.STACK_TYPE)
    ):
        raise CliError(
            f"'{ref.shown(project.name)}' still has resources; removal rejected. Possible "
            f"actions:\n- Make sure that '{ref.shown(project.name)}' is the stack that you want "
            "to destroy\n- Run `pulumi destroy` to delete the resources, then run `pulumi stack "
            "rm`\n- Run `pulumi stack rm --force` to override this error"
        )
    backend.remove(ref, remove_backups=parsed.flag("remove-backups"))
    if not parsed.flag("preserve-config"):
        project.settings_path(ref, None, invocation.cwd).unlink(missing_ok=True)
    invocation.out(f"Stack '{ref.shown(project.name)}' has been removed!")
    return 0


def config_list(invocation: Invocation) -> int:
    """config.go: the stack's config; `--json` maps each key to value and secret."""
    parsed = invocation.parsed
    assert parsed is not None
    context = engine.stack_context(invocation)
    stored = dict(context.settings.document.get("config") or {})
    secrets = (
        engine.config_secrets(context)
        if parsed.flag("show-secrets") and any(has_secure(v) for v in stored.values())
        else None
    )
    result = {key: config_entry(value, secrets) for key, value in stored.items()}
    if parsed.flag("json"):
        _print_json(invocation, result)
    else:
        for key, entry in result.items():
            invocation.out(f"{key}  {entry.get('value', '[secret]')}")
    return 0


def config_entry(stored: Any, secrets: PassphraseSecrets | None) -> dict[str, Any]:
    """One config value as `config --json` and `stack history --json` print it: a secret's
    value only when decrypted (`--show-secrets`), an object also as `objectValue`."""
    secure = has_secure(stored)
    entry: dict[str, Any] = {"secret": secure}
    if not secure or secrets is not None:
        value = reveal(stored, secrets)
        if isinstance(value, (dict, list)):
            entry["value"] = json.dumps(value)
            entry["objectValue"] = value
        else:
            entry["value"] = value
    return entry


def config_key(text: str, project: str, *, path: bool) -> tuple[str, list[Any]]:
    """The full key (`project:` added when no namespace) and, with `--path`, its segments."""
    if path:
        return parse_path(text, project)
    return full_key(text, project), []


def config_get(invocation: Invocation) -> int:
    """config get: the value (secrets decrypted); `--json` gives `{"value", "secret"}`."""
    parsed = invocation.parsed
    assert parsed is not None
    context = engine.stack_context(invocation)
    key_text = parsed.args[0]
    key, segments = config_key(key_text, context.project.name, path=parsed.flag("path"))
    stored: Any = (context.settings.document.get("config") or {}).get(key)
    for segment in segments:
        stored = child(stored, segment)
    if stored is None:
        shown = context.ref.shown(context.project.name)
        raise CliError(f"configuration key '{key_text}' not found for stack '{shown}'")
    secure = has_secure(stored)
    value = reveal(stored, engine.config_secrets(context) if secure else None)
    text = value if isinstance(value, str) else json.dumps(value)
    if parsed.flag("json"):
        document: dict[str, Any] = {"value": text, "secret": secure}
        if isinstance(value, (dict, list)):
            document["objectValue"] = value
        _print_json(invocation, document)
    else:
        invocation.out(text)
    return 0


def config_set_all(invocation: Invocation) -> int:
    """config set-all: `--plaintext k=v` and `--secret k=v`, repeatable; `--path` keys."""
    parsed = invocation.parsed
    assert parsed is not None
    context = engine.stack_context(invocation)
    pairs = [(text, False) for text in parsed.values_of("plaintext")]
    pairs += [(text, True) for text in parsed.values_of("secret")]
    secrets = engine.config_secrets(context) if pairs else None
    for text, secret in pairs:
        key_text, separator, value = text.partition("=")
        if not separator:
            raise CliError(f"could not parse {text} as a configuration key/value pair")
        key, segments = config_key(key_text, context.project.name, path=parsed.flag("path"))
        stored: Any = value
        if secret:
            assert secrets is not None
            stored = {"secure": secrets.encrypt(value)}
        context.settings.set(key, stored, segments)
    context.settings.save()
    return 0


def config_rm(invocation: Invocation) -> int:
    parsed = invocation.parsed
    assert parsed is not None
    context = engine.stack_context(invocation)
    key_text = parsed.args[0]
    key, segments = config_key(key_text, context.project.name, path=parsed.flag("path"))
    context.settings.remove(key, segments)
    context.settings.save()
    return 0


HANDLERS: Mapping[tuple[str, ...], Handler] = {
    ("version",): version,
    ("whoami",): whoami,
    ("org", "get-default"): org_get_default,
    ("stack", "select"): stack_select,
    ("stack", "init"): stack_init,
    ("stack", "ls"): stack_ls,
    ("stack", "output"): stack_output,
    ("stack", "history"): stack_history,
    ("stack", "export"): stack_export,
    ("stack", "rm"): stack_rm,
    ("config",): config_list,
    ("config", "get"): config_get,
    ("config", "set-all"): config_set_all,
    ("config", "rm"): config_rm,
    ("up",): lambda invocation: engine.run_operation(invocation, "update"),
    ("preview",): lambda invocation: engine.run_operation(invocation, "preview"),
    ("destroy",): lambda invocation: engine.run_operation(invocation, "destroy"),
    ("refresh",): lambda invocation: engine.run_operation(invocation, "refresh"),
}


def run(invocation: Invocation) -> int:
    """Run one command line; the exit status the CLI would give."""
    try:
        invocation.parsed = parse(invocation.argv, invocation.environ)
        cwd = invocation.parsed.value("cwd")
        if cwd:
            invocation.cwd = (invocation.cwd / cwd).resolve()
        return HANDLERS[invocation.parsed.command.path](invocation)
    except BailError:
        return EXIT_FAILURE
    except CliError as error:
        invocation.err(f"error: {error}")
        return EXIT_FAILURE
    except Exception:
        # main.go's panicHandler: a bug of the CLI (here, of the double), exit 1.
        invocation.err("The Pulumi CLI encountered a fatal error. This is a bug!")
        invocation.err(traceback.format_exc())
        return 1


def main() -> int:
    import os

    invocation = Invocation(
        argv=sys.argv[1:],
        environ=dict(os.environ),
        cwd=Path.cwd(),
        stdout=sys.stdout,
        stderr=sys.stderr,
    )
    return run(invocation)
