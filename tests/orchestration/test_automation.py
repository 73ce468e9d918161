"""The real engine without the Pulumi CLI: how it builds workspaces (work dirs, environment,
backend URL, config, stack names), how it maps the automation API's results and errors, and
the one-paragraph message when the CLI is missing."""

from __future__ import annotations

import urllib.error
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
from pulumi import automation as auto
from pulumi.automation.errors import InvalidVersionError
from semver import VersionInfo

from tooling.orchestrator.automation import (
    AutomationEngine,
    consumed_from_state,
    resolve_pulumi_command,
    sdk_version,
)
from tooling.orchestrator.engine import ConsumedValue, EngineError, OutputValue
from tooling.orchestrator.targets import (
    LOCAL_PASSPHRASE,
    AwsTarget,
    LocalTarget,
    UnavailableError,
)

VERSION = sdk_version()


def fake_command(path: str = "/nonexistent/bin/pulumi") -> auto.PulumiCommand:
    """A PulumiCommand that was never run: its constructor would call `pulumi version`."""
    command = object.__new__(auto.PulumiCommand)
    command.command = path
    command.version = VersionInfo.parse(VERSION)
    return command


def never_resolved() -> auto.PulumiCommand:
    raise AssertionError("constructing the engine must not look for the CLI")


def local_engine(root: Path) -> AutomationEngine:
    return AutomationEngine(LocalTarget(repo_root=root), "local", command=fake_command())


def test_pulumi_cli_is_pinned_to_the_installed_sdk_version() -> None:
    from importlib import metadata

    assert metadata.version("pulumi") == VERSION
    assert VersionInfo.parse(VERSION).major == 3


def test_construction_runs_nothing_and_derives_dirs_and_names(tmp_path: Path) -> None:
    engine = AutomationEngine(
        LocalTarget(repo_root=tmp_path), "local", command_factory=never_resolved
    )

    assert engine.work_dir("security") == tmp_path / "stacks" / "security"
    assert engine.work_dir("observability") == tmp_path / "stacks" / "observability"
    assert engine.fully_qualified_name("storage") == "organization/serverless-storage/local"


def test_local_target_environment_backend_and_passphrase(tmp_path: Path) -> None:
    engine = local_engine(tmp_path)

    assert engine.environment() == {
        "PULUMI_BACKEND_URL": f"file://{tmp_path / '.pulumi-state'}",
        "PULUMI_CONFIG_PASSPHRASE": LOCAL_PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
    }
    options = engine.workspace_options()
    assert options.env_vars == engine.environment()
    assert options.secrets_provider is None
    assert options.pulumi_command is engine.command()
    # Every layer gets the same emulator configuration on the local target.
    for layer in ("security", "storage", "observability"):
        config = engine.config_map(layer)
        assert config["aws:region"].value == "us-east-1"
        assert config["aws:endpoints[0].s3"].value == "http://127.0.0.1:4566"
        assert config["aws:secretKey"].secret is True
        assert not any(key.startswith("serverless-") for key in config)


def test_a_rollback_program_imports_the_shared_package_of_its_worktree(tmp_path: Path) -> None:
    engine = local_engine(tmp_path)
    program_dir = tmp_path / "worktree" / "stacks" / "api"
    env = engine.environment(program_dir)
    assert env["PYTHONPATH"] == str(tmp_path / "worktree")
    assert "PYTHONPATH" not in engine.environment()


def test_aws_target_uses_the_login_backend_its_org_and_secrets_provider(tmp_path: Path) -> None:
    target = AwsTarget(
        repo_root=tmp_path,
        org="acme",
        secrets_provider_url="awskms://alias/pulumi?region=eu-west-1",
        region="eu-west-1",
        credentials_probe=lambda _: "test",
    )
    engine = AutomationEngine(target, "prod", command=fake_command())

    assert engine.fully_qualified_name("compute") == "acme/serverless-compute/prod"
    env = engine.environment()
    assert "PULUMI_BACKEND_URL" not in env
    assert "PULUMI_CONFIG_PASSPHRASE" not in env
    assert engine.workspace_options().secrets_provider == "awskms://alias/pulumi?region=eu-west-1"
    storage = {key: value.value for key, value in engine.config_map("storage").items()}
    assert storage == {"serverless-storage:org": "acme", "aws:region": "eu-west-1"}
    # security reads no upstream stack, so it declares no `org` key to set.
    assert "serverless-security:org" not in engine.config_map("security")


@dataclass
class FakeStack:
    """Stands in for auto.Stack: records calls, returns real automation result objects."""

    name: str
    work_dir: str
    opts: auto.LocalWorkspaceOptions
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    raise_on_up: Exception | None = None

    def set_all_config(self, config: dict[str, auto.ConfigValue], *, path: bool = False) -> None:
        self.calls.append(("set_all_config", {"config": config, "path": path}))

    def up(self, **kwargs: Any) -> auto.UpResult:
        self.calls.append(("up", kwargs))
        if self.raise_on_up is not None:
            raise self.raise_on_up
        kwargs["on_output"]("Updating (local)")
        summary = auto.UpdateSummary(
            kind="update",
            start_time=datetime(2026, 11, 1),
            message=kwargs["message"],
            environment={},
            config={},
            result="succeeded",
            resource_changes={auto.OpType.CREATE: 2, auto.OpType.SAME: 1},
        )
        outputs = {
            "kms_key_arn": auto.OutputValue("arn:aws:kms:key", secret=False),
            "secret_name": auto.OutputValue("hidden", secret=True),
        }
        return auto.UpResult(stdout="", stderr="", summary=summary, outputs=outputs)

    def preview(self, **kwargs: Any) -> auto.PreviewResult:
        self.calls.append(("preview", kwargs))
        changes: auto.OpMap = {auto.OpType.SAME: 3, auto.OpType.UPDATE: 1}
        return auto.PreviewResult(stdout="", stderr="", change_summary=changes)

    def history(self, **kwargs: Any) -> list[auto.UpdateSummary]:
        def summary(message: str, environment: dict[str, str]) -> auto.UpdateSummary:
            return auto.UpdateSummary(
                kind="update",
                start_time=datetime(2026, 11, 1),
                message=message,
                environment=environment,
                config={},
                result="succeeded",
                # `stack history --json` gives plain strings where the type says OpType.
                resource_changes=cast(auto.OpMap, {"same": 3}),
                version=2,
            )

        return [
            summary(f"deploy x by tooling.orchestrator; commit={'a' * 40}", {}),
            summary("manual", {"git.head": "b" * 40}),
        ]


@dataclass
class FakeAutomation:
    stacks: list[FakeStack] = field(default_factory=list)
    missing: bool = False
    raise_on_up: Exception | None = None

    def create_or_select_stack(
        self, *, stack_name: str, work_dir: str, opts: auto.LocalWorkspaceOptions
    ) -> FakeStack:
        stack = FakeStack(stack_name, work_dir, opts, raise_on_up=self.raise_on_up)
        self.stacks.append(stack)
        return stack

    def select_stack(
        self, *, stack_name: str, work_dir: str, opts: auto.LocalWorkspaceOptions
    ) -> FakeStack:
        if self.missing:
            result = auto.CommandResult(stdout="", stderr="error: no stack named 'x' found", code=1)
            raise auto.StackNotFoundError(result)
        return self.create_or_select_stack(stack_name=stack_name, work_dir=work_dir, opts=opts)


@pytest.fixture
def fake_auto(monkeypatch: pytest.MonkeyPatch) -> FakeAutomation:
    fake = FakeAutomation()
    monkeypatch.setattr(auto, "create_or_select_stack", fake.create_or_select_stack)
    monkeypatch.setattr(auto, "select_stack", fake.select_stack)
    return fake


def test_up_opens_the_layer_directory_sets_config_and_records_the_message(
    tmp_path: Path, fake_auto: FakeAutomation
) -> None:
    engine = AutomationEngine(
        LocalTarget(repo_root=tmp_path),
        "local",
        command=fake_command(),
        policy_packs=["policies/baseline"],
    )
    lines: list[str] = []

    result = engine.up(
        "security", message="deploy security; commit=abc1234", on_output=lines.append
    )

    (stack,) = fake_auto.stacks
    assert stack.name == "organization/serverless-security/local"
    assert stack.work_dir == str(tmp_path / "stacks" / "security")
    assert stack.opts.env_vars == engine.environment()
    (config_call, up_call) = stack.calls
    assert config_call[1]["path"] is True
    assert config_call[1]["config"]["aws:region"].value == "us-east-1"
    kwargs = up_call[1]
    assert kwargs["message"] == "deploy security; commit=abc1234"
    assert kwargs["policy_packs"] == ["policies/baseline"]
    assert kwargs["color"] == "never"
    assert lines == ["Updating (local)"]
    assert result.resource_changes == {"create": 2, "same": 1}
    assert result.outputs == {
        "kms_key_arn": OutputValue("arn:aws:kms:key", False),
        "secret_name": OutputValue("hidden", True),
    }
    # The file backend's directory exists before the first CLI call.
    assert (tmp_path / ".pulumi-state").is_dir()


def test_preview_maps_the_change_summary(tmp_path: Path, fake_auto: FakeAutomation) -> None:
    result = local_engine(tmp_path).preview("api", on_output=lambda _: None)
    assert result.resource_changes == {"same": 3, "update": 1}
    assert fake_auto.stacks[0].calls[-1][1]["policy_packs"] is None


def test_history_reads_the_commit_from_the_message_or_the_cli_git_metadata(
    tmp_path: Path, fake_auto: FakeAutomation
) -> None:
    records = local_engine(tmp_path).history("compute")
    assert [record.commit for record in records] == ["a" * 40, "b" * 40]
    assert records[0].succeeded_update
    assert records[0].resource_changes == {"same": 3}


def test_an_absent_stack_has_no_outputs_history_or_consumed_values(
    tmp_path: Path, fake_auto: FakeAutomation
) -> None:
    fake_auto.missing = True
    engine = local_engine(tmp_path)
    assert engine.stack_exists("storage") is False
    assert engine.outputs("storage") == {}
    assert engine.history("storage") == []
    assert engine.consumed_values("storage") == {}
    assert engine.destroy("storage", message="m", on_output=lambda _: None).resource_changes == {}


def test_command_errors_become_engine_errors_with_transient_reasons(
    tmp_path: Path, fake_auto: FakeAutomation
) -> None:
    stderr = "error: 1 error occurred:\n  * creating IAM Role: ThrottlingException: Rate exceeded"
    fake_auto.raise_on_up = auto.CommandError(auto.CommandResult("", stderr, 255))

    with pytest.raises(EngineError) as raised:
        local_engine(tmp_path).up("security", message="m", on_output=lambda _: None)

    assert raised.value.layer == "security"
    assert "ThrottlingException" in raised.value.detail
    assert raised.value.transient is not None


def test_a_locked_stack_is_a_transient_concurrent_update(
    tmp_path: Path, fake_auto: FakeAutomation
) -> None:
    result = auto.CommandResult("", "error: the stack is currently locked by 1 lock(s)", 255)
    fake_auto.raise_on_up = auto.ConcurrentUpdateError(result)

    with pytest.raises(EngineError) as raised:
        local_engine(tmp_path).up("storage", message="m", on_output=lambda _: None)

    assert raised.value.transient is not None
    assert "ConcurrentUpdateError" in raised.value.transient


def test_a_permanent_error_is_not_transient(tmp_path: Path, fake_auto: FakeAutomation) -> None:
    result = auto.CommandResult("", "error: MalformedPolicyDocument: bad principal", 255)
    fake_auto.raise_on_up = auto.CommandError(result)
    with pytest.raises(EngineError) as raised:
        local_engine(tmp_path).up("storage", message="m", on_output=lambda _: None)
    assert raised.value.transient is None


def test_a_missing_cli_binary_is_one_paragraph_not_a_traceback(tmp_path: Path) -> None:
    # The real automation API, driving a CLI path that does not exist: the builtin
    # FileNotFoundError that LocalWorkspace raises must become the install message.
    engine = AutomationEngine(
        LocalTarget(repo_root=tmp_path), "local", command=fake_command(str(tmp_path / "pulumi"))
    )
    with pytest.raises(UnavailableError) as raised:
        engine.stack_exists("security")
    message = str(raised.value)
    assert "\n" not in message
    assert f"Pulumi CLI {VERSION}" in message
    assert "https://www.pulumi.com/docs/install/" in message


def test_missing_cli_offline_install_fails_with_the_pinned_version(tmp_path: Path) -> None:
    attempts: list[tuple[str, VersionInfo]] = []

    def offline(root: str, version: VersionInfo) -> auto.PulumiCommand:
        attempts.append((root, version))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(UnavailableError) as raised:
        resolve_pulumi_command(tmp_path, which=lambda _: None, install=offline)

    assert attempts == [(str(tmp_path / ".pulumi-cli" / f"v{VERSION}"), VersionInfo.parse(VERSION))]
    message = str(raised.value)
    assert "\n" not in message
    assert f"--version {VERSION}" in message
    assert "curl -fsSL https://get.pulumi.com" in message
    assert "URLError" in message
    assert "offline" in message


def test_a_recent_cli_on_path_is_used_without_installing(tmp_path: Path) -> None:
    found = fake_command("/usr/local/bin/pulumi")
    required: list[VersionInfo] = []

    def on_path(version: VersionInfo) -> auto.PulumiCommand:
        required.append(version)
        return found

    def must_not_install(root: str, version: VersionInfo) -> auto.PulumiCommand:
        raise AssertionError("installed although a CLI was on PATH")

    command = resolve_pulumi_command(
        tmp_path,
        which=lambda _: "/usr/local/bin/pulumi",
        on_path=on_path,
        install=must_not_install,
    )
    assert command is found
    # The CLI on PATH must be at least the pinned SDK version.
    assert required == [VersionInfo.parse(VERSION)]


def test_an_older_cli_on_path_makes_it_install_the_pinned_one(tmp_path: Path) -> None:
    installed = fake_command(str(tmp_path / ".pulumi-cli" / "bin" / "pulumi"))

    def too_old(version: VersionInfo) -> auto.PulumiCommand:
        raise InvalidVersionError("Minimum version requirement failed")

    command = resolve_pulumi_command(
        tmp_path,
        which=lambda _: "/usr/bin/pulumi",
        on_path=too_old,
        install=lambda root, version: installed,
    )
    assert command is installed


def test_preflight_asks_for_the_shared_virtualenv(tmp_path: Path) -> None:
    engine = local_engine(tmp_path)
    with pytest.raises(UnavailableError, match="nox -s dev"):
        engine.preflight()
    (tmp_path / ".venv").mkdir()
    engine.preflight()


def test_a_rollback_worktree_gets_the_stack_settings_and_the_shared_venv(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "stacks" / "api").mkdir(parents=True)
    (repo / "stacks" / "api" / "Pulumi.local.yaml").write_text("encryptionsalt: v1:abc\n")
    (repo / ".venv").mkdir()
    program_dir = tmp_path / "tree" / "stacks" / "api"
    program_dir.mkdir(parents=True)
    engine = AutomationEngine(LocalTarget(repo_root=repo), "local", command=fake_command())

    engine._prepare_program_dir("api", program_dir)

    assert (program_dir / "Pulumi.local.yaml").read_text() == "encryptionsalt: v1:abc\n"
    assert (tmp_path / "tree" / ".venv").resolve() == (repo / ".venv").resolve()


def test_consumed_values_come_from_stack_reference_state() -> None:
    deployment = {
        "resources": [
            {"type": "pulumi:pulumi:Stack", "outputs": {}},
            {
                "type": "pulumi:pulumi:StackReference",
                "inputs": {"name": "organization/serverless-security/local"},
                "outputs": {
                    "name": "organization/serverless-security/local",
                    "outputs": {
                        "kms_key_arn": "arn:aws:kms:us-east-1:1:key/k",
                        "secret_name": {
                            "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                            "plaintext": '"app-secret"',
                        },
                        "api_key_id": {
                            "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                            "ciphertext": "v1:opaque",
                        },
                    },
                },
            },
            {
                "type": "pulumi:pulumi:StackReference",
                "inputs": {"name": "acme/other-project/local"},
                "outputs": {"outputs": {"x": 1}},
            },
        ]
    }

    consumed = consumed_from_state(deployment)

    assert consumed == {
        "security": {
            "kms_key_arn": ConsumedValue("arn:aws:kms:us-east-1:1:key/k"),
            "secret_name": ConsumedValue("app-secret"),
            "api_key_id": ConsumedValue(None, known=False),
        }
    }
