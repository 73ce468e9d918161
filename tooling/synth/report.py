"""Readable output of synth: inventory trees, the verdict table, parliament, the diff.

`verdict_rows` is the table as data (also written to build/synth/report.json); the print
functions only lay it out with rich.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from policy.controls import CONTROLS
from policy.suppressions import Suppressions
from policy.urns import name_of, type_of
from tooling.synth.diff import LayerDiff, short
from tooling.synth.evaluate import Evaluation
from tooling.synth.iam_lint import LintFinding

PASSED = "pass"
NOT_APPLICABLE = "-"
SCOPE_LABELS = {
    "resource": "resource",
    "stack": "stack",
    "product": "stack+product",
}


@dataclass(frozen=True)
class VerdictRow:
    control_id: str
    policy_name: str
    title: str
    scope: str
    cells: dict[str, str]
    suppression: str

    @property
    def verdict(self) -> str:
        values = set(self.cells.values())
        if any(value.startswith("FAIL") for value in values):
            return "violation"
        if any(value.startswith("suppressed") for value in values):
            return "pass with suppressions"
        if values <= {NOT_APPLICABLE}:
            return "not applicable" if not self.suppression else "suppressed"
        return PASSED


def verdict_rows(
    evaluation: Evaluation, suppressions: Suppressions, layers: Sequence[str]
) -> list[VerdictRow]:
    rows: list[VerdictRow] = []
    for control in CONTROLS:
        cells: dict[str, str] = {}
        for layer in layers:
            failed = [
                v
                for v in evaluation.violations
                if v.control_id == control.control_id and v.layer == layer
            ]
            quiet = [
                s
                for s in evaluation.suppressed
                if s.control_id == control.control_id and s.layer == layer
            ]
            undecided = [
                u
                for u in evaluation.undecided
                if u.control_id == control.control_id and u.layer == layer
            ]
            if failed:
                cells[layer] = f"FAIL {len(failed)}"
            elif quiet:
                cells[layer] = f"suppressed {len(quiet)}"
            elif undecided:
                cells[layer] = "undecided"
            elif layer in evaluation.applicable.get(control.control_id, set()):
                cells[layer] = PASSED
            else:
                cells[layer] = NOT_APPLICABLE
        reasons = [
            f"{entry.scope}: {first_sentence(entry.reason)}"
            for entry in suppressions.for_control(control.control_id)
        ]
        rows.append(
            VerdictRow(
                control.control_id,
                control.policy_name,
                control.title,
                SCOPE_LABELS[control.evaluation_scope],
                cells,
                " ".join(reasons),
            )
        )
    implemented = {control.control_id for control in CONTROLS}
    for entry in suppressions:
        if entry.control_id not in implemented:
            rows.append(
                VerdictRow(
                    entry.control_id,
                    "",
                    "(not evaluated)",
                    "-",
                    dict.fromkeys(layers, NOT_APPLICABLE),
                    f"{entry.scope}: {first_sentence(entry.reason)}",
                )
            )
    return rows


def first_sentence(text: str) -> str:
    head, _, rest = text.partition(". ")
    return head + ("." if rest or not head.endswith(".") else "")


def _style(cell: str) -> str:
    if cell.startswith("FAIL"):
        return f"[bold red]{cell}[/]"
    if cell.startswith("suppressed"):
        return f"[yellow]{cell}[/]"
    if cell == PASSED:
        return f"[green]{cell}[/]"
    return f"[dim]{cell}[/]"


def print_inventory(console: Console, inventories: Mapping[str, Mapping[str, Any]]) -> None:
    for layer, inventory in inventories.items():
        resources = inventory["resources"]
        custom = sum(1 for r in resources if r["custom"])
        tree = Tree(
            f"[bold]{layer}[/] ({inventory['project']}, stack {inventory['stack']}): "
            f"{custom} AWS resources, {len(resources) - custom} components"
        )
        by_urn = {r["urn"]: r for r in resources}
        nodes: dict[str, Tree] = {}
        for resource in sorted(resources, key=lambda r: (r["urn"].count("$"), r["name"])):
            parent = nodes.get(resource["parent"] or "", tree)
            dependencies = [
                name_of(urn) if urn in by_urn else f"{name_of(urn)} ({type_of(urn).split(':')[-1]})"
                for urn in resource["dependencies"]
                if urn != resource["parent"]
            ]
            needs = f"  <- {', '.join(dependencies)}" if dependencies else ""
            nodes[resource["urn"]] = parent.add(
                f"{escape(resource['name'])}  [cyan]{escape(resource['type'])}[/]{escape(needs)}"
            )
        console.print(tree)


def print_verdicts(console: Console, rows: Sequence[VerdictRow], layers: Sequence[str]) -> None:
    table = Table(title="Policy pack verdicts per control and layer", show_lines=False)
    table.add_column("Control", no_wrap=True)
    table.add_column("Scope", no_wrap=True)
    for layer in layers:
        table.add_column(layer, no_wrap=True)
    table.add_column("Suppression (reason)")
    for row in rows:
        table.add_row(
            row.control_id,
            row.scope,
            *(_style(row.cells[layer]) for layer in layers),
            escape(row.suppression),
        )
    console.print(table)


def print_suppressions(console: Console, suppressions: Suppressions) -> None:
    console.print("[yellow]Suppressions[/] (policy/suppressions.yaml), each with its reason:")
    for entry in suppressions:
        console.print(f"  {entry.control_id} ({entry.scope}): {entry.reason}", markup=False)


def print_findings(console: Console, evaluation: Evaluation) -> None:
    if evaluation.suppressed:
        console.print("[yellow]Suppressed findings[/]:")
        for record in evaluation.suppressed:
            console.print(
                f"  {record.layer}/{record.resource} [{record.control_id}, {record.scope}]: "
                f"{record.message}",
                markup=False,
            )
    for undecided in evaluation.undecided:
        console.print(
            f"  undecided {undecided.control_id} in {undecided.layer}: {undecided.message}",
            markup=False,
        )
    if evaluation.violations:
        console.print(f"[bold red]{len(evaluation.violations)} violation(s):[/]")
        for violation in evaluation.violations:
            console.print(
                f"  {violation.line()}  (policy {violation.policy_name}, scope {violation.scope})",
                markup=False,
            )
    else:
        console.print("[green]No policy violations.[/]")


def print_lint(console: Console, findings: Sequence[LintFinding], documents: int) -> None:
    errors = [f for f in findings if f.error]
    console.print(
        f"parliament: {documents} IAM documents, {len(errors)} error(s), "
        f"{len(findings) - len(errors)} warning(s)"
    )
    for finding in findings:
        label = "[bold red]error[/]" if finding.error else "[dim]warning[/]"
        console.print(f"  {label} ", end="")
        console.print(finding.line(), markup=False)


def print_diff(
    console: Console, ref: str, diffs: Sequence[LayerDiff], failed: Sequence[str]
) -> None:
    console.print(f"[bold]Changes against {escape(ref)}[/] (by layer, type and logical name):")
    for line in failed:
        console.print(f"  [yellow]not synthesized at {escape(ref)}:[/] {escape(line)}")
    if all(diff.empty for diff in diffs):
        console.print("  no resource added, removed or modified")
    for diff in diffs:
        if diff.empty:
            continue
        console.print(
            f"  [bold]{diff.layer}[/]: +{len(diff.added)} -{len(diff.removed)} "
            f"~{len(diff.modified)} {diff.note}"
        )
        for kind, name in diff.added:
            console.print(f"    [green]+ {name}[/]  {kind}")
        for kind, name in diff.removed:
            console.print(f"    [red]- {name}[/]  {kind}")
        for modified in diff.modified:
            console.print(f"    [yellow]~ {modified.name}[/]  {modified.type}")
            for change in modified.changes:
                console.print(
                    f"        {change.key}: {short(change.before)} -> {short(change.after)}",
                    markup=False,
                )
