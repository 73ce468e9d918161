"""A list of checks with a verdict each, printed as a table and saved as JSON under build/.

`nox -s preflight` (before a deploy) and `nox -s verify` (after one) both answer with one: each
check passes, warns (worth knowing, nothing blocks), fails (with the fix in one sentence) or is
skipped (it does not apply here, and says why).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"

    @property
    def style(self) -> str:
        return {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}[self.value]


@dataclass(frozen=True)
class Check:
    """One check's answer: what was found, and for a warning or failure what to do."""

    name: str
    verdict: Verdict
    detail: str
    fix: str = ""


class CheckFailedError(Exception):
    """Raised inside a check to fail it with its detail and fix."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


@dataclass
class Checklist:
    """The answers of one run, in the order they were checked."""

    title: str
    context: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def add(self, name: str, verdict: Verdict, detail: str, fix: str = "") -> Check:
        check = Check(name, verdict, detail, fix)
        self.checks.append(check)
        return check

    def run(self, name: str, check: Callable[[], Check | tuple[Verdict, str, str]]) -> Check:
        """Run one check; an exception fails it (named, never a traceback) and the run goes on."""
        try:
            answer = check()
        except CheckFailedError as failed:
            return self.add(name, Verdict.FAIL, failed.detail, failed.fix)
        except Exception as error:  # a check that cannot look must say so, not stop the rest
            return self.add(
                name,
                Verdict.FAIL,
                f"could not check: {type(error).__name__}: {_first_line(str(error))}",
                "see the detail; run again once it is fixed",
            )
        if isinstance(answer, Check):
            self.checks.append(answer)
            return answer
        verdict, detail, fix = answer
        return self.add(name, verdict, detail, fix)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.verdict is Verdict.FAIL]

    @property
    def passed(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        return {
            verdict.value: sum(c.verdict is verdict for c in self.checks) for verdict in Verdict
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "context": self.context,
            "started_at": self.started_at,
            "passed": self.passed,
            "counts": self.counts(),
            "checks": [{**asdict(check), "verdict": check.verdict.value} for check in self.checks],
        }

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path

    def print(self, console: Console, saved_to: Path | None = None) -> None:
        where = " · ".join(f"{key} {value}" for key, value in self.context.items())
        table = Table(
            title=f"{self.title}" + (f" · {where}" if where else ""), title_justify="left"
        )
        table.add_column("check", no_wrap=True)
        table.add_column("result")
        table.add_column("detail")
        table.add_column("fix")
        for check in self.checks:
            table.add_row(
                check.name,
                Text(check.verdict.value, style=check.verdict.style),
                check.detail,
                check.fix,
            )
        console.print(table)
        counts = ", ".join(f"{count} {verdict}" for verdict, count in self.counts().items())
        suffix = f"; report: {saved_to}" if saved_to else ""
        console.print(f"{counts}{suffix}", highlight=False)


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0][:300] if stripped else "no detail"
