"""Drift: which resources of each layer's state differ from the cloud, found without writing.

Each layer's stack is refreshed in preview-only mode (`Engine.refresh_preview`, that is
`pulumi refresh --preview-only`): every resource's provider reads it, and the engine reports
the ones whose properties differ from the state ("update") and the ones that are gone
("delete"). Nothing is written: no state, no history entry, no stack, no lock left behind.

The layers are independent here, so they are refreshed concurrently, at most `concurrency` at
a time, each in a thread that waits on its CLI process. A deploy must follow the manifest's
order because a layer's program reads its upstreams' outputs; a refresh runs no program, so it
reads no upstream output: each layer's refresh reads its own state and asks the providers about
its own resources. The one thing it takes from another stack is what a StackReference re-reads,
that stack's stored outputs, which no preview changes. No layer waits for another, and the
order they finish in does not matter; the report lists them in manifest order.

What a layer's row says:
- `in sync`: every resource is as the cloud has it;
- `drifted`: the resources that differ, with the properties the engine names (exit 4);
- `absent`: no stack, or a stack with no resources: nothing to compare;
- `failed`: the refresh failed, with its error (exit 1, which wins over drift).

A StackReference whose upstream's outputs changed since the layer's last update is also an
"update" in a refresh (the builtin provider's Read re-reads the upstream's outputs: pulumi/
pulumi pkg/resource/deploy/builtins.go). That is not the cloud drifting but the layer's record
of its upstream being older: the row notes it and does not count it as drift (`status` says
whether a key the layer reads went stale, and `deploy_all` brings it up to date).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from tooling.orchestrator.engine import DriftResult, Engine, EngineError
from tooling.orchestrator.render import RunProgress
from tooling.orchestrator.report import LayerResult, Status

# Layers refreshed at once by default: each refresh is a CLI process and its provider plugins,
# and a machine (or a CI runner) has a few cores; the five layers take two rounds.
DEFAULT_CONCURRENCY = 3
# Resources whose refresh re-reads another stack, not the cloud.
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"


def drift_row(layer: str, result: DriftResult, duration_s: float, stack: str) -> LayerResult:
    """The report row of one layer's preview-only refresh."""
    if not result.stack_exists:
        return LayerResult(
            layer,
            Status.ABSENT,
            duration_s=duration_s,
            note=f"no stack {stack!r}: nothing deployed to compare with the cloud",
        )
    if not any(result.resource_changes.values()):
        return LayerResult(
            layer,
            Status.ABSENT,
            duration_s=duration_s,
            note="the stack has no resources: nothing to compare with the cloud",
        )
    cloud = [item for item in result.drifted if item.type != STACK_REFERENCE_TYPE]
    references = [item for item in result.drifted if item.type == STACK_REFERENCE_TYPE]
    note = ""
    if references:
        names = ", ".join(item.name for item in references)
        plural = "s" if len(references) > 1 else ""
        note = (
            f"not drift: StackReference{plural} {names} would re-read other outputs than this "
            "layer's last update recorded, since an upstream was updated after it (`status` "
            "says whether a key this layer reads is stale)"
        )
    return LayerResult(
        layer,
        Status.DRIFTED if cloud else Status.IN_SYNC,
        duration_s=duration_s,
        resource_changes=dict(result.resource_changes),
        note=note,
        drift=cloud,
    )


def refresh_layers(
    engine: Engine,
    layers: Sequence[str],
    *,
    stack: str,
    progress: RunProgress,
    clock: Callable[[], float],
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[LayerResult]:
    """Refresh `layers` preview-only, at most `concurrency` at once; their rows, in the order
    given. A failed refresh is a failed row; anything else that goes wrong (the CLI cannot be
    started, say) stops the run once the refreshes already running are done."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")

    def refresh(index: int, layer: str) -> LayerResult:
        sink = progress.start(index, layer)
        started = clock()
        try:
            result = engine.refresh_preview(layer, on_output=sink)
        except EngineError as error:
            row = LayerResult(layer, Status.FAILED, duration_s=clock() - started, note=error.detail)
        else:
            row = drift_row(layer, result, clock() - started, stack)
        progress.finish(row)
        return row

    workers = max(1, min(concurrency, len(layers)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drift") as pool:
        futures: list[Future[LayerResult]] = [
            pool.submit(refresh, index, layer) for index, layer in enumerate(layers, start=1)
        ]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
