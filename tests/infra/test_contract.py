"""The five programs, run in order, honour the manifest: what is promised is exported, and
everything consumed is there."""

from __future__ import annotations

import pytest

from shared.exports import ContractError, export_outputs
from shared.manifest import MANIFEST, OUTPUT_KEY_PATTERN
from shared.tags import REQUIRED_TAG_KEYS
from tooling.mock_engine import PLACEHOLDER_LOCATION, LayerRun, SynthesizingMocks, use_mocks


def test_each_layer_exports_exactly_what_it_promises(chain: dict[str, LayerRun]) -> None:
    for name, run in chain.items():
        assert set(run.exports) == set(MANIFEST.layer(name).outputs), name
        for key, exported in run.exports.items():
            assert OUTPUT_KEY_PATTERN.match(key), key
            assert exported.value not in (None, ""), f"{name}.{key} is empty"


def test_every_consumed_key_is_exported_by_its_producer(chain: dict[str, LayerRun]) -> None:
    for layer in MANIFEST.layers:
        for upstream, key in layer.consumed_keys():
            assert key in chain[upstream].exports, f"{layer.name} consumes {upstream}.{key}"


def test_every_layer_references_exactly_its_upstreams_by_fully_qualified_name(
    chain: dict[str, LayerRun],
) -> None:
    for name, run in chain.items():
        expected = [
            f"organization/serverless-{upstream}/dev"
            for upstream in MANIFEST.layer(name).depends_on
        ]
        assert sorted(run.stack_references) == sorted(expected), name


def _mock_program() -> None:
    use_mocks(SynthesizingMocks(PLACEHOLDER_LOCATION, {}), project="serverless-api", stack="dev")


def test_exporting_an_undeclared_key_is_refused() -> None:
    _mock_program()
    promised = dict.fromkeys(MANIFEST.layer("observability").outputs, "value")
    with pytest.raises(
        ContractError, match=r"keys the manifest does not declare \['alarm_count_id'\]"
    ):
        export_outputs(MANIFEST.layer("observability"), {**promised, "alarm_count_id": "9"})


def test_leaving_out_a_promised_key_is_refused() -> None:
    _mock_program()
    promised = dict.fromkeys(MANIFEST.layer("observability").outputs, "value")
    del promised["dashboard_url"]
    with pytest.raises(ContractError, match=r"missing promised keys \['dashboard_url'\]"):
        export_outputs(MANIFEST.layer("observability"), promised)


def test_every_taggable_resource_carries_the_standard_tags(chain: dict[str, LayerRun]) -> None:
    tagged_types = set()
    for name, run in chain.items():
        layer = MANIFEST.layer(name)
        for resource in run.aws_resources:
            if "tags" not in resource.inputs:
                continue
            tagged_types.add(resource.type)
            tags = resource.inputs["tags"]
            assert set(REQUIRED_TAG_KEYS) <= set(tags), f"{name}/{resource.name}: {tags}"
            assert tags["layer"] == name
            assert tags["environment"] == "dev"
            assert tags["owner"] == layer.owner
    # Taggable types of every layer were seen, so the transformation really ran everywhere.
    assert {
        "aws:kms/key:Key",
        "aws:s3/bucket:Bucket",
        "aws:lambda/function:Function",
        "aws:apigateway/stage:Stage",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
    } <= tagged_types


def test_no_taggable_resource_is_missed(chain: dict[str, LayerRun]) -> None:
    import pulumi_aws as aws

    taggable_tokens = {
        "aws:kms/key:Key": aws.kms.Key,
        "aws:iam/role:Role": aws.iam.Role,
        "aws:sqs/queue:Queue": aws.sqs.Queue,
        "aws:sns/topic:Topic": aws.sns.Topic,
        "aws:cloudwatch/logGroup:LogGroup": aws.cloudwatch.LogGroup,
        "aws:dynamodb/table:Table": aws.dynamodb.Table,
        "aws:secretsmanager/secret:Secret": aws.secretsmanager.Secret,
        "aws:apigateway/restApi:RestApi": aws.apigateway.RestApi,
        "aws:cloudwatch/dashboard:Dashboard": aws.cloudwatch.Dashboard,
    }
    for run in chain.values():
        for resource in run.aws_resources:
            cls = taggable_tokens.get(resource.type)
            if cls is not None and hasattr(cls, "tags"):
                assert "tags" in resource.inputs, f"{resource.type} {resource.name} untagged"
