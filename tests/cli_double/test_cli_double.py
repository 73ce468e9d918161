"""The CLI double enforces the CLI's documented surface: what a caller gets wrong fails as it
fails with the real CLI, and what it does is kept where and how the file backend keeps it.

Each test runs the `pulumi` executable found on PATH, or the Automation API over it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pulumi import automation as auto

from tests.cli_double.conftest import CONSUMER, PASSPHRASE, Project, ProjectFactory
from tests.conftest import PulumiCli
from tests.support.pulumi_cli_double.engine import cli_version

FAILED = 255  # every failed command (pkg/cmd/pulumi/main.go: os.Exit(-1))


def deployed(producer: Project, *config: str) -> Project:
    assert producer("stack", "init", "dev").returncode == 0
    if config:
        assert producer("config", "set-all", *config).returncode == 0
    done = producer("up", "--yes", "--skip-preview")
    assert done.returncode == 0, done.stdout + done.stderr
    return producer


def error_of(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == FAILED, done.stdout + done.stderr
    return done.stderr.strip()


def test_version_is_the_pinned_sdk_version(producer: Project) -> None:
    done = producer("version")
    assert (done.returncode, done.stdout.strip()) == (0, f"v{cli_version()}")


def test_the_executable_runs_commands_itself_without_the_server(producer: Project) -> None:
    # No PULUMI_DOUBLE_SOCKET: the executable runs the command in its own process.
    alone = producer("whoami", "--json", PULUMI_DOUBLE_SOCKET="")
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["url"] == producer.cli.backend_url


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("up", "--yes", "--frobnicate"), "error: unknown flag: --frobnicate"),
        (("stack", "ls", "-z"), "error: unknown shorthand flag: 'z' in -z"),
        (("frobnicate",), 'error: unknown command "frobnicate" for "pulumi"'),
        (("stack", "frobnicate"), 'error: unknown command "frobnicate" for "pulumi stack"'),
        (("stack", "select", "--stack"), "error: flag needs an argument: --stack"),
        (("config", "get"), "error: accepts 1 arg(s), received 0"),
        # --event-log exists only when PULUMI_DEBUG_COMMANDS is set (operations/preview.go).
        (("preview", "--event-log", "events.json"), "error: unknown flag: --event-log"),
    ],
)
def test_unknown_flags_and_commands_fail_like_the_cli(
    producer: Project, args: tuple[str, ...], message: str
) -> None:
    assert error_of(producer(*args)) == message


def test_a_flag_the_cli_has_but_the_double_lacks_is_not_ignored(producer: Project) -> None:
    assert "does not implement it" in error_of(producer("up", "--yes", "--target", "urn:x"))


@pytest.mark.parametrize("operation", ["up", "destroy", "refresh"])
def test_changing_operations_need_yes_when_non_interactive(
    producer: Project, operation: str
) -> None:
    assert producer("stack", "init", "dev").returncode == 0
    message = error_of(producer("--non-interactive", operation))
    # refresh.go names the third way out, a refresh that only previews.
    flags = "--yes or --skip-preview" + (" or --preview-only" if operation == "refresh" else "")
    assert message == (
        f"error: {flags} must be passed in to proceed when running in non-interactive mode"
    )
    assert error_of(producer("stack", "rm", "dev")).startswith("error: --yes must be passed")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("acme/producer/dev", "organization name must be 'organization'"),
        ("organization/other/dev", "provided project name 'other' doesn't match Pulumi.yaml"),
        (
            "dev env",
            "may only contain alphanumeric, hyphens, underscores, or periods: invalid "
            "character ' ' at position 3",
        ),
        ("x" * 101, "a stack name cannot exceed 100 characters"),
    ],
)
def test_stack_names_follow_the_file_backends_rules(
    producer: Project, name: str, message: str
) -> None:
    assert message in error_of(producer("stack", "init", name))


def test_a_passphrase_is_required_and_must_open_the_recorded_salt(
    producer: Project, tmp_path: Path
) -> None:
    unset = producer("stack", "init", "dev", PULUMI_CONFIG_PASSPHRASE="")
    assert unset.returncode == 0, "an empty passphrase is still a passphrase"
    environ_without = {k: v for k, v in producer.env.items() if k != "PULUMI_CONFIG_PASSPHRASE"}
    producer.env = environ_without
    missing = producer("stack", "init", "qa")
    assert error_of(missing) == (
        "error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
        "PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
    )
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    created = producer("stack", "init", "qa", PULUMI_CONFIG_PASSPHRASE_FILE=str(passphrase_file))
    assert created.returncode == 0
    assert "encryptionsalt: v1:" in producer.settings("qa")
    wrong = producer(
        "config", "set-all", "--secret", "token=x", "-s", "qa", PULUMI_CONFIG_PASSPHRASE="not it"
    )
    assert error_of(wrong) == "error: incorrect passphrase"
    assert error_of(producer("preview", "-s", "qa", PULUMI_CONFIG_PASSPHRASE="not it")) == (
        "error: incorrect passphrase"
    )


def test_the_file_backend_layout_on_disk(producer: Project) -> None:
    deployed(producer)
    state = producer.cli.backend / ".pulumi"
    assert (state / "meta.yaml").read_text() == "version: 1\n"
    checkpoint = producer.checkpoint()
    assert checkpoint["version"] == 3
    assert checkpoint["checkpoint"]["stack"] == "organization/producer/dev"
    latest = checkpoint["checkpoint"]["latest"]
    assert latest["secrets_providers"]["type"] == "passphrase"
    assert latest["resources"][0]["type"] == "pulumi:pulumi:Stack"
    assert (state / "stacks" / "producer" / "dev.json.bak").exists()
    history = sorted((state / "history" / "producer" / "dev").iterdir())
    assert [path.name.split(".", 1)[1] for path in history] == ["checkpoint.json", "history.json"]
    assert list((state / "backups" / "producer" / "dev").glob("dev.*.json"))
    assert not list((state / "locks").rglob("*.json")), "no lock outlives its command"


def test_the_sdk_maps_the_doubles_errors_to_its_own(producer: Project) -> None:
    deployed(producer)
    options = auto.LocalWorkspaceOptions(env_vars=producer.env)
    directory = str(producer.directory)
    with pytest.raises(auto.StackNotFoundError):
        auto.select_stack(producer.stack("nope"), work_dir=directory, opts=options)
    with pytest.raises(auto.StackAlreadyExistsError):
        auto.create_stack(producer.stack(), work_dir=directory, opts=options)
    # `stack ls --json` parses as the SDK expects (names, times, counts).
    (summary,) = auto.LocalWorkspace(work_dir=directory, env_vars=producer.env).list_stacks()
    assert (summary.name, summary.current, summary.resource_count) == ("dev", True, 4)
    assert summary.last_update is not None
    # A lock left by another process: the file backend's conflict.
    lock = producer.cli.backend / ".pulumi/locks/organization/producer/dev/other.json"
    lock.write_text(json.dumps({"pid": 1, "username": "ada", "hostname": "ci", "timestamp": ""}))
    stack = auto.select_stack(producer.stack(), work_dir=directory, opts=options)
    with pytest.raises(auto.ConcurrentUpdateError, match="currently locked by 1 lock"):
        stack.up()


def test_secrets_are_encrypted_in_settings_and_state_and_masked_in_output(
    producer: Project, project: ProjectFactory
) -> None:
    deployed(producer, "--secret", "token=s3cr3t-value", "--plaintext", "greeting=hi")
    # A consumer reads the secret output: its state keeps it encrypted too, in its own
    # StackReference and in its own outputs.
    consumer = deployed(project("consumer", CONSUMER))
    consumer_state = json.dumps(consumer.checkpoint())
    assert "s3cr3t-value" not in consumer_state
    assert json.loads(consumer("stack", "output", "--json").stdout)["token_seen"] == "[secret]"
    settings = producer.settings()
    assert "s3cr3t-value" not in settings
    assert "secure: v1:" in settings
    state = json.dumps(producer.checkpoint())
    assert "s3cr3t-value" not in state
    assert '"ciphertext": "v1:' in state
    masked = json.loads(producer("stack", "output", "--json").stdout)
    assert masked == {"bucket_name": "producer-dev", "greeting": "hi", "token": "[secret]"}
    shown = json.loads(producer("stack", "output", "--json", "--show-secrets").stdout)
    assert shown["token"] == "s3cr3t-value"
    history = json.loads(producer("stack", "history", "--json").stdout)
    assert history[0]["config"]["producer:token"] == {"secret": True}
    exported = producer("stack", "export", "--show-secrets").stdout
    assert '"plaintext": "\\"s3cr3t-value\\""' in exported
    got = json.loads(producer("config", "get", "token", "--json").stdout)
    assert got == {"value": "s3cr3t-value", "secret": True}


def test_path_keys_set_structured_values(producer: Project) -> None:
    assert producer("stack", "init", "dev").returncode == 0
    done = producer(
        "config",
        "set-all",
        "--path",
        "--plaintext",
        "aws:endpoints[0].s3=http://127.0.0.1:4566",
        "--plaintext",
        "aws:endpoints[0].sqs=http://127.0.0.1:4566",
        "--secret",
        "aws:secretKey=local",
    )
    assert done.returncode == 0, done.stderr
    assert "aws:endpoints:\n  - s3: http://127.0.0.1:4566\n    sqs: http://127.0.0.1:4566" in (
        producer.settings()
    )
    value = json.loads(producer("config", "get", "--path", "aws:endpoints[0].sqs", "--json").stdout)
    assert value == {"value": "http://127.0.0.1:4566", "secret": False}
    listed = json.loads(producer("config", "--json", "--show-secrets").stdout)
    assert listed["aws:endpoints"]["objectValue"] == [
        {"s3": "http://127.0.0.1:4566", "sqs": "http://127.0.0.1:4566"}
    ]
    assert listed["aws:secretKey"] == {"secret": True, "value": "local"}


def test_history_gives_the_ten_newest_unless_a_page_size_is_given(producer: Project) -> None:
    deployed(producer)
    for _ in range(11):
        assert producer("refresh", "--yes").returncode == 0
    default = json.loads(producer("stack", "history", "--json").stdout)
    assert len(default) == 10
    assert [entry["kind"] for entry in default] == ["refresh"] * 10
    everything = json.loads(producer("stack", "history", "--json", "--page-size", "20").stdout)
    assert len(everything) == 12
    assert everything[-1]["kind"] == "update"
    last_page = producer("stack", "history", "--json", "--page-size", "5", "--page", "3")
    assert len(json.loads(last_page.stdout)) == 2


def test_changes_compare_inputs_and_reads_are_no_change(
    producer: Project, project: ProjectFactory
) -> None:
    deployed(producer)
    consumer = deployed(project("consumer", CONSUMER))
    options = auto.LocalWorkspaceOptions(env_vars=consumer.env)
    stack = auto.select_stack(consumer.stack(), work_dir=str(consumer.directory), opts=options)
    # Every preview re-reads the StackReference: a `read`, which HasChanges ignores.
    preview = stack.preview()
    assert preview.change_summary == {"same": 2, "read": 1}
    assert stack.preview(expect_no_changes=True).change_summary == {"same": 2, "read": 1}
    # A new input upstream is an update downstream.
    assert producer("config", "set-all", "--plaintext", "protect_table=true").returncode == 0
    up = producer("up", "--yes")
    assert up.returncode == 0
    history = json.loads(producer("stack", "history", "--json", "--page-size", "1").stdout)
    assert history[0]["resourceChanges"] == {"same": 3, "update": 1}


def test_a_file_event_log_ends_with_a_cancel_event(producer: Project, tmp_path: Path) -> None:
    deployed(producer)
    log = tmp_path / "events.json"
    done = producer("preview", "--event-log", str(log), PULUMI_DEBUG_COMMANDS="true")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert "preludeEvent" in events[0]
    summary = next(event["summaryEvent"] for event in events if "summaryEvent" in event)
    assert summary["resourceChanges"] == {"same": 4}
    assert "cancelEvent" in events[-1]


def test_a_protected_table_refuses_destroy(producer: Project) -> None:
    deployed(producer, "--plaintext", "protect_table=true")
    done = producer("destroy", "--yes")
    assert done.returncode == FAILED
    assert "can't be deleted while DeletionProtectionEnabled is set to True" in done.stdout
    types = [r["type"] for r in producer.checkpoint()["checkpoint"]["latest"]["resources"]]
    assert "aws:dynamodb/table:Table" in types, "what AWS refused is still in state"
    history = json.loads(producer("stack", "history", "--json", "--page-size", "1").stdout)
    assert history[0]["result"] == "failed"


def test_a_deleted_secrets_name_stays_reserved(producer: Project) -> None:
    deployed(producer, "--plaintext", "secret_name=producer/fixed")
    assert producer("destroy", "--yes").returncode == 0
    again = producer("up", "--yes")
    assert again.returncode == FAILED
    assert "a secret with this name is already scheduled for deletion" in again.stdout
    # A name completed from a prefix is new for every creation.
    assert producer("config", "rm", "secret_name").returncode == 0
    assert producer("up", "--yes").returncode == 0, "a prefixed name is unique per creation"


def test_policy_packs_resolve_from_the_working_directory(producer: Project, tmp_path: Path) -> None:
    deployed(producer)
    pack = tmp_path / "packs" / "baseline"
    pack.mkdir(parents=True)
    (pack / "PulumiPolicy.yaml").write_text("runtime: python\n")
    assert producer("preview", "--policy-pack", "../packs/baseline").returncode == 0
    missing = error_of(producer("preview", "--policy-pack", "packs/baseline"))
    assert f'"{producer.directory / "packs" / "baseline"}"' in missing


def test_whoami_and_organizations_on_the_file_backend(producer: Project) -> None:
    whoami = json.loads(producer("whoami", "--json").stdout)
    assert whoami["url"] == producer.cli.backend_url
    assert "organizations" not in whoami
    assert "do not support organizations" in error_of(producer("org", "get-default"))


def test_a_program_error_fails_the_update_and_is_recorded(producer: Project) -> None:
    deployed(producer)
    assert producer("config", "set-all", "--plaintext", "fail=true").returncode == 0
    done = producer("up", "--yes")
    assert done.returncode == FAILED
    assert "error: the producer was told to fail" in done.stdout
    history = json.loads(producer("stack", "history", "--json", "--page-size", "1").stdout)
    assert history[0]["result"] == "failed"


def test_the_projects_virtualenv_must_exist(producer: Project, pulumi_cli: PulumiCli) -> None:
    project_file = producer.directory / "Pulumi.yaml"
    project_file.write_text(
        project_file.read_text().replace(
            "runtime: python", "runtime:\n  name: python\n  options:\n    virtualenv: venv"
        )
    )
    assert producer("stack", "init", "dev").returncode == 0
    assert "'venv'" in error_of(producer("up", "--yes"))
