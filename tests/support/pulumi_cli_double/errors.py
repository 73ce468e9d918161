"""How the double fails: one error type whose message the CLI would print after `error: `."""

from __future__ import annotations

# The CLI's exit status for any failed command: `os.Exit(-1)` in pkg/cmd/pulumi/main.go after
# `cmd.DisplayErrorMessage(err)`, which prints `error: <message>` on stderr.
EXIT_FAILURE = 255


class CliError(Exception):
    """A command failed; the message is what the CLI prints after `error: `."""


class BailError(Exception):
    """The operation failed and its diagnostics are printed already: exit 255, nothing more
    (the CLI's result.BailError)."""
