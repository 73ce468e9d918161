"""The real engine without a Pulumi CLI: how it builds workspaces (work dirs, environment,
backend URL, config, stack names, the organization), how it finds the CLI, and the
one-paragraph messages when the CLI is missing or broken. What it does through the CLI is
tested against the CLI double (test_automation_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
from pulumi import automation as auto
from pulumi.automation.errors import InvalidVersionError
from semver import VersionInfo

from tooling.orchestrator.automation import (
    AutomationEngine,
    consumed_from_state,
    drifted_from_events,
    resolve_pulumi_command,
    sdk_version,
)
from tooling.orchestrator.engine import ConsumedValue, DriftedResource
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
    # and the storage stack is throwaway: its table and buckets can be destroyed.
    assert not any(key.startswith("serverless-") for key in engine.config_map("security"))
    storage = {key: value.value for key, value in engine.config_map("storage").items()}
    assert storage["serverless-storage:table_deletion_protection"] == "false"
    assert storage["serverless-storage:force_destroy"] == "true"


def test_a_rollback_program_imports_the_shared_package_of_its_worktree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine appends an inherited PYTHONPATH (a run from a worktree sets one): start clean.
    monkeypatch.delenv("PYTHONPATH", raising=False)
    engine = local_engine(tmp_path)
    program_dir = tmp_path / "worktree" / "stacks" / "api"
    env = engine.environment(program_dir)
    assert env["PYTHONPATH"] == str(tmp_path / "worktree")
    assert "PYTHONPATH" not in engine.environment()
    # An inherited PYTHONPATH still comes after the worktree's.
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert engine.environment(program_dir)["PYTHONPATH"] == os.pathsep.join(
        [str(tmp_path / "worktree"), "/elsewhere"]
    )


def cloud_login(
    monkeypatch: pytest.MonkeyPatch, organizations: list[str], default: str
) -> list[str]:
    """Answer `pulumi whoami` and `pulumi org get-default` as Pulumi Cloud would; the calls."""
    calls: list[str] = []

    def who_am_i(self: auto.LocalWorkspace) -> auto.WhoAmIResult:
        calls.append("whoami")
        return auto.WhoAmIResult(
            user="ada", url="https://api.pulumi.com", organizations=organizations
        )

    def org_get_default(self: auto.LocalWorkspace) -> str:
        calls.append("org get-default")
        return default

    monkeypatch.setattr(auto.LocalWorkspace, "who_am_i", who_am_i)
    monkeypatch.setattr(auto.LocalWorkspace, "org_get_default", org_get_default)
    return calls


def aws_engine(tmp_path: Path, org: str | None = None) -> AutomationEngine:
    target = AwsTarget(repo_root=tmp_path, org=org, credentials_probe=lambda _: "test")
    return AutomationEngine(target, "prod", command=fake_command())


def test_aws_target_uses_the_login_backend_its_org_and_secrets_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud_login(monkeypatch, ["acme", "ada"], "ada")
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
    # The programs read their upstream stacks in their own stack's organization, which the
    # engine tells them: no `org` config is set.
    storage = {key: value.value for key, value in engine.config_map("storage").items()}
    assert storage == {"aws:region": "eu-west-1"}


def test_on_pulumi_cloud_the_organization_is_the_backends_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = cloud_login(monkeypatch, ["acme", "ada"], "acme")
    engine = aws_engine(tmp_path)
    assert engine.fully_qualified_name("api") == "acme/serverless-api/prod"
    assert engine.fully_qualified_name("storage") == "acme/serverless-storage/prod"
    assert calls == ["whoami", "org get-default"], "asked once, then remembered"


def test_on_pulumi_cloud_without_org_or_default_it_stops_with_one_paragraph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud_login(monkeypatch, ["acme", "ada"], "No Default Org Specified")
    with pytest.raises(UnavailableError) as raised:
        aws_engine(tmp_path).fully_qualified_name("security")
    message = str(raised.value)
    assert "\n" not in message
    assert "--org" in message and "PULUMI_ORG" in message
    assert "acme, ada" in message
    assert "organization/" not in message


def test_an_org_the_login_does_not_belong_to_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud_login(monkeypatch, ["acme"], "acme")
    with pytest.raises(UnavailableError, match="not one of the organizations"):
        aws_engine(tmp_path, org="globex").fully_qualified_name("security")


def test_the_file_backend_org_is_used_only_on_a_diy_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def diy_login(self: auto.LocalWorkspace) -> auto.WhoAmIResult:
        return auto.WhoAmIResult(user="ada", url="s3://state-bucket", organizations=None)

    monkeypatch.setattr(auto.LocalWorkspace, "who_am_i", diy_login)
    assert aws_engine(tmp_path).fully_qualified_name("api") == "organization/serverless-api/prod"
    with pytest.raises(UnavailableError, match="file or object-store backend"):
        aws_engine(tmp_path, org="acme").fully_qualified_name("api")


def test_a_missing_cli_binary_is_one_paragraph_not_a_traceback(tmp_path: Path) -> None:
    # The real automation API, driving a CLI path that does not exist: the builtin
    # FileNotFoundError that LocalWorkspace raises must become the install message.
    layer_dir = tmp_path / "stacks" / "security"
    layer_dir.mkdir(parents=True)
    (layer_dir / "Pulumi.yaml").write_text("name: serverless-security\nruntime: python\n")
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


def test_a_rollback_worktree_gets_the_committed_stack_settings_and_the_shared_venv(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / "stacks" / "api").mkdir(parents=True)
    (repo / "stacks" / "api" / "Pulumi.prod.yaml").write_text("encryptionsalt: v1:abc\n")
    (repo / ".venv").mkdir()
    program_dir = tmp_path / "tree" / "stacks" / "api"
    program_dir.mkdir(parents=True)
    target = AwsTarget(repo_root=repo, org="acme", credentials_probe=lambda _: "test")
    engine = AutomationEngine(target, "prod", command=fake_command())

    engine._prepare_program_dir("api", program_dir)

    assert (program_dir / "Pulumi.prod.yaml").read_text() == "encryptionsalt: v1:abc\n"
    assert (tmp_path / "tree" / ".venv").resolve() == (repo / ".venv").resolve()


def test_the_local_target_keeps_its_stack_settings_out_of_the_work_tree(tmp_path: Path) -> None:
    layer_dir = tmp_path / "stacks" / "api"
    layer_dir.mkdir(parents=True)
    (layer_dir / "Pulumi.yaml").write_text(
        "name: serverless-api\nruntime:\n  name: python\n  options:\n    virtualenv: ../../.venv\n"
    )
    engine = local_engine(tmp_path)

    work_dir, options = engine._workspace("api", None)

    assert work_dir == tmp_path / ".pulumi-state" / "workspaces" / "api"
    # The workspace's project file, as the CLI (and the Automation API) reads it.
    settings = auto.LocalWorkspace(
        work_dir=str(work_dir), pulumi_command=fake_command()
    ).project_settings()
    assert options.project_settings is None  # written once here, not on every operation
    assert (work_dir / str(settings.main)).resolve() == layer_dir.resolve()
    assert isinstance(settings.runtime, auto.ProjectRuntimeInfo)
    assert settings.runtime.options == {"virtualenv": str((tmp_path / ".venv").resolve())}


def test_a_shared_private_workspace_is_not_rewritten_while_other_stacks_use_it(
    tmp_path: Path,
) -> None:
    """Environments deployed at once share the local target's workspace per layer: opening it
    for another stack leaves the project file alone, and a new program replaces it whole."""
    layer_dir = tmp_path / "stacks" / "api"
    layer_dir.mkdir(parents=True)
    (layer_dir / "Pulumi.yaml").write_text("name: serverless-api\nruntime: python\n")
    work_dir, _ = local_engine(tmp_path)._workspace("api", None)
    project_file = work_dir / "Pulumi.yaml"
    written = project_file.stat()

    other_stack = AutomationEngine(
        LocalTarget(repo_root=tmp_path), "staging", command=fake_command()
    )
    assert other_stack._workspace("api", None)[0] == work_dir
    again = project_file.stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)

    program_dir = tmp_path / "tree" / "stacks" / "api"
    program_dir.mkdir(parents=True)
    (program_dir / "Pulumi.yaml").write_text("name: serverless-api\nruntime: python\n")
    other_stack._workspace("api", program_dir)
    settings = auto.LocalWorkspace(
        work_dir=str(work_dir), pulumi_command=fake_command()
    ).project_settings()
    assert (work_dir / str(settings.main)).resolve() == program_dir.resolve()
    assert project_file.stat().st_ino != written.st_ino  # replaced, never truncated in place
    assert sorted(path.name for path in work_dir.iterdir()) == ["Pulumi.yaml"]


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


def test_a_pulumi_on_path_that_fails_version_is_one_paragraph(tmp_path: Path) -> None:
    # A real executable on PATH that cannot answer `pulumi version`: PulumiCommand runs it
    # with check_output, which raises CalledProcessError.
    broken = tmp_path / "bin" / "pulumi"
    broken.parent.mkdir()
    broken.write_text(f"#!{sys.executable}\nimport sys\nsys.exit('panic: broken install')\n")
    broken.chmod(0o755)

    with pytest.raises(UnavailableError) as raised:
        resolve_pulumi_command(
            tmp_path,
            which=lambda _: str(broken),
            on_path=lambda version: auto.PulumiCommand(root=str(tmp_path), version=version),
        )

    message = str(raised.value)
    assert "\n" not in message
    assert str(broken) in message
    assert "`pulumi version` failed" in message
    assert f"--version {VERSION}" in message
    assert not isinstance(raised.value.__cause__, subprocess.CalledProcessError)


def _step_event(kind: str, op: str, urn: str, **metadata: object) -> auto.EngineEvent:
    """An engine event as the CLI writes it to `--event-log` (apitype.EngineEvent)."""
    resource_type = urn.split("::")[2]
    body = {"op": op, "urn": urn, "type": resource_type, "provider": "", **metadata}
    return auto.EngineEvent.from_json(
        {"sequence": 1, "timestamp": 0, kind: {"metadata": body, "planning": True}}
    )


def test_drifted_resources_are_read_from_the_refresh_events() -> None:
    queue = "urn:pulumi:dev::serverless-storage::aws:sqs/queue:Queue::dead-letter-queue"
    bucket = "urn:pulumi:dev::serverless-storage::aws:s3/bucketV2:BucketV2::upload-bucket"
    table = "urn:pulumi:dev::serverless-storage::aws:dynamodb/table:Table::idempotency-table"
    group = "urn:pulumi:dev::serverless-storage::aws:cloudwatch/logGroup:LogGroup::logs"
    events = [
        # Before the provider reads a resource, the step is a `refresh`: not a result yet.
        _step_event("resourcePreEvent", "refresh", queue),
        _step_event(
            "resOutputsEvent",
            "update",
            queue,
            diffs=["messageRetentionSeconds"],
            detailedDiff={"messageRetentionSeconds": {"diffKind": "update", "inputDiff": False}},
        ),
        _step_event("resOutputsEvent", "delete", bucket, detailedDiff=None),
        _step_event("resOutputsEvent", "same", group, detailedDiff=None),
        # No changed keys, only property paths: their top-level names, once each.
        _step_event(
            "resOutputsEvent",
            "update",
            table,
            detailedDiff={
                "ttl.enabled": {"diffKind": "update", "inputDiff": False},
                "attributes[0].type": {"diffKind": "update", "inputDiff": False},
                "attributes[1]": {"diffKind": "add", "inputDiff": False},
            },
        ),
        auto.EngineEvent.from_json(
            {
                "sequence": 9,
                "timestamp": 0,
                "summaryEvent": {
                    "maybeCorrupt": False,
                    "durationSeconds": 1,
                    "resourceChanges": {"same": 1, "update": 2, "delete": 1},
                    "PolicyPacks": {},
                },
            }
        ),
    ]

    drifted = drifted_from_events(events)

    assert drifted == (
        DriftedResource(queue, "aws:sqs/queue:Queue", "update", ("messageRetentionSeconds",)),
        DriftedResource(bucket, "aws:s3/bucketV2:BucketV2", "delete", ()),
        DriftedResource(table, "aws:dynamodb/table:Table", "update", ("attributes", "ttl")),
    )
    assert drifted[0].name == "dead-letter-queue"
