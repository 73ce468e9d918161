"""`python -m tooling.synth`: synthesize the five layers offline and judge them.

Exit status: 0 when every control passes (or is suppressed) and parliament reports no error;
1 on any policy violation or parliament error; 2 when a layer cannot be synthesized or the
`--diff` ref cannot be checked out. `--inventory-only` writes the inventories of the layers
that synthesize (and failed.txt naming the others) and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shared.manifest import MANIFEST, REPO_ROOT
from tooling.mock_engine import LayerRun, run_all_layers, run_layer
from tooling.synth import PLACEHOLDER_NOTE
from tooling.synth.inventory import layer_inventory, write_inventories

DEFAULT_OUT = REPO_ROOT / "build" / "synth"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tooling.synth",
        description="Synthesize every layer under the SDK's mocks, write inventories, "
        "evaluate the policy pack and parliament, optionally diff against a git ref.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="inventory folder")
    parser.add_argument("--stack", default="dev", help="stack (environment) name to synthesize")
    parser.add_argument("--diff", metavar="GIT_REF", help="also show changes against this ref")
    parser.add_argument(
        "--inventory-only",
        action="store_true",
        help="only write the inventories (what --diff runs at the ref)",
    )
    return parser


def inventory_only(stack: str, out: Path) -> int:
    """Best effort: every layer whose upstream layers synthesized; failures go to failed.txt."""
    runs: dict[str, LayerRun] = {}
    failed: list[str] = []
    for name in MANIFEST.order:
        layer = MANIFEST.layer(name)
        missing = [upstream for upstream in layer.depends_on if upstream not in runs]
        if missing:
            failed.append(f"{name}: upstream layer(s) {', '.join(missing)} did not synthesize")
            continue
        try:
            runs[name] = run_layer(layer, stack=stack, upstream=runs)
        except Exception as error:
            failed.append(f"{name}: {type(error).__name__}: {error}")
    write_inventories({name: layer_inventory(run) for name, run in runs.items()}, out)
    (out / "failed.txt").write_text("".join(f"{line}\n" for line in failed), encoding="utf-8")
    for line in failed:
        print(f"not synthesized: {line}", file=sys.stderr)
    return 1 if failed else 0


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _report_json(
    out: Path, rows: Sequence[Any], violations: Sequence[Any], lint: Sequence[Any]
) -> None:
    document = {
        "placeholder": True,
        "note": PLACEHOLDER_NOTE,
        "verdicts": [{**asdict(row), "verdict": row.verdict} for row in rows],
        "violations": [asdict(v) for v in violations],
        "parliament": [asdict(f) for f in lint],
    }
    (out / "report.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def synth(stack: str, out: Path, diff_ref: str | None) -> int:
    from rich.console import Console

    from policy.suppressions import load_suppressions
    from tooling.synth import report
    from tooling.synth.evaluate import evaluate
    from tooling.synth.iam_lint import documents_of, lint_runs

    console = Console() if sys.stdout.isatty() else Console(width=160)
    try:
        runs = run_all_layers(stack=stack)
    except Exception as error:
        console.print(f"[bold red]A layer program failed under the mocks:[/] {error}")
        return 2
    inventories = {name: layer_inventory(run) for name, run in runs.items()}
    written = write_inventories(inventories, out)
    console.rule("Inventory (placeholder values: never usable for a real deployment)")
    report.print_inventory(console, inventories)
    console.print(f"Inventories: {', '.join(_shown(path) for path in written)}")

    suppressions = load_suppressions()
    evaluation = evaluate(runs, suppressions)
    layers = list(runs)
    rows = report.verdict_rows(evaluation, suppressions, layers)
    console.rule("Policy pack")
    report.print_verdicts(console, rows, layers)
    report.print_suppressions(console, suppressions)
    report.print_findings(console, evaluation)

    console.rule("IAM documents (parliament)")
    lint = lint_runs(runs)
    documents = sum(1 for run in runs.values() for r in run.aws_resources for _ in documents_of(r))
    report.print_lint(console, lint, documents)
    _report_json(out, rows, evaluation.violations, lint)

    status = 1 if evaluation.violations or any(f.error for f in lint) else 0
    if diff_ref:
        from tooling.synth.diff import DiffError, compare, inventories_at

        console.rule(f"Diff against {diff_ref}")
        try:
            before, failed = inventories_at(diff_ref)
        except DiffError as error:
            console.print(f"[bold red]--diff {diff_ref}:[/] {error}")
            return 2
        report.print_diff(console, diff_ref, compare(before, inventories, MANIFEST.order), failed)
    console.rule("Result")
    console.print(
        "[green]synth passed[/]"
        if status == 0
        else "[bold red]synth failed: fix the violations or parliament errors above[/]"
    )
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = args.out.resolve()
    if args.inventory_only:
        return inventory_only(args.stack, out)
    return synth(args.stack, out, args.diff)


if __name__ == "__main__":
    sys.exit(main())
