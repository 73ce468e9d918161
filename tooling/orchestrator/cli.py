"""Command line of the orchestrator: `python -m tooling.orchestrator <command> [options]`.

The nox sessions (deploy_all, deploy, preview_all, destroy_all, destroy, rollback, drift,
graph, outputs, status) call these commands; the CI workflow (layers.yml) also calls
`changed-layers`.

Exit codes (ExitCode in orchestrator.py):
    0  success; for preview-all: no layer would change; for drift: no layer drifted
    1  a layer failed (engine error, or its outputs lack a promised key); see the report
    2  could not start: bad usage, or the Pulumi CLI, git, AWS credentials or the aws
       target's passphrase is missing (one paragraph says what to do)
    3  refused by a guard: contract, upstream never deployed, downstream still deployed,
       --yes missing off the local target, nothing to resume
    4  preview-all: no error, and some layer would change or waits on an upstream;
       drift: no error, and some resource differs from the cloud or is gone
With --stacks, the worst of the environments' codes: 1, then 2, 3, 4, 0 (environments.py).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rich.console import Console

from shared.manifest import MANIFEST, REPO_ROOT
from tooling.gitrepo import GitError, GitRepo
from tooling.orchestrator.changes import touched_layers
from tooling.orchestrator.drift import DEFAULT_CONCURRENCY
from tooling.orchestrator.engine import Engine
from tooling.orchestrator.environments import (
    DEFAULT_ENVIRONMENT_CONCURRENCY,
    add_options,
    requested_stacks,
    run_environments,
)
from tooling.orchestrator.graph import FORMATS, render_graph
from tooling.orchestrator.orchestrator import ExitCode, Orchestrator, Preflight
from tooling.orchestrator.render import Renderer, RichRenderer
from tooling.orchestrator.targets import (
    LOCAL_STACK,
    TARGETS,
    RefusedError,
    Target,
    UnavailableError,
    make_target,
)
from tooling.preflight.checks import (
    PREFLIGHT_REPORT,
    PreflightContext,
    preflight_context,
    run_preflight,
)

# The product's security baseline (policy/), relative to the repository root.
BASELINE_POLICY_PACK = "policy"

EngineFactory = Callable[[Target, str, Sequence[str]], Engine]
# Given the target, the stack, the console and the repository: the preflight of a run.
PreflightFactory = Callable[[Target, str, Console, Path], Preflight]

# The stack name becomes part of every physical name (see README): keep the same rule.
STACK_NAME = re.compile(r"^[a-z0-9-]{1,12}$")
# What `--affected` compares with when given no REF: the branch changes are merged into.
DEFAULT_AFFECTED_BASE = "main"
# A base commit of all zeros is what GitHub sends for the first push of a branch.
NULL_COMMIT = re.compile(r"^0+$")


def automation_engine(target: Target, stack: str, policy_packs: Sequence[str]) -> Engine:
    """The real engine, checked now so a missing CLI or .venv stops the run before it starts."""
    from tooling.orchestrator.automation import AutomationEngine

    engine = AutomationEngine(target, stack, policy_packs=policy_packs)
    engine.preflight()
    return engine


def run_preflight_for(
    target: Target,
    stack: str,
    console: Console,
    repo_root: Path,
    *,
    context_factory: Callable[..., PreflightContext] = preflight_context,
    report_dir: Path | None = None,
) -> Preflight:
    """The preflight (tooling/preflight) of the layers about to be deployed, on this target;
    its report goes to `report_dir` (default build/)."""

    def preflight(layers: Sequence[str], *, refuse: bool) -> None:
        selected = [MANIFEST.layer(name) for name in layers]
        context = context_factory(target, stack, repo_root, selected)
        checklist = run_preflight(context)
        saved = checklist.save((report_dir or repo_root / "build") / PREFLIGHT_REPORT)
        checklist.print(console, saved)
        if refuse and not checklist.passed:
            names = ", ".join(check.name for check in checklist.failed)
            raise RefusedError(
                f"the preflight failed ({names}); fix what its table says, or run again with "
                "--skip-preflight to deploy anyway"
            )

    return preflight


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--stack",
        help=f"stack name shared by every layer (default on the local target: {LOCAL_STACK})",
    )
    common.add_argument("--target", choices=TARGETS, default="local", help="default: local")
    common.add_argument(
        "--org", help="Pulumi organization of the stacks on the aws target (default $PULUMI_ORG)"
    )
    common.add_argument(
        "--secrets-provider",
        help="the secrets provider your stacks use on the aws target, instead of a passphrase",
    )
    common.add_argument("--region", help="aws:region to set on every stack (aws target)")
    common.add_argument(
        "--policy-pack",
        action="append",
        default=[],
        metavar="PATH",
        help="another policy pack to run with every preview and update, besides the "
        "security baseline in policy/ (repeatable; relative to the repository root)",
    )
    return common


def _skip_preflight_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-preflight",
        action="store_true",
        help="deploy even when the preflight (nox -s preflight) fails",
    )


def _force_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help="run every selected layer, even one whose fingerprint equals its last update's",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tooling.orchestrator",
        description="Deploy, preview, destroy and roll back the layers in manifest order.",
        epilog=(
            "exit codes: 0 ok / no changes, 1 a layer failed, 2 could not start, "
            "3 refused by a guard, 4 preview has changes / drift found"
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    common = _common_options()
    layers = list(MANIFEST.order)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        alias = name.replace("-", "_")
        aliases = [alias] if alias != name else []
        return commands.add_parser(name, aliases=aliases, parents=[common], help=help_text)

    deploy_all = add(
        "deploy-all",
        "deploy every layer in order, fail-fast, skipping the layers whose fingerprint is "
        "unchanged, with a report",
    )
    selection = deploy_all.add_mutually_exclusive_group()
    selection.add_argument(
        "--resume", action="store_true", help="re-run the failed and skipped layers of the last run"
    )
    selection.add_argument("--layers", nargs="+", choices=layers, help="only these layers")
    selection.add_argument(
        "--affected",
        nargs="?",
        const=DEFAULT_AFFECTED_BASE,
        metavar="REF",
        help="only the layers whose declared paths differ between the merge base of REF "
        f"(default {DEFAULT_AFFECTED_BASE}) and the working tree, and their downstream",
    )
    _force_option(deploy_all)
    _skip_preflight_option(deploy_all)
    add_options(deploy_all, "deploy_all")
    deploy_all.set_defaults(run=_deploy_all)

    deploy = add("deploy", "deploy one layer (skipped when its fingerprint is unchanged)")
    deploy.add_argument("layer", choices=layers)
    _force_option(deploy)
    _skip_preflight_option(deploy)
    deploy.set_defaults(run=_deploy)

    preview_all = add("preview-all", "preview every layer in order")
    preview_all.add_argument("--layers", nargs="+", choices=layers, help="only these layers")
    add_options(preview_all, "preview_all")
    preview_all.set_defaults(run=_preview_all)

    destroy_all = add("destroy-all", "destroy every layer in reverse order")
    destroy_all.add_argument("--yes", action="store_true", help="confirm (off the local target)")
    destroy_all.set_defaults(run=_destroy_all)

    destroy = add("destroy", "destroy one layer")
    destroy.add_argument("layer", choices=layers)
    destroy.add_argument(
        "--cascade", action="store_true", help="destroy its deployed downstream layers first"
    )
    destroy.add_argument("--yes", action="store_true", help="confirm (off the local target)")
    destroy.set_defaults(run=_destroy)

    rollback = add("rollback", "redeploy one layer from an earlier git revision")
    rollback.add_argument("layer", choices=layers)
    which = rollback.add_mutually_exclusive_group()
    which.add_argument("--to", metavar="GIT_REF", help="the revision to deploy")
    which.add_argument(
        "--steps", type=int, default=1, help="successful updates back (default 1: the previous)"
    )
    rollback.add_argument("--yes", action="store_true", help="confirm (off the local target)")
    _skip_preflight_option(rollback)
    rollback.set_defaults(run=_rollback)

    drift = add(
        "drift",
        "refresh every layer preview-only (writing nothing) and report the resources that "
        "differ from the cloud",
    )
    drift.add_argument(
        "--concurrency",
        type=_at_least_one,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"layers refreshed at once (default {DEFAULT_CONCURRENCY}); every layer is "
        "independent in a refresh",
    )
    drift.set_defaults(run=_drift)

    add("outputs", "every layer's outputs, secrets masked").set_defaults(run=_outputs)
    add("status", "last update per layer and stale consumers").set_defaults(run=_status)

    graph = commands.add_parser("graph", help="the layer graph as Mermaid and DOT")
    graph.add_argument("--format", choices=FORMATS, default="both")
    graph.set_defaults(run=None, offline=_graph)

    changed = commands.add_parser(
        "changed-layers", help="layers touched since a base commit, with their downstream"
    )
    changed.add_argument("--base", required=True, help="base commit (a PR's base, a push's before)")
    changed.add_argument("--head", default="HEAD")
    changed.add_argument("--json", action="store_true", help="print a JSON list")
    changed.set_defaults(run=None, offline=_changed_layers)
    return parser


def _deploy_all(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    return orchestrator.deploy_all(
        args.layers, resume=args.resume, affected=args.affected, force=args.force
    ).exit_code


def _deploy(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    return orchestrator.deploy(args.layer, force=args.force).exit_code


def _preview_all(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    return orchestrator.preview_all(args.layers).exit_code


def _destroy_all(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    return orchestrator.destroy_all(yes=args.yes).exit_code


def _destroy(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    return orchestrator.destroy(args.layer, cascade=args.cascade, yes=args.yes).exit_code


def _rollback(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise UnavailableError("--steps counts successful updates back and must be at least 1.")
    return orchestrator.rollback(args.layer, to=args.to, steps=args.steps, yes=args.yes).exit_code


def _drift(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    return orchestrator.drift(concurrency=args.concurrency).exit_code


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _outputs(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    orchestrator.renderer.outputs(orchestrator.outputs())
    return ExitCode.OK


def _status(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    orchestrator.renderer.status(orchestrator.status())
    return ExitCode.OK


def _graph(args: argparse.Namespace, repo_root: Path, console: Console) -> int:
    console.print(render_graph(args.format), markup=False, highlight=False, soft_wrap=True)
    return ExitCode.OK


def _changed_layers(args: argparse.Namespace, repo_root: Path, console: Console) -> int:
    repo = GitRepo(repo_root)
    if NULL_COMMIT.match(args.base):
        layers = MANIFEST.order  # a new branch: there is nothing to compare with
    else:
        try:
            layers = touched_layers(repo.changed_files(args.base, args.head))
        except GitError as error:
            raise UnavailableError(
                f"cannot list the files changed since {args.base}: {error}. In CI, check out "
                "with enough history (actions/checkout with fetch-depth: 0)."
            ) from None
    text = json.dumps(list(layers)) if args.json else " ".join(layers)
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    return ExitCode.OK


def policy_pack_path(repo_root: Path, path: str) -> str:
    """An extra policy pack's absolute path: relative paths are from the repository root."""
    resolved = Path(path) if Path(path).is_absolute() else (repo_root / path).resolve()
    if not (resolved / "PulumiPolicy.yaml").is_file():
        raise UnavailableError(
            f"--policy-pack {path} resolves to {resolved} (a relative path is taken from the "
            "repository root), which holds no PulumiPolicy.yaml: name a policy pack directory."
        )
    return str(resolved)


def _stack_name(args: argparse.Namespace) -> str:
    return stack_name_of(args.stack, args.target)


def stack_name_of(given: str | None, target: str) -> str:
    """The stack every layer uses: `given`, or the local target's default; checked."""
    stack = given or (LOCAL_STACK if target == "local" else None)
    if stack is None:
        raise UnavailableError(
            "The aws target deploys real stacks, so name the stack explicitly with "
            "--stack <name> (the same name in every layer, for example dev or prod)."
        )
    if not STACK_NAME.match(stack):
        raise UnavailableError(
            f"Stack name {stack!r} is not 1-12 lowercase letters, digits or hyphens; it becomes "
            "part of every physical resource name, so it must be short and lowercase."
        )
    return stack


def main(
    argv: Sequence[str] | None = None,
    *,
    repo_root: Path = REPO_ROOT,
    engine_factory: EngineFactory = automation_engine,
    preflight_factory: PreflightFactory | None = None,
    console: Console | None = None,
    error_console: Console | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    args = build_parser().parse_args(argv)
    out = console or Console()
    err = error_console or Console(stderr=True)
    try:
        if args.run is None:
            result: int = args.offline(args, repo_root, out)
            return result
        # Several environments (--stacks), each checked with the same stack-name rule.
        stacks = requested_stacks(args, lambda name: stack_name_of(name, args.target))
        stack = _stack_name(args) if stacks is None else stacks[0]
        environment = os.environ if environ is None else environ
        target = make_target(
            args.target,
            repo_root,
            org=args.org,
            secrets_provider=args.secrets_provider,
            region=args.region,
            emulator_url=environment.get("AWS_ENDPOINT_URL"),
        )
        target.check(environment)
        repo = GitRepo(repo_root)
        # The security baseline always runs, so a violation stops a real deployment too.
        policy_packs = [
            str(repo_root / BASELINE_POLICY_PACK),
            *(policy_pack_path(repo_root, path) for path in args.policy_pack),
        ]

        def orchestrator_for(
            name: str, renderer: Renderer, build_dir: Path | None = None
        ) -> Orchestrator:
            engine = engine_factory(target, name, policy_packs)
            preflight_of = preflight_factory or functools.partial(
                run_preflight_for, report_dir=build_dir
            )
            return Orchestrator(
                engine,
                stack=name,
                target=target,
                repo=repo,
                renderer=renderer,
                build_dir=build_dir,
                preflight=None
                if getattr(args, "skip_preflight", False)
                else preflight_of(target, name, out, repo_root),
            )

        if stacks is not None:
            return run_environments(
                stacks,
                operation=args.environments_operation,
                command=lambda orchestrator: int(args.run(orchestrator, args)),
                orchestrator_for=orchestrator_for,
                build_root=repo_root / "build",
                concurrency=args.concurrency or DEFAULT_ENVIRONMENT_CONCURRENCY,
                console=out,
                error_console=err,
            ).exit_code
        code: int = args.run(orchestrator_for(stack, RichRenderer(out)), args)
        return code
    except UnavailableError as problem:
        err.print(f"error: {problem}", markup=False, highlight=False)
        return ExitCode.UNAVAILABLE
    except RefusedError as refusal:
        err.print(f"refused: {refusal}", markup=False, highlight=False)
        return ExitCode.REFUSED
    except GitError as error:
        err.print(f"error: {error}", markup=False, highlight=False)
        return ExitCode.FAILED
