"""The engine event stream `--event-log` asks for.

The SDK (pulumi/automation/_stack.py, `_setup_event_log`) passes a file path to CLIs up to
3.205 and, from then on, `tcp://127.0.0.1:<port>` of a gRPC `pulumirpc.Events` server
(`StreamEvents`, one JSON-encoded engine event per `EventRequest`); `preview` needs the
`summaryEvent` to build its result. Event shapes are apitype.EngineEvent's JSON
(sdk/go/common/apitype/events.go): `sequence`, `timestamp` and one of `preludeEvent`,
`resourcePreEvent`, `resOutputsEvent`, `diagnosticEvent`, `summaryEvent`, `cancelEvent`.
A file log ends with a `cancelEvent`, which tells the SDK's file watcher to stop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class EventLog:
    """Collects the events of one operation and delivers them where `--event-log` says."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.events: list[dict[str, Any]] = []

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        self.events.append(
            {"sequence": len(self.events) + 1, "timestamp": int(time.time()), kind: payload}
        )

    def deliver(self) -> None:
        if not self.target:
            return
        if self.target.startswith("tcp://"):
            self._stream(self.target.removeprefix("tcp://"))
            return
        with Path(self.target).open("a", encoding="utf-8") as log:
            for event in [*self.events, self._cancel()]:
                log.write(json.dumps(event) + "\n")

    def _cancel(self) -> dict[str, Any]:
        return {"sequence": len(self.events) + 1, "timestamp": int(time.time()), "cancelEvent": {}}

    def _stream(self, address: str) -> None:
        # grpc and the generated stubs are imported only here: most commands stream nothing.
        import grpc
        from pulumi.runtime.proto import events_pb2, events_pb2_grpc

        def requests() -> Iterator[Any]:
            for event in self.events:
                yield events_pb2.EventRequest(event=json.dumps(event))

        with grpc.insecure_channel(address) as channel:
            events_pb2_grpc.EventsStub(channel).StreamEvents(requests(), timeout=30)
