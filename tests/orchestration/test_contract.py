"""The contract guard: the manifest at a git revision, refused and allowed key removals."""

from __future__ import annotations

import sys

import pytest

from shared.manifest import MANIFEST, Manifest
from tests.orchestration.conftest import SmallRepo, git, load_manifest, manifest_source
from tooling.gitrepo import GitError
from tooling.orchestrator.contract import guard, manifest_at, missing_outputs, refusal


def test_manifest_at_a_revision_is_the_file_as_committed_there(small_repo: SmallRepo) -> None:
    old = small_repo.commit("one", manifest_source(security_outputs=("kms_key_arn",)))
    new = small_repo.commit("two")

    at_old = manifest_at(small_repo.repo, old)
    at_new = manifest_at(small_repo.repo, new)

    assert set(at_old.layers[0].outputs) == {"kms_key_arn"}
    assert set(at_new.layers[0].outputs) == {"kms_key_arn", "kms_alias_name"}
    # Loading an old manifest leaves the imported one and sys.modules untouched.
    assert "kms_alias_name" in MANIFEST.layer("security").outputs
    assert not [name for name in sys.modules if name.startswith("_orchestrator_manifest_")]


def test_manifest_at_a_revision_without_the_file_fails(small_repo: SmallRepo) -> None:
    (small_repo.root / "README").write_text("before the manifest\n")
    git(small_repo.root, "add", "-A")
    git(small_repo.root, "commit", "-q", "-m", "zero")
    with pytest.raises(GitError):
        manifest_at(small_repo.repo, git(small_repo.root, "rev-parse", "HEAD"))


def test_removing_a_consumed_key_is_refused_naming_every_consumer(
    small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    # At this revision nobody consumed kms_key_arn, and security did not promise it.
    rev = small_repo.commit(
        "old",
        manifest_source(security_outputs=("kms_alias_name",), storage_reads=(), compute_reads=()),
    )

    violations = guard(
        "security", promising=manifest_at(small_repo.repo, rev), consumers=small_manifest
    )

    assert [str(v) for v in violations] == [
        "storage consumes security.kms_key_arn",
        "compute consumes security.kms_key_arn",
    ]
    message = refusal("security", violations, rev[:12])
    assert "storage consumes security.kms_key_arn" in message
    assert "compute consumes security.kms_key_arn" in message


def test_removing_an_unconsumed_key_is_allowed(
    small_repo: SmallRepo, small_manifest: Manifest
) -> None:
    rev = small_repo.commit("old", manifest_source(security_outputs=("kms_key_arn",)))

    assert (
        guard("security", promising=manifest_at(small_repo.repo, rev), consumers=small_manifest)
        == []
    )


def test_a_layer_missing_from_the_promising_manifest_breaks_every_consumed_key(
    small_manifest: Manifest,
) -> None:
    without_storage = load_manifest(
        manifest_source()
        .replace('name="storage"', 'name="archive"')
        .replace('"storage": ("s3_bucket_name",)', '"archive": ("s3_bucket_name",)')
    )
    violations = guard("storage", promising=without_storage, consumers=small_manifest)
    assert [(v.consumer, v.key) for v in violations] == [("compute", "s3_bucket_name")]


def test_the_current_manifest_satisfies_its_own_consumers() -> None:
    for name in MANIFEST.order:
        assert guard(name, promising=MANIFEST, consumers=MANIFEST) == []


def test_missing_outputs_lists_promised_keys_absent_from_the_stack() -> None:
    promised = MANIFEST.layer("storage").outputs
    deployed = {key: "x" for key in promised if key != "s3_bucket_arn"}
    deployed["extra_name"] = "ignored"
    assert missing_outputs(promised, deployed) == ["s3_bucket_arn"]
    assert missing_outputs(promised, dict.fromkeys(promised, "x")) == []
