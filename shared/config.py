"""Typed, validated configuration for a layer program.

A layer's Pulumi.yaml declares every key it reads (type, description, default). That file is
the only place a default is written: the CLI applies it on `pulumi up`, and this module applies
the same default where the engine does not (the SDK's mocks). A key the program reads but the
file does not declare is a programming error; a value of the wrong type or out of range is a
user error whose message names the key and how to fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from shared.manifest import Layer

# The only retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


# What an address SNS can deliver e-mail to looks like: one @, a dot in the domain, no spaces.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email_problem(address: str) -> str | None:
    """Why `address` is not an e-mail address, or None when it is one."""
    if EMAIL_PATTERN.match(address):
        return None
    return f"{address!r}, which is not an e-mail address"


# Config keys holding a function's reserved concurrency end so; -1 in them means "none".
RESERVED_CONCURRENCY_SUFFIX = "_reserved_concurrency"
NO_RESERVATION = -1


class ConfigError(pulumi.RunError):
    """Bad stack configuration. RunError makes Pulumi print the message without a traceback."""


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str
    description: str
    default: Any = None

    @property
    def required(self) -> bool:
        """The CLI refuses to run a stack that leaves a key without a default unset."""
        return self.default is None


def read_schema(project_file: Path) -> dict[str, ConfigKey]:
    """The `config:` block of a Pulumi.yaml, as declared keys."""
    document = yaml.safe_load(project_file.read_text(encoding="utf-8"))
    declared = document.get("config") or {}
    schema: dict[str, ConfigKey] = {}
    for name, spec in declared.items():
        if ":" in name:  # provider settings such as aws:region are not the program's keys
            continue
        schema[name] = ConfigKey(
            name=name,
            type=spec["type"],
            description=spec["description"],
            default=spec.get("default"),
        )
    return schema


class LayerConfig:
    """Reads the layer's own configuration keys, with the defaults of its Pulumi.yaml."""

    def __init__(self, layer: Layer, *, project_file: Path | None = None) -> None:
        self.layer = layer
        self.schema = read_schema(project_file or layer.directory / "Pulumi.yaml")
        self._config = pulumi.Config()

    def _declared(self, key: str, expected_type: str) -> ConfigKey:
        spec = self.schema.get(key)
        if spec is None:
            raise ConfigError(
                f"the {self.layer.name} program reads config key {key!r}, which "
                f"stacks/{self.layer.name}/Pulumi.yaml does not declare; declare it there "
                "with its type, description and default"
            )
        if spec.type != expected_type:
            raise ConfigError(
                f"config key {key!r} is declared as {spec.type} in "
                f"stacks/{self.layer.name}/Pulumi.yaml but read as {expected_type}"
            )
        return spec

    def _error(self, key: str, problem: str, example: str) -> ConfigError:
        return ConfigError(
            f"{self.layer.project}:{key} {problem}. Fix it in stacks/{self.layer.name} with: "
            f"pulumi config set {key} {example}"
        )

    def _raw(self, spec: ConfigKey, example: str) -> str | None:
        raw = self._config.get(spec.name)
        if raw is None and spec.required:
            raise self._error(spec.name, "is required but not set", example)
        return raw

    def string(self, key: str, *, choices: Sequence[str] | None = None) -> str:
        spec = self._declared(key, "string")
        example = choices[0] if choices else "<value>"
        raw = self._raw(spec, example)
        value = str(spec.default) if raw is None else raw
        if choices is not None and value not in choices:
            raise self._error(key, f"must be one of {', '.join(choices)}, got {value!r}", example)
        if not value.strip():
            raise self._error(key, "must not be empty", example)
        return value

    def optional_string(self, key: str) -> str | None:
        """A string whose declared default is "": None when it is left empty."""
        spec = self._declared(key, "string")
        if spec.default != "":
            raise ConfigError(
                f'config key {key!r} must be declared with default: "" in '
                f"stacks/{self.layer.name}/Pulumi.yaml to be optional"
            )
        raw = self._config.get(key)
        if raw is None or not raw.strip():
            return None
        return raw.strip()

    def integer(self, key: str, *, minimum: int, maximum: int) -> int:
        spec = self._declared(key, "integer")
        raw = self._raw(spec, str(minimum))
        if raw is None:
            value = int(spec.default)
        else:
            try:
                value = int(raw)
            except ValueError:
                raise self._error(
                    key, f"must be a whole number, got {raw!r}", str(minimum)
                ) from None
        if not minimum <= value <= maximum:
            raise self._error(
                key, f"must be between {minimum} and {maximum}, got {value}", str(minimum)
            )
        return value

    def reserved_concurrency(self, key: str) -> int | None:
        """A function's reserved concurrency; None (config -1) leaves it to the shared pool.

        Lambda accepts any reservation from 0 (the function never runs: an emergency stop) up
        to what keeps min(100, the account's concurrency quota) executions unreserved for every
        other function (Lambda concurrency documentation). That upper bound depends on the
        account, so it is checked against the account before a deploy (tooling/preflight), not
        here. Keys end in `_reserved_concurrency`, which is how that check finds them.
        """
        if not key.endswith(RESERVED_CONCURRENCY_SUFFIX):
            raise ConfigError(
                f"config key {key!r} holds a reserved concurrency, so its name must end in "
                f"{RESERVED_CONCURRENCY_SUFFIX!r} (the pre-deploy concurrency check finds it so)"
            )
        spec = self._declared(key, "integer")
        raw = self._raw(spec, "-1")
        try:
            value = int(spec.default) if raw is None else int(raw)
        except ValueError:
            raise self._error(key, f"must be a whole number, got {raw!r}", "-1") from None
        if value < NO_RESERVATION:
            raise self._error(
                key,
                f"must be -1 (no reservation) or a reservation of 0 or more, got {value}",
                "-1",
            )
        return None if value == NO_RESERVATION else value

    def log_retention_days(self, key: str) -> int:
        value = self.integer(key, minimum=LOG_RETENTION_DAYS[0], maximum=LOG_RETENTION_DAYS[-1])
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(str(days) for days in LOG_RETENTION_DAYS)
            raise self._error(
                key, f"must be one of {allowed} (CloudWatch Logs' periods), got {value}", "14"
            )
        return value

    def boolean(self, key: str) -> bool:
        spec = self._declared(key, "boolean")
        raw = self._raw(spec, "true")
        if raw is None:
            return bool(spec.default)
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise self._error(key, f"must be true or false, got {raw!r}", "true")
        return lowered == "true"

    def string_list(self, key: str) -> list[str]:
        spec = self._declared(key, "array")
        example = "--path '<key>[0]' <value>"
        raw = self._raw(spec, example)
        if raw is None:
            return [str(item) for item in (spec.default or [])]
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise self._error(key, f"must be a list of strings, got {raw!r}", example) from None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._error(key, f"must be a list of strings, got {raw!r}", example)
        return value

    def optional_secret(self, key: str) -> pulumi.Output[str] | None:
        """A secret the user may set with `pulumi config set --secret`; None when unset.

        Declared with `default: ""` because the CLI requires a value for keys without a
        default; the empty string means "not supplied", so the program can generate one.
        """
        spec = self._declared(key, "string")
        if spec.default != "":
            raise ConfigError(
                f'config key {key!r} must be declared with default: "" in '
                f"stacks/{self.layer.name}/Pulumi.yaml to be an optional secret"
            )
        # Reading the raw value only to test for emptiness: it is never returned in plain.
        raw = pulumi.runtime.get_config(f"{self.layer.project}:{key}")
        if not raw:
            return None
        if not pulumi.runtime.is_config_secret(f"{self.layer.project}:{key}"):
            raise self._error(key, "must be set as a secret", "--secret <value>")
        return self._config.require_secret(key)
