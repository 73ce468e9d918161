"""`pulumi refresh` in the double: it reads the double's AWS account, so a resource changed or
deleted out of band shows as the engine shows it; `--preview-only` writes nothing and takes no
lock; an applied refresh records what it read, and the next `up` puts the program back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli_double.conftest import CONSUMER, Project, ProjectFactory
from tests.cli_double.test_cli_double import deployed, error_of
from tests.support.pulumi_cli_double.aws_account import as_kept
from tests.support.pulumi_cli_double.secrets import SECRET_SIG, SECRET_SIG_KEY

TABLE = "aws:dynamodb/table:Table"
BUCKET = "aws:s3/bucket:Bucket"


def backend_files(project: Project) -> dict[str, bytes]:
    """Every file of the backend (checkpoints, history, backups, locks), by path."""
    root = project.cli.backend / ".pulumi"
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def events_of(project: Project, log: Path, *args: str) -> list[dict[str, Any]]:
    done = project(*args, "--event-log", str(log), PULUMI_DEBUG_COMMANDS="true")
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def results(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """urn -> the metadata of its resOutputsEvent (a refresh step's result)."""
    return {
        event["resOutputsEvent"]["metadata"]["urn"]: event["resOutputsEvent"]["metadata"]
        for event in events
        if "resOutputsEvent" in event
    }


def summary(events: list[dict[str, Any]]) -> dict[str, int]:
    changes: dict[str, int] = next(
        event["summaryEvent"]["resourceChanges"] for event in events if "summaryEvent" in event
    )
    return changes


def test_a_preview_only_refresh_reports_what_changed_out_of_band_and_writes_nothing(
    producer: Project, tmp_path: Path
) -> None:
    deployed(producer, "--secret", "token=never-printed-value")
    cloud = producer.cli.cloud()
    table, bucket = cloud.find(TABLE, "table"), cloud.find(BUCKET, "bucket")
    cloud.change_out_of_band(table, {"billingMode": "PROVISIONED"})
    cloud.delete_out_of_band(bucket)
    before = backend_files(producer)

    events = events_of(producer, tmp_path / "events.json", "refresh", "--preview-only")

    # Before the provider reads it, every step is a `refresh`; its result comes after.
    pre = [event["resourcePreEvent"]["metadata"] for event in events if "resourcePreEvent" in event]
    assert {metadata["op"] for metadata in pre} == {"refresh"}
    assert all(
        event["resourcePreEvent"]["planning"] for event in events if "resourcePreEvent" in event
    )
    found = results(events)
    assert len(found) == len(pre) == 4
    assert found[table]["op"] == "update"
    assert found[table]["diffs"] == ["billingMode"]
    assert found[table]["detailedDiff"] == {
        "billingMode": {"diffKind": "update", "inputDiff": False}
    }
    assert found[table]["new"]["outputs"]["billingMode"] == "PROVISIONED"
    assert found[bucket]["op"] == "delete"
    assert found[bucket]["new"] is None and "diffs" not in found[bucket]
    assert summary(events) == {"same": 2, "update": 1, "delete": 1}
    # Nothing is written: no checkpoint, history entry, backup, and no lock left behind.
    assert backend_files(producer) == before
    assert "never-printed-value" not in (tmp_path / "events.json").read_text(encoding="utf-8")

    shown = producer("refresh", "--preview-only")
    assert shown.stdout.startswith("Previewing refresh (dev):")
    assert " ~  aws:dynamodb/table:Table table update [diff: ~billingMode]" in shown.stdout
    assert " -  aws:s3/bucket:Bucket bucket delete" in shown.stdout
    assert "~ 1 to update" in shown.stdout and "- 1 to delete" in shown.stdout
    assert error_of(producer("refresh", "--preview-only", "--expect-no-changes")) == (
        "error: no changes were expected but changes occurred"
    )
    assert backend_files(producer) == before


def test_without_drift_every_resource_refreshes_the_same(producer: Project, tmp_path: Path) -> None:
    deployed(producer)
    events = events_of(producer, tmp_path / "events.json", "refresh", "--preview-only")
    assert {metadata["op"] for metadata in results(events).values()} == {"same"}
    assert summary(events) == {"same": 4}
    assert producer("refresh", "--preview-only", "--expect-no-changes").returncode == 0


def test_a_preview_only_refresh_takes_no_lock(producer: Project) -> None:
    deployed(producer)
    locks = producer.cli.backend / ".pulumi" / "locks" / "organization" / "producer" / "dev"
    # Another process's update holds the stack.
    (locks / "0b0e2f7c-another-update.json").write_text(
        json.dumps({"pid": 1, "username": "ci", "hostname": "runner", "timestamp": "now"})
    )
    assert producer("refresh", "--preview-only").returncode == 0
    assert "the stack is currently locked by 1 lock(s)" in error_of(producer("refresh", "--yes"))


def test_an_applied_refresh_records_the_cloud_and_up_puts_the_program_back(
    producer: Project, tmp_path: Path
) -> None:
    deployed(producer)
    cloud = producer.cli.cloud()
    table, bucket = cloud.find(TABLE, "table"), cloud.find(BUCKET, "bucket")
    cloud.change_out_of_band(table, {"billingMode": "PROVISIONED"})
    cloud.delete_out_of_band(bucket)

    assert producer("refresh", "--yes").returncode == 0

    history = json.loads(producer("stack", "history", "--json", "--page-size", "1").stdout)
    assert (history[0]["kind"], history[0]["result"]) == ("refresh", "succeeded")
    assert history[0]["resourceChanges"] == {"same": 2, "update": 1, "delete": 1}
    resources = {r["urn"]: r for r in producer.checkpoint()["checkpoint"]["latest"]["resources"]}
    assert bucket not in resources
    assert resources[table]["inputs"]["billingMode"] == "PROVISIONED"
    # The state now matches the cloud, so a refresh finds nothing; `up` then puts the program's
    # table back and creates the bucket again.
    assert summary(events_of(producer, tmp_path / "a.json", "refresh", "--preview-only")) == {
        "same": 3
    }
    up = producer("up", "--yes")
    assert up.returncode == 0, up.stdout
    history = json.loads(producer("stack", "history", "--json", "--page-size", "1").stdout)
    assert history[0]["resourceChanges"] == {"same": 2, "update": 1, "create": 1}
    assert cloud.resources()[table]["properties"]["billingMode"] == "PAY_PER_REQUEST"
    assert bucket in cloud.resources()
    assert summary(events_of(producer, tmp_path / "b.json", "refresh", "--preview-only")) == {
        "same": 4
    }


def test_an_up_alone_does_not_repair_drift(producer: Project, tmp_path: Path) -> None:
    deployed(producer)
    cloud = producer.cli.cloud()
    cloud.change_out_of_band(cloud.find(TABLE, "table"), {"billingMode": "PROVISIONED"})
    # `up` compares the program with the state, which still says PAY_PER_REQUEST.
    assert producer("up", "--yes").returncode == 0
    assert summary(events_of(producer, tmp_path / "e.json", "refresh", "--preview-only")) == {
        "same": 3,
        "update": 1,
    }


def test_a_stack_reference_refreshes_to_its_upstreams_current_outputs(
    producer: Project, project: ProjectFactory, tmp_path: Path
) -> None:
    deployed(producer)
    consumer = deployed(project("consumer", CONSUMER))
    assert summary(events_of(consumer, tmp_path / "a.json", "refresh", "--preview-only")) == {
        "same": 3
    }
    assert producer("config", "set-all", "--plaintext", "greeting=hi").returncode == 0
    assert producer("up", "--yes").returncode == 0

    events = events_of(consumer, tmp_path / "b.json", "refresh", "--preview-only")

    assert summary(events) == {"same": 2, "update": 1}
    (reference,) = [m for m in results(events).values() if m["op"] == "update"]
    assert reference["type"] == "pulumi:pulumi:StackReference"
    # An external resource is compared by outputs only: no keys are named.
    assert "diffs" not in reference and reference["detailedDiff"] is None
    assert reference["new"]["outputs"]["outputs"]["greeting"] == "hi"
    # The upstream's secret output stays masked in the event.
    assert reference["new"]["outputs"]["outputs"]["token"] == "[secret]"


def test_the_account_keeps_a_digest_of_secret_values_never_the_value() -> None:
    secret = {SECRET_SIG_KEY: SECRET_SIG, "value": "hunter2"}
    kept = as_kept({"name": "x", "nested": [{"value": secret}]})
    assert kept["name"] == "x"
    digest = kept["nested"][0]["value"]
    assert set(digest) == {SECRET_SIG_KEY, "sha256"}
    assert "hunter2" not in json.dumps(kept)
    assert as_kept({SECRET_SIG_KEY: SECRET_SIG, "value": "other"}) != digest
