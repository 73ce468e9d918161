"""The orchestrator: ordered deploys, previews, destroys, rollback and status over an Engine.

Rules it enforces, whatever engine runs underneath:
- Order comes from the manifest. A deploy run is fail-fast: after a layer fails (or is
  refused), nothing after it runs, and each such layer is reported as skipped with the layer
  that stopped it. `--resume` re-runs only the failed, refused and skipped layers of the last
  deploy report.
- A layer is deployed only when every layer it consumes from has outputs on this stack;
  otherwise it is refused (deploy) or reported as waiting (preview), naming the upstream.
- The contract guard runs before every deploy and rollback (contract.py), and after a deploy
  the real outputs must contain every promised key before anything downstream runs.
- An update that fails with a transient error (throttling, concurrent modification, a locked
  stack) is retried once; the reason is in the report.
- Every update's message records the git commit it deployed (`commit=<sha>`), which is how
  rollback finds the previous revision and how status shows who deployed what.
- Stale consumers are found by comparing, key by key, the upstream values a consumer's last
  update read (recorded by Pulumi in its StackReference state) with the upstream's current
  outputs. Unlike comparing update times, this is exact: an upstream update that changed
  nothing a consumer reads does not make it stale, and it covers updates run by hand.
- Drift (drift.py) refreshes every layer preview-only, concurrently, and writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Protocol

from shared.manifest import MANIFEST, Manifest
from tooling.gitrepo import GitError, GitRepo
from tooling.orchestrator import contract
from tooling.orchestrator.drift import DEFAULT_CONCURRENCY, refresh_layers
from tooling.orchestrator.engine import (
    Engine,
    EngineError,
    OutputSink,
    OutputValue,
    UpdateRecord,
    UpdateResult,
    has_changes,
)
from tooling.orchestrator.fingerprint import (
    Fingerprint,
    RepoSources,
    Sources,
    Unfingerprintable,
    decide,
)
from tooling.orchestrator.fingerprint import fingerprint as layer_fingerprint
from tooling.orchestrator.plan import Affected, Intent, Plan, plan_deploy
from tooling.orchestrator.render import Renderer, RichRenderer
from tooling.orchestrator.report import (
    BLOCKING,
    LayerResult,
    LayerStatus,
    OutputRow,
    OutputsView,
    RunReport,
    StaleKey,
    Status,
    StatusView,
    load_report,
)
from tooling.orchestrator.targets import RefusedError, Target

# Seconds to wait before retrying a transient failure: long enough for a throttling window
# or a concurrent update's lock to pass, short enough to keep a run moving.
RETRY_DELAY_S = 20.0


class Preflight(Protocol):
    """Checks run before layers are deployed or previewed (tooling/preflight)."""

    def __call__(self, layers: Sequence[str], *, refuse: bool) -> None:
        """Report on the account for `layers`; with `refuse`, raise RefusedError on a failure."""
        ...


class ExitCode(IntEnum):
    """Exit codes of every command; documented in the README."""

    OK = 0  # success; for a preview: nothing would change
    FAILED = 1  # a layer's engine operation failed, or its outputs broke the contract
    UNAVAILABLE = 2  # could not start: usage, Pulumi CLI, git, credentials or passphrase
    REFUSED = 3  # a guard refused: contract, upstream not deployed, downstream deployed, --yes
    CHANGES = 4  # preview: some layer would change or waits on an upstream; drift: drift found


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def output_diff(before: Mapping[str, OutputValue], after: Mapping[str, OutputValue]) -> list[str]:
    """Keys added, removed or given a new value, sorted."""
    keys = set(before) | set(after)
    return sorted(key for key in keys if before.get(key) != after.get(key))


def choose_rollback_revision(history: Sequence[UpdateRecord], steps: int) -> str | None:
    """The commit `steps` successful updates back, or None when history is too short.

    Consecutive successful updates of the same commit count once (a redeploy is not a new
    revision). When the latest update failed, the stack is somewhere between two revisions,
    so one step back is the last successful update's commit, the last known-good program.
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    commits: list[str] = []
    for record in history:
        if not record.succeeded_update or not record.commit:
            continue
        if commits and commits[-1] == record.commit:
            continue
        commits.append(record.commit)
    updates = [record for record in history if record.kind == "update"]
    latest_failed = bool(updates) and updates[0].result == "failed"
    index = steps - 1 if latest_failed else steps
    return commits[index] if index < len(commits) else None


def find_stale(
    engine: Engine,
    manifest: Manifest,
    outputs: Mapping[str, Mapping[str, OutputValue]] | None = None,
) -> dict[str, list[StaleKey]]:
    """Consumer -> the consumed keys whose upstream value differs from what it last read.

    `outputs` (layer -> current outputs) saves reading them again when the caller has them.
    """
    if outputs is None:
        outputs = {name: engine.outputs(name) for name in manifest.order}
    stale: dict[str, list[StaleKey]] = {}
    for layer in manifest.layers:
        if not outputs[layer.name] or not layer.consumes:
            continue  # not deployed: it has read nothing that could be stale
        seen = engine.consumed_values(layer.name)
        for upstream, key in layer.consumed_keys():
            current = outputs[upstream]
            recorded = seen.get(upstream, {}).get(key)
            if key not in current:
                reason = "is no longer exported"
            elif recorded is None:
                reason = "was not read by the last update"
            elif not recorded.known:
                reason = "cannot be compared (encrypted in state)"
            elif recorded.value != current[key].value:
                reason = "changed since the last update"
            else:
                continue
            stale.setdefault(layer.name, []).append(StaleKey(layer.name, upstream, key, reason))
    return stale


class Orchestrator:
    """Runs the manifest's layers through an Engine on one stack of one target."""

    def __init__(
        self,
        engine: Engine,
        *,
        stack: str,
        target: Target,
        repo: GitRepo,
        manifest: Manifest = MANIFEST,
        renderer: Renderer | None = None,
        build_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        retry_delay_s: float = RETRY_DELAY_S,
        preflight: Preflight | None = None,
        sources: Sources | None = None,
    ) -> None:
        self.engine = engine
        self.stack = stack
        self.target = target
        self.repo = repo
        self.manifest = manifest
        width = max(len(name) for name in manifest.order)
        self.renderer = renderer or RichRenderer(layer_width=width, clock=clock)
        self.build_dir = build_dir or repo.root / "build"
        self.clock = clock
        self.sleep = sleep
        self.retry_delay_s = retry_delay_s
        # Checks of the tools, login and account before the given layers are deployed
        # (tooling/preflight); with refuse=True a failed check raises RefusedError.
        self.preflight = preflight
        # What a layer's fingerprint reads from the repository and the installed pins.
        self.sources = sources or RepoSources(repo)
        # Outputs read during one operation: each read is several CLI calls on the real
        # engine. Cleared when an operation starts; refreshed after the layer's update.
        self._outputs: dict[str, dict[str, OutputValue]] = {}
        # The report of the latest finished operation: what a caller running several
        # environments collects, since a command returns only its exit code.
        self.last_report: RunReport | None = None

    def _report(self, operation: str) -> RunReport:
        """A new report; also the start of an operation, so cached outputs are dropped."""
        self._outputs.clear()
        return RunReport(
            operation=operation,
            stack=self.stack,
            target=self.target.name,
            commit=self.repo.head(),
            started_at=_now(),
        )

    def _finish(self, report: RunReport, exit_code: int) -> RunReport:
        report.finished_at = _now()
        report.exit_code = exit_code
        path = report.save(self.build_dir)
        self.last_report = report
        self.renderer.report(report, path)
        return report

    def _selection(self, layers: Sequence[str] | None) -> list[str]:
        if not layers:
            return list(self.manifest.order)
        for name in layers:
            self.manifest.layer(name)  # an unknown name fails with the list of layers
        return [name for name in self.manifest.order if name in layers]

    def _check_account(self, layers: Sequence[str], *, refuse: bool = True) -> None:
        if self.preflight is not None and layers:
            self.preflight(layers, refuse=refuse)

    def _confirm(self, operation: str, yes: bool) -> None:
        if self.target.needs_confirmation and not yes:
            raise RefusedError(
                f"{operation} changes or deletes real resources on the {self.target.name} "
                f"target (stack {self.stack!r}); run it again with --yes to confirm."
            )

    def _outputs_of(self, layer: str) -> dict[str, OutputValue]:
        if layer not in self._outputs:
            self._outputs[layer] = self.engine.outputs(layer)
        return self._outputs[layer]

    def _deployed(self, layer: str) -> bool:
        """A layer is deployed on this stack when its stack has outputs (every layer exports)."""
        return bool(self._outputs_of(layer))

    def _message(
        self, operation: str, layer: str, commit: str | None, *, from_worktree: bool = False
    ) -> str:
        # A rollback runs from a fresh worktree of `commit`, which is exactly that commit
        # whatever the main checkout holds.
        dirty = (
            " with uncommitted changes"
            if commit and not from_worktree and self.repo.is_dirty()
            else ""
        )
        return f"{operation} {layer} by tooling.orchestrator; commit={commit or 'unknown'}{dirty}"

    @staticmethod
    def _exit_code(report: RunReport) -> ExitCode:
        statuses = {row.status for row in report.layers if not row.carried_over}
        if Status.FAILED in statuses:
            return ExitCode.FAILED
        if Status.REFUSED in statuses:
            return ExitCode.REFUSED
        return ExitCode.OK

    def _preflight(self, layer: str, promising: Manifest, revision: str) -> LayerResult | None:
        """A refused row when the layer must not be deployed, else None."""
        missing = [up for up in self.manifest.layer(layer).depends_on if not self._deployed(up)]
        if missing:
            names = ", ".join(missing)
            return LayerResult(
                layer,
                Status.REFUSED,
                note=(
                    f"upstream layer {names} has never been deployed on stack {self.stack!r} "
                    f"(no outputs); deploy it first: nox -s deploy -- {missing[0]}"
                ),
            )
        if not self.target.creates_stacks and not self.engine.stack_exists(layer):
            return LayerResult(
                layer,
                Status.REFUSED,
                note=(
                    f"{layer} has no stack {self.stack!r} yet, and the {self.target.name} target "
                    "does not create stacks (creating one writes its settings file into the "
                    f"repository, which is yours to commit): run `pulumi stack init "
                    f"{self.stack}` in stacks/{layer} (with the --secrets-provider your stacks "
                    f"use), commit Pulumi.{self.stack}.yaml, and run again"
                ),
            )
        violations = contract.guard(layer, promising=promising, consumers=self.manifest)
        if violations:
            return LayerResult(
                layer, Status.REFUSED, note=contract.refusal(layer, violations, revision)
            )
        return None

    def _update(
        self,
        layer: str,
        *,
        promising: Manifest,
        commit: str | None,
        operation: str,
        sink: OutputSink,
        program_dir: Path | None = None,
        fingerprint: Fingerprint | None = None,
    ) -> LayerResult:
        """Run the update (retrying a transient failure once) and check the promised keys."""
        started = self.clock()
        before = self._outputs_of(layer)
        message = self._message(operation, layer, commit, from_worktree=program_dir is not None)
        if fingerprint is not None:
            message = f"{message}; {fingerprint.message_fields()}"
        retried: str | None = None
        result: UpdateResult | None = None
        while result is None:
            try:
                result = self.engine.up(
                    layer, message=message, on_output=sink, program_dir=program_dir
                )
            except EngineError as error:
                if error.transient and retried is None:
                    retried = error.transient
                    sink(f"transient failure ({error.transient}); retrying once")
                    self.sleep(self.retry_delay_s)
                    continue
                self._outputs.pop(layer, None)  # a failed update may have changed some
                return LayerResult(
                    layer,
                    Status.FAILED,
                    duration_s=self.clock() - started,
                    note=error.detail,
                    retried=retried,
                    commit=commit,
                )
        self._outputs[layer] = dict(result.outputs)
        row = LayerResult(
            layer,
            Status.SUCCEEDED if has_changes(result.resource_changes) else Status.UNCHANGED,
            duration_s=self.clock() - started,
            resource_changes=dict(result.resource_changes),
            retried=retried,
            # On a first deployment every key is new: say so instead of listing them all.
            outputs_changed=output_diff(before, result.outputs) if before else [],
            note="" if before else "first deployment",
            commit=commit,
        )
        promised = contract.promised(promising, layer)
        assert promised is not None  # both callers check the layer exists in `promising`
        missing = contract.missing_outputs(promised, result.outputs)
        if missing:
            row.status = Status.FAILED
            row.note = (
                f"contract broken: the deployed stack does not export {', '.join(missing)}, "
                "which the manifest promises; nothing downstream ran"
            )
        return row

    def fingerprint(self, layer: str) -> Fingerprint | Unfingerprintable:
        """The layer's fingerprint now: its code, archives, stack configuration, the values it
        consumes (as its upstream stacks hold them now) and the pins (fingerprint.py)."""
        spec = self.manifest.layer(layer)
        upstream = {name: self._outputs_of(name) for name in spec.depends_on}
        return layer_fingerprint(spec, self.sources, self.engine.configuration(layer), upstream)

    def _deploy_one(
        self, layer: str, sink: OutputSink, commit: str | None, *, force: bool, why: str
    ) -> LayerResult:
        refused = self._preflight(layer, self.manifest, (commit or "the working tree")[:12])
        if refused is not None:
            refused.ran = False
            return refused
        current = self.fingerprint(layer)
        decision = decide(current, self.engine.history(layer), force=force)
        recorded = current.digest if isinstance(current, Fingerprint) else None
        if not decision.run:
            return LayerResult(
                layer,
                Status.UNCHANGED,
                reason=f"{decision.reason}; {why}" if why else decision.reason,
                ran=False,
                fingerprint=recorded,
                commit=commit,
            )
        row = self._update(
            layer,
            promising=self.manifest,
            commit=commit,
            operation="deploy",
            sink=sink,
            fingerprint=current if isinstance(current, Fingerprint) else None,
        )
        row.reason = decision.reason
        row.fingerprint = recorded if row.status is not Status.FAILED else None
        return row

    def plan(
        self,
        layers: Sequence[str] | None = None,
        *,
        resume: bool = False,
        affected: str | None = None,
        force: bool = False,
    ) -> Plan:
        """What a deploy_all will walk through and why (see plan.py); reads no stack."""
        last: RunReport | None = None
        if resume:
            last = load_report(self.build_dir, "deploy_all")
            if last is None:
                raise RefusedError(
                    f"there is no previous deploy report ({self.build_dir}/deploy-report.json) "
                    "to resume; run deploy_all without --resume"
                )
            if (last.stack, last.target) != (self.stack, self.target.name):
                raise RefusedError(
                    f"the last deploy report is for stack {last.stack!r} on target "
                    f"{last.target!r}; pass --stack {last.stack} --target {last.target} to "
                    "resume it"
                )
        change: Affected | None = None
        if affected is not None:
            try:
                change = Affected(affected, tuple(self.repo.changed_in_working_tree(affected)))
            except GitError as error:
                raise RefusedError(
                    f"--affected {affected}: cannot compare the working tree with {affected!r} "
                    f"({error}); name a branch or commit this clone has, for example "
                    "--affected origin/main"
                ) from None
        return plan_deploy(
            self.manifest,
            stack=self.stack,
            target=self.target.name,
            layers=layers,
            affected=change,
            resume=last,
            force=force,
        )

    def deploy_all(
        self,
        layers: Sequence[str] | None = None,
        *,
        resume: bool = False,
        affected: str | None = None,
        force: bool = False,
    ) -> RunReport:
        """The planned layers in order, fail-fast; each runs only when its fingerprint changed
        (or with `force`); with `resume`, what the last run left."""
        plan = self.plan(layers, resume=resume, affected=affected, force=force)
        self.renderer.plan(plan)
        carried: dict[str, LayerResult] = {}
        if resume:
            last = load_report(self.build_dir, "deploy_all")
            assert last is not None  # plan() refused otherwise
            carried = {
                row.layer: LayerResult.from_json({**row.to_json(), "carried_over": True})
                for row in last.layers
                if row.layer in plan.with_intent(Intent.CARRIED)
            }
        to_run = plan.with_intent(Intent.DEPLOY)
        reasons = {row.layer: row.reason for row in plan.layers}
        self._check_account(to_run)
        report = self._report("deploy_all")
        stopped_by: str | None = None
        with self.renderer.progress("deploy", len(to_run)) as live:
            for name in plan.considered:
                if name in carried:
                    report.layers.append(carried[name])
                    continue
                if stopped_by is not None:
                    report.layers.append(self._skipped(name, stopped_by))
                    continue
                sink = live.start(to_run.index(name) + 1, name)
                why = reasons[name] if affected is not None else ""
                row = self._deploy_one(name, sink, report.commit, force=force, why=why)
                live.finish(row)
                report.layers.append(row)
                if row.status in BLOCKING:
                    stopped_by = name
        return self._finish(report, self._exit_code(report))

    def _skipped(self, layer: str, stopped_by: str) -> LayerResult:
        if layer in self.manifest.downstream_of(stopped_by):
            note = f"dependency {stopped_by} failed"
        else:
            note = f"not run: the run stopped when {stopped_by} failed"
        return LayerResult(layer, Status.SKIPPED, note=note, ran=False)

    def deploy(self, layer: str, *, force: bool = False) -> RunReport:
        """One layer, unless its fingerprint is unchanged (or with `force`); refused while an
        upstream layer was never deployed."""
        self.manifest.layer(layer)
        self._check_account([layer])
        report = self._report("deploy")
        with self.renderer.progress("deploy", 1) as live:
            row = self._deploy_one(layer, live.start(1, layer), report.commit, force=force, why="")
            live.finish(row)
        report.layers.append(row)
        return self._finish(report, self._exit_code(report))

    def preview_all(self, layers: Sequence[str] | None = None) -> RunReport:
        """Preview in order; a layer whose upstream was never deployed waits on it."""
        order = self._selection(layers)
        # Reported, not enforced: a preview changes nothing, and says what a deploy would meet.
        self._check_account(order, refuse=False)
        report = self._report("preview_all")
        with self.renderer.progress("preview", len(order)) as live:
            for index, name in enumerate(order, start=1):
                waiting = [
                    up for up in self.manifest.layer(name).depends_on if not self._deployed(up)
                ]
                if waiting:
                    row = LayerResult(name, Status.WAITING, note=f"waiting on {', '.join(waiting)}")
                    report.layers.append(row)
                    continue
                sink = live.start(index, name)
                started = self.clock()
                try:
                    preview = self.engine.preview(name, on_output=sink)
                except EngineError as error:
                    row = LayerResult(
                        name, Status.FAILED, duration_s=self.clock() - started, note=error.detail
                    )
                else:
                    changes = dict(preview.resource_changes)
                    if not preview.stack_exists:
                        row = LayerResult(
                            name,
                            Status.NOT_DEPLOYED,
                            duration_s=self.clock() - started,
                            note=(
                                f"no stack {self.stack!r} yet: an update would create it and "
                                "every resource (nothing previewed, nothing created)"
                            ),
                        )
                    else:
                        row = LayerResult(
                            name,
                            Status.CHANGES if has_changes(changes) else Status.UNCHANGED,
                            duration_s=self.clock() - started,
                            resource_changes=changes,
                        )
                live.finish(row)
                report.layers.append(row)
        statuses = {row.status for row in report.layers}
        if Status.FAILED in statuses:
            code = ExitCode.FAILED
        elif statuses & {Status.CHANGES, Status.WAITING, Status.NOT_DEPLOYED}:
            code = ExitCode.CHANGES
        else:
            code = ExitCode.OK
        return self._finish(report, code)

    def drift(self, *, concurrency: int = DEFAULT_CONCURRENCY) -> RunReport:
        """Every layer refreshed preview-only, at most `concurrency` at once (drift.py): which
        resources differ from the cloud. Writes no state and no history."""
        layers = list(self.manifest.order)
        report = self._report("drift")
        with self.renderer.progress("refresh", len(layers)) as live:
            report.layers = refresh_layers(
                self.engine,
                layers,
                stack=self.stack,
                progress=live,
                clock=self.clock,
                concurrency=concurrency,
            )
        statuses = {row.status for row in report.layers}
        if Status.FAILED in statuses:
            code = ExitCode.FAILED
        elif Status.DRIFTED in statuses:
            code = ExitCode.CHANGES
        else:
            code = ExitCode.OK
        return self._finish(report, code)

    def _destroy_sequence(self, report: RunReport, layers: Sequence[str]) -> None:
        """Destroy `layers` in the given (reverse) order, stopping at the first failure."""
        failed: str | None = None
        with self.renderer.progress("destroy", len(layers)) as live:
            for index, name in enumerate(layers, start=1):
                if failed is not None:
                    report.layers.append(
                        LayerResult(
                            name,
                            Status.SKIPPED,
                            note=f"not destroyed: {failed} failed to destroy and may still use it",
                        )
                    )
                    continue
                if not self.engine.stack_exists(name):
                    report.layers.append(LayerResult(name, Status.ABSENT, note="no stack"))
                    continue
                sink = live.start(index, name)
                started = self.clock()
                try:
                    result = self.engine.destroy(
                        name,
                        message=self._message("destroy", name, report.commit),
                        on_output=sink,
                    )
                except EngineError as error:
                    row = LayerResult(
                        name, Status.FAILED, duration_s=self.clock() - started, note=error.detail
                    )
                    failed = name
                    self._outputs.pop(name, None)
                else:
                    self._outputs[name] = {}
                    row = LayerResult(
                        name,
                        Status.DESTROYED,
                        duration_s=self.clock() - started,
                        resource_changes=dict(result.resource_changes),
                    )
                live.finish(row)
                report.layers.append(row)

    def destroy_all(self, *, yes: bool = False) -> RunReport:
        """Every layer in reverse manifest order."""
        self._confirm("destroy_all", yes)
        report = self._report("destroy_all")
        self._destroy_sequence(report, list(reversed(self.manifest.order)))
        return self._finish(report, self._exit_code(report))

    def destroy(self, layer: str, *, cascade: bool = False, yes: bool = False) -> RunReport:
        """One layer; refused while a downstream layer is deployed, unless `cascade`."""
        self._confirm("destroy", yes)
        report = self._report("destroy")
        downstream = [name for name in self.manifest.downstream_of(layer) if self._deployed(name)]
        if downstream and not cascade:
            report.layers.append(
                LayerResult(
                    layer,
                    Status.REFUSED,
                    note=(
                        f"downstream layers still deployed: {', '.join(downstream)}; they read "
                        f"{layer}'s outputs. Destroy them first, or pass --cascade to destroy "
                        "them too (in reverse order)"
                    ),
                )
            )
        else:
            self._destroy_sequence(report, [*reversed(downstream), layer])
        return self._finish(report, self._exit_code(report))

    def rollback_revision(
        self,
        layer: str,
        *,
        to: str | None,
        steps: int,
        history: Sequence[UpdateRecord] | None = None,
    ) -> str:
        """The full commit a rollback deploys; RefusedError when it cannot be determined.

        `history` (the layer's, newest first) saves reading it again when the caller has it.
        """
        if to is not None:
            try:
                return self.repo.resolve(to)
            except GitError:
                raise RefusedError(f"--to {to!r} names no commit in this repository") from None
        if history is None:
            history = self.engine.history(layer)
        chosen = choose_rollback_revision(history, steps)
        if chosen is None:
            raise RefusedError(
                f"{layer} has fewer than {steps + 1} successful updates with a recorded git "
                f"commit on stack {self.stack!r}, so there is no revision {steps} step(s) back; "
                "name one with --to <git-ref>"
            )
        try:
            return self.repo.resolve(chosen)
        except GitError:
            raise RefusedError(
                f"{layer}'s earlier update recorded commit {chosen[:12]}, which this clone does "
                "not have (fetch it, or name a revision with --to)"
            ) from None

    def rollback(
        self, layer: str, *, to: str | None = None, steps: int = 1, yes: bool = False
    ) -> RunReport:
        """Redeploy one layer from the program at an earlier revision (a temporary worktree)."""
        self._confirm("rollback", yes)
        self.manifest.layer(layer)
        history = self.engine.history(layer)
        revision = self.rollback_revision(layer, to=to, steps=steps, history=history)
        try:
            promising = contract.manifest_at(self.repo, revision)
        except GitError:
            raise RefusedError(
                f"{contract.MANIFEST_PATH} does not exist at {revision[:12]}; that revision "
                "predates the layered layout and cannot be rolled back to"
            ) from None
        if contract.promised(promising, layer) is None:
            raise RefusedError(f"layer {layer} does not exist at {revision[:12]}")
        current = next((r.commit for r in history if r.succeeded_update and r.commit), None)
        self._check_account([layer])
        report = self._report("rollback")
        with self.renderer.progress("roll back", 1) as live:
            sink = live.start(1, layer)
            row = self._preflight(layer, promising, revision[:12])
            if row is None:
                with self.repo.worktree(revision) as tree:
                    row = self._update(
                        layer,
                        promising=promising,
                        commit=revision,
                        operation="rollback",
                        sink=sink,
                        program_dir=tree / "stacks" / layer,
                    )
                moved = f"rolled back from {(current or 'unknown')[:12]} to {revision[:12]}"
                row.note = f"{moved}; {row.note}" if row.note else moved
            live.finish(row)
        report.layers.append(row)
        return self._finish(report, self._exit_code(report))

    def status(self) -> StatusView:
        """Per layer: the last update (whoever ran it) and its stale consumed keys."""
        self._outputs = {name: self.engine.outputs(name) for name in self.manifest.order}
        stale = find_stale(self.engine, self.manifest, self._outputs)
        rows = []
        for name in self.manifest.order:
            history = self.engine.history(name)
            rows.append(
                LayerStatus(
                    layer=name,
                    deployed=self._deployed(name),
                    last=history[0] if history else None,
                    stale=stale.get(name, []),
                )
            )
        return StatusView(self.stack, self.target.name, rows)

    def outputs(self) -> OutputsView:
        """Every layer's outputs, secrets masked, with the layers that read each key."""
        rows: list[OutputRow] = []
        for layer in self.manifest.layers:
            outputs = self.engine.outputs(layer.name)
            if not outputs:
                continue
            consumers = self.manifest.consumers_of(layer.name)
            for key in [*layer.outputs, *sorted(set(outputs) - set(layer.outputs))]:
                value = outputs.get(key)
                readers = tuple(name for name, keys in consumers.items() if key in keys)
                shown = value.shown() if value is not None else None
                rows.append(OutputRow(layer.name, key, shown, readers if shown is not None else ()))
        return OutputsView(self.stack, self.target.name, self.manifest.order, rows)
