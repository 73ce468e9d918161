"""Run a layer's real Pulumi program under the SDK's mock monitor, without the Pulumi CLI.

The program is the same `stacks/<layer>/__main__.py` the engine runs. Resource registrations
reach `SynthesizingMocks`, which records each resource's inputs and answers with the
attributes AWS would compute (ARNs, URLs, IDs), derived deterministically from the inputs.
Stack references are answered from the outputs earlier layers produced in the same run, so
the five programs can be run in manifest order as one chain.

`run_program` runs any program directory this way (the test suite's Pulumi CLI double uses it
with full config keys and the stack outputs of its backend); `run_layer` is the same for one
layer of the manifest.

Every value synthesized here is a placeholder for tests and offline inspection; none of it
is usable for a real deployment.
"""

from __future__ import annotations

import asyncio
import hashlib
import runpy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from shared.manifest import MANIFEST, Layer
from shared.naming import AwsLocation
from shared.references import FILE_BACKEND_ORG, stack_name

# The SDK's testing entry point, typed: it runs a function returning an Output and awaits it.
run_as_test: Callable[[Callable[[], pulumi.Output[Any]]], Callable[[], None]] = pulumi.runtime.test

# The marker Pulumi's RPC layer uses for a secret value (a documented wire constant).
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 (a public protocol marker)
SIG_KEY = "4dabf18193072939515e22adb298388d"

PLACEHOLDER_LOCATION = AwsLocation(partition="aws", region="us-east-1", account_id="123456789012")
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"
# terraform-plugin-sdk's id.PrefixedUniqueId appends 26 characters (a timestamp and a counter)
# to a `name_prefix`; the mocks append as many, derived from the logical name.
UNIQUE_SUFFIX_LENGTH = 26


def unwrap_secret(value: Any) -> tuple[Any, bool]:
    """(plain value, was it a secret) for an input value as the mocks receive it."""
    if isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG:
        return value.get("value"), True
    return value, False


@dataclass
class MockResource:
    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    provider: str | None
    custom: bool
    # Filled by run_layer from what the program registered (RecordingMonitor).
    urn: str = ""
    parent: str | None = None
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    # The engine leaves the cloud resource in place on delete (the retain_on_delete option).
    retain_on_delete: bool = False

    def depends_on(self, other: MockResource) -> bool:
        """Whether the engine will create `other` before this resource: an explicit
        `depends_on`, or an input that is an output of `other`."""
        edges = {
            *self.dependencies,
            *(u for urns in self.property_dependencies.values() for u in urns),
        }
        return other.urn in edges


@dataclass
class ExportedValue:
    value: Any
    secret: bool


@dataclass
class ProgramRun:
    """What one program declared and exported under the mocks."""

    resources: list[MockResource]
    exports: dict[str, ExportedValue]
    # The fully qualified names of the stacks the program referenced, in order.
    stack_references: list[str] = field(default_factory=list)
    # Each StackReference read (type, logical name, id = the stack's name, inputs, outputs).
    reads: list[MockResource] = field(default_factory=list)


@dataclass
class LayerRun:
    """What one layer program declared and exported under the mocks."""

    layer: Layer
    stack: str
    resources: list[MockResource]
    exports: dict[str, ExportedValue]
    # The fully qualified names of the stacks the program referenced, in order.
    stack_references: list[str] = field(default_factory=list)

    @property
    def aws_resources(self) -> list[MockResource]:
        """The resources a provider creates (no components)."""
        return [r for r in self.resources if r.custom]

    def of_type(self, type_token: str) -> list[MockResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, **matching: Any) -> MockResource:
        """The one provider resource of `type_token` whose inputs (or, failing that, outputs)
        hold the given values: how a resource is found by the contract it serves (an exported
        name or ARN) rather than by its program's logical name."""

        def value(resource: MockResource, key: str) -> Any:
            return resource.inputs.get(key, resource.outputs.get(key))

        found = [
            resource
            for resource in self.aws_resources
            if resource.type == type_token
            and all(value(resource, key) == wanted for key, wanted in matching.items())
        ]
        if len(found) != 1:
            raise KeyError(
                f"expected one {type_token} with {matching} in {self.layer.name}, found "
                f"{len(found)}: {sorted(r.name for r in found)}"
            )
        return found[0]

    def named(self, name: str) -> MockResource:
        """The provider resource (not component) with this logical name."""
        matches = [r for r in self.aws_resources if r.name == name]
        if len(matches) != 1:
            known = sorted(r.name for r in self.aws_resources)
            raise KeyError(f"expected one resource named {name!r}, found {len(matches)}: {known}")
        return matches[0]

    def export_values(self) -> dict[str, Any]:
        return {key: exported.value for key, exported in self.exports.items()}


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:10]


class SynthesizingMocks(pulumi.runtime.Mocks):
    """Mocks that record registrations and compute AWS-like attributes for them."""

    def __init__(
        self,
        location: AwsLocation,
        stack_outputs: Mapping[str, Mapping[str, ExportedValue]],
    ) -> None:
        self.location = location
        self.stack_outputs = stack_outputs
        self.resources: list[MockResource] = []
        self.stack_references: list[str] = []
        self.reads: list[MockResource] = []

    # Resources
    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        if args.typ == STACK_REFERENCE_TYPE:
            return self._stack_reference(args)
        inputs = dict(args.inputs)
        resource_id, outputs = self.compute(args.typ, args.name, inputs)
        self.resources.append(
            MockResource(
                type=args.typ,
                name=args.name,
                id=resource_id,
                inputs=inputs,
                outputs=outputs,
                provider=args.provider,
                custom=bool(args.custom),
            )
        )
        return resource_id, {**inputs, **outputs}

    def _stack_reference(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs["name"]
        self.stack_references.append(name)
        outputs = self.stack_outputs.get(name)
        if outputs is None:
            raise LookupError(self.missing_stack_message(name))
        state = {
            "name": name,
            "outputs": {key: exported.value for key, exported in outputs.items()},
            "secretOutputNames": [key for key, exported in outputs.items() if exported.secret],
        }
        self.reads.append(
            MockResource(
                type=args.typ,
                name=args.name,
                id=name,
                inputs={"name": name},
                outputs=state,
                provider=args.provider,
                custom=True,
            )
        )
        return name, state

    def missing_stack_message(self, name: str) -> str:
        """Why a StackReference to `name` cannot be answered."""
        return f"stack reference to {name!r}, which has not been run in this chain"

    def physical_name(self, typ: str, name: str, inputs: Mapping[str, Any]) -> str:
        """The name the provider gives the resource: its `name`; else its `namePrefix` with a
        unique suffix, as the AWS provider completes a prefix; else a generated name."""
        if inputs.get("name"):
            return str(inputs["name"])
        prefix = inputs.get("namePrefix")
        if prefix:
            return f"{prefix}{self.unique_suffix(typ, name)}"
        return f"{name}-{_short_hash(typ, name)[:7]}"

    def unique_suffix(self, typ: str, name: str) -> str:
        """What completes a `namePrefix`: deterministic here, so runs are reproducible."""
        return hashlib.sha256(f"unique/{typ}/{name}".encode()).hexdigest()[:UNIQUE_SUFFIX_LENGTH]

    def compute(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The id and the computed attributes of a new resource (what a provider would return)."""
        physical = self.physical_name(typ, name, inputs)
        compute = _ATTRIBUTES.get(typ)
        if compute is None:
            return f"{name}-id", {}
        return compute(physical, inputs, self.location)

    # Invokes
    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        return self._invoke_result(args.token), []

    def _invoke_result(self, invoke: str) -> dict[str, Any]:
        loc = self.location
        if invoke == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": loc.account_id,
                "arn": f"arn:{loc.partition}:iam::{loc.account_id}:user/synth",
                "userId": "AIDASYNTHESIZED",
                "id": loc.account_id,
            }
        if invoke == "aws:index/getRegion:getRegion":
            return {"region": loc.region, "name": loc.region, "id": loc.region}
        if invoke == "aws:index/getPartition:getPartition":
            return {
                "partition": loc.partition,
                "dnsSuffix": "amazonaws.com",
                "id": loc.partition,
                "reverseDnsPrefix": "com.amazonaws",
            }
        raise NotImplementedError(f"the mocks do not answer the invoke {invoke}")


Compute = Callable[[str, dict[str, Any], AwsLocation], tuple[str, dict[str, Any]]]


def _arn(loc: AwsLocation, service: str, resource: str, *, regional: bool = True) -> str:
    where = f"{loc.region}:{loc.account_id}" if regional else ":"
    return f"arn:{loc.partition}:{service}:{where}:{resource}"


def _lambda_invoke_arn(loc: AwsLocation, target_arn: str) -> str:
    return (
        f"arn:{loc.partition}:apigateway:{loc.region}:lambda:path/2015-03-31/functions/"
        f"{target_arn}/invocations"
    )


def _kms_key(physical: str, inputs: dict[str, Any], loc: AwsLocation) -> tuple[str, dict[str, Any]]:
    key_id = f"{_short_hash(physical)}-mock-key"
    return key_id, {"arn": _arn(loc, "kms", f"key/{key_id}"), "keyId": key_id}


def _kms_alias(
    physical: str, inputs: dict[str, Any], loc: AwsLocation
) -> tuple[str, dict[str, Any]]:
    return physical, {"arn": _arn(loc, "kms", physical)}


def _secret(physical: str, inputs: dict[str, Any], loc: AwsLocation) -> tuple[str, dict[str, Any]]:
    arn = _arn(loc, "secretsmanager", f"secret:{physical}-{_short_hash(physical)[:6]}")
    return arn, {"arn": arn, "name": physical}


def _iam_role(
    physical: str, inputs: dict[str, Any], loc: AwsLocation
) -> tuple[str, dict[str, Any]]:
    return physical, {
        "arn": f"arn:{loc.partition}:iam::{loc.account_id}:role/{physical}",
        "name": physical,
    }


def _bucket(physical: str, inputs: dict[str, Any], loc: AwsLocation) -> tuple[str, dict[str, Any]]:
    bucket = inputs.get("bucket") or physical
    return bucket, {
        "bucket": bucket,
        "arn": f"arn:{loc.partition}:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
    }


def _table(physical: str, inputs: dict[str, Any], loc: AwsLocation) -> tuple[str, dict[str, Any]]:
    return physical, {"arn": _arn(loc, "dynamodb", f"table/{physical}")}


def _queue(physical: str, inputs: dict[str, Any], loc: AwsLocation) -> tuple[str, dict[str, Any]]:
    url = f"https://sqs.{loc.region}.amazonaws.com/{loc.account_id}/{physical}"
    return url, {"arn": _arn(loc, "sqs", physical), "url": url, "name": physical}


def _function(
    physical: str, inputs: dict[str, Any], loc: AwsLocation
) -> tuple[str, dict[str, Any]]:
    arn = _arn(loc, "lambda", f"function:{physical}")
    return physical, {
        "arn": arn,
        "name": physical,
        "invokeArn": _lambda_invoke_arn(loc, arn),
        "version": "1",
        "qualifiedArn": f"{arn}:1",
    }


def _alias(physical: str, inputs: dict[str, Any], loc: AwsLocation) -> tuple[str, dict[str, Any]]:
    function_name = str(inputs.get("functionName", "function"))
    function_arn = (
        function_name
        if function_name.startswith("arn:")
        else _arn(loc, "lambda", f"function:{function_name}")
    )
    arn = f"{function_arn}:{physical}"
    return arn, {"arn": arn, "invokeArn": _lambda_invoke_arn(loc, arn)}


def _log_group(
    physical: str, inputs: dict[str, Any], loc: AwsLocation
) -> tuple[str, dict[str, Any]]:
    return physical, {"arn": _arn(loc, "logs", f"log-group:{physical}"), "name": physical}


def _rest_api(
    physical: str, inputs: dict[str, Any], loc: AwsLocation
) -> tuple[str, dict[str, Any]]:
    api_id = _short_hash(physical)
    return api_id, {
        "rootResourceId": f"{api_id}-root",
        "executionArn": _arn(loc, "execute-api", api_id),
        "arn": f"arn:{loc.partition}:apigateway:{loc.region}::/restapis/{api_id}",
        "name": physical,
    }


def _stage(physical: str, inputs: dict[str, Any], loc: AwsLocation) -> tuple[str, dict[str, Any]]:
    api_id = inputs["restApi"]
    stage = inputs["stageName"]
    return f"ags-{api_id}-{stage}", {
        "invokeUrl": f"https://{api_id}.execute-api.{loc.region}.amazonaws.com/{stage}",
        "executionArn": _arn(loc, "execute-api", f"{api_id}/{stage}"),
        "arn": f"arn:{loc.partition}:apigateway:{loc.region}::/restapis/{api_id}/stages/{stage}",
    }


def _topic(physical: str, inputs: dict[str, Any], loc: AwsLocation) -> tuple[str, dict[str, Any]]:
    arn = _arn(loc, "sns", physical)
    return arn, {"arn": arn, "name": physical}


def _named_with_arn(service: str, kind: str) -> Compute:
    def compute(
        physical: str, inputs: dict[str, Any], loc: AwsLocation
    ) -> tuple[str, dict[str, Any]]:
        return physical, {"arn": _arn(loc, service, f"{kind}{physical}")}

    return compute


def _dashboard(
    physical: str, inputs: dict[str, Any], loc: AwsLocation
) -> tuple[str, dict[str, Any]]:
    name = inputs.get("dashboardName", physical)
    return name, {
        "dashboardArn": f"arn:{loc.partition}:cloudwatch::{loc.account_id}:dashboard/{name}"
    }


def _web_acl(physical: str, inputs: dict[str, Any], loc: AwsLocation) -> tuple[str, dict[str, Any]]:
    acl_id = _short_hash("webacl", physical)
    scope = "regional" if inputs.get("scope") == "REGIONAL" else "global"
    return acl_id, {"arn": _arn(loc, "wafv2", f"{scope}/webacl/{physical}/{acl_id}")}


_ATTRIBUTES: dict[str, Compute] = {
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:iam/role:Role": _iam_role,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:dynamodb/table:Table": _table,
    "aws:sqs/queue:Queue": _queue,
    "aws:lambda/function:Function": _function,
    "aws:lambda/alias:Alias": _alias,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:apigateway/restApi:RestApi": _rest_api,
    "aws:apigateway/stage:Stage": _stage,
    "aws:sns/topic:Topic": _topic,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _named_with_arn("cloudwatch", "alarm:"),
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:wafv2/webAcl:WebAcl": _web_acl,
}


@dataclass(frozen=True)
class Registration:
    """What the program told the engine about one resource besides its inputs."""

    urn: str
    id: str
    parent: str | None
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    retain_on_delete: bool


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also recording each resource's URN, parent and dependencies."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: dict[tuple[str, str, str], Registration] = {}

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        """A read (a StackReference): recorded like a registration, under the stack's name."""
        # The SDK leaves its mock monitor untyped.
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        self.registrations[(request.type, request.name, request.id)] = Registration(
            urn=response.urn,
            id=request.id,
            parent=request.parent or None,
            dependencies=list(request.dependencies),
            property_dependencies={},
            retain_on_delete=False,
        )
        return response

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        # The SDK leaves its mock monitor untyped.
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.registrations[(request.type, request.name, response.id)] = Registration(
                urn=response.urn,
                id=response.id,
                parent=request.parent or None,
                dependencies=list(request.dependencies),
                property_dependencies={
                    key: list(value.urns) for key, value in request.propertyDependencies.items()
                },
                retain_on_delete=bool(request.retainOnDelete),
            )
        return response


def use_mocks(
    mocks: pulumi.runtime.Mocks,
    *,
    project: str,
    stack: str,
    monitor: MockMonitor | None = None,
    organization: str = FILE_BACKEND_ORG,
) -> None:
    """Start a fresh program under `mocks`: a new root stack, no earlier transformations.

    `organization` is what the engine tells a program its stack's organization is: the file
    backend's by default, as the CLI does for the file and S3 backends.
    """
    # set_mocks keeps an existing root stack, and with it the previous program's stack
    # transformations; resetting first gives each program the clean process the CLI gives it.
    pulumi.runtime.reset_options(project=project, stack=stack, organization=organization)
    pulumi.runtime.set_mocks(
        mocks,
        project=project,
        stack=stack,
        preview=False,
        monitor=monitor,
        organization=organization,
    )


def _annotate(resources: list[MockResource], monitor: RecordingMonitor) -> None:
    """Copy each resource's URN, parent and dependencies from the monitor's records."""
    for resource in resources:
        registration = monitor.registrations.get((resource.type, resource.name, resource.id))
        if registration is not None:
            resource.urn = registration.urn
            resource.parent = registration.parent
            resource.dependencies = registration.dependencies
            resource.property_dependencies = registration.property_dependencies
            resource.retain_on_delete = registration.retain_on_delete


def run_program(
    program_dir: Path,
    *,
    project: str,
    stack: str,
    config: Mapping[str, str] | None = None,
    secret_keys: Sequence[str] = (),
    stack_outputs: Mapping[str, Mapping[str, ExportedValue]] | None = None,
    location: AwsLocation = PLACEHOLDER_LOCATION,
    organization: str = FILE_BACKEND_ORG,
    mocks: SynthesizingMocks | None = None,
) -> ProgramRun:
    """Run `<program_dir>/__main__.py` under mocks and return what it declared and exported.

    `config` holds full keys (`<project>:<key>`, `aws:region`) and string values, as the engine
    hands them to a program; `secret_keys` names the secret ones. `stack_outputs` answers the
    program's stack references by fully qualified stack name. `organization` is what the engine
    tells the program its stack's organization is. Pass `mocks` to see what a program
    registered even when it fails.
    """
    if mocks is None:
        mocks = SynthesizingMocks(location, stack_outputs or {})
    elif stack_outputs is not None:
        mocks.stack_outputs = stack_outputs
    monitor = RecordingMonitor(mocks)
    use_mocks(mocks, project=project, stack=stack, monitor=monitor, organization=organization)
    pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys))

    exports: dict[str, ExportedValue] = {}

    # The SDK's own testing entry point runs the program, awaits what it returns (here: every
    # export, resolved) and then every registration still in flight, as the engine would.
    @run_as_test
    def execute() -> pulumi.Output[Any]:
        runpy.run_path(str(program_dir / "__main__.py"), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        # What the program passed to pulumi.export, kept by the root stack resource.
        exported = dict(getattr(root, "outputs", None) or {})

        async def resolve() -> None:
            for name, value in exported.items():
                output = pulumi.Output.from_input(value)
                exports[name] = ExportedValue(await output.future(), await output.is_secret())

        return pulumi.Output.from_input(asyncio.ensure_future(resolve()))

    execute()
    _annotate([*mocks.resources, *mocks.reads], monitor)
    return ProgramRun(
        resources=mocks.resources,
        exports=exports,
        stack_references=mocks.stack_references,
        reads=mocks.reads,
    )


def run_layer(
    layer: Layer,
    *,
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    secret_config: Mapping[str, str] | None = None,
    upstream: Mapping[str, LayerRun] | None = None,
    location: AwsLocation = PLACEHOLDER_LOCATION,
    org: str = FILE_BACKEND_ORG,
    mocks: SynthesizingMocks | None = None,
) -> LayerRun:
    """Run `stacks/<layer>/__main__.py` under mocks and return what it declared and exported.

    `config` and `secret_config` are the layer's own keys (unqualified); `upstream` holds the
    runs of earlier layers, whose exports answer this layer's stack references. `org` is the
    organization of every stack (what the engine tells the program, and where its references
    point). Pass `mocks` to see what a program registered even when it fails.
    """
    stack_outputs = {
        stack_name(org, run.layer, run.stack): run.exports for run in (upstream or {}).values()
    }
    all_config = {f"{layer.project}:{k}": v for k, v in (config or {}).items()}
    all_config.update({f"{layer.project}:{k}": v for k, v in (secret_config or {}).items()})
    run = run_program(
        layer.directory,
        project=layer.project,
        stack=stack,
        config=all_config,
        secret_keys=[f"{layer.project}:{k}" for k in (secret_config or {})],
        stack_outputs=stack_outputs,
        location=location,
        organization=org,
        mocks=mocks,
    )
    return LayerRun(
        layer=layer,
        stack=stack,
        resources=run.resources,
        exports=run.exports,
        stack_references=run.stack_references,
    )


def resolve(output: pulumi.Output[Any]) -> ExportedValue:
    """An Output's value and whether it is secret, awaited through the SDK's testing entry."""
    answer: list[ExportedValue] = []

    @run_as_test
    def read() -> pulumi.Output[Any]:
        async def value() -> None:
            answer.append(ExportedValue(await output.future(), await output.is_secret()))

        return pulumi.Output.from_input(asyncio.ensure_future(value()))

    read()
    return answer[0]


def run_all_layers(
    *,
    stack: str = "dev",
    config: Mapping[str, Mapping[str, str]] | None = None,
    secret_config: Mapping[str, Mapping[str, str]] | None = None,
    location: AwsLocation = PLACEHOLDER_LOCATION,
) -> dict[str, LayerRun]:
    """Run every layer in manifest order, each reading the exports of the earlier ones."""
    runs: dict[str, LayerRun] = {}
    for name in MANIFEST.order:
        runs[name] = run_layer(
            MANIFEST.layer(name),
            stack=stack,
            config=(config or {}).get(name),
            secret_config=(secret_config or {}).get(name),
            upstream=runs,
            location=location,
        )
    return runs
