"""A faithful double of the Pulumi CLI (3.272.0) for the test suite.

`bin/pulumi` is an executable that a fixture (tests/conftest.py, `pulumi_cli`) puts first on
PATH, so the real `pulumi.automation` code, and through it the orchestrator's real
`AutomationEngine`, run unchanged against it: the Automation API only starts `pulumi` with
arguments and parses what it prints and what it streams to `--event-log`.

What it imitates, each with its source beside the code:
- the commands and flags the SDK issues (`surface.py`); an unknown flag or command fails as the
  CLI's cobra parser fails it (exit 255, `error: unknown flag: --x`), and a flag the CLI has
  but the double does not implement fails saying so;
- the non-interactive rules: `up`, `destroy` and `refresh` need `--yes` (or `--skip-preview`),
  `stack rm` needs `--yes`;
- the DIY file backend's layout on disk (`backend.py`: `.pulumi/meta.yaml`, checkpoints under
  `.pulumi/stacks/<project>/<stack>.json`, history, backups and lock files), its stack name rules
  (`organization/<project>/<stack>`) and its lock conflict message;
- the passphrase secrets provider (`secrets.py`): PULUMI_CONFIG_PASSPHRASE(_FILE) required, the
  salt in Pulumi.<stack>.yaml's `encryptionsalt`, AES-256-GCM ciphertext in config (`secure:`)
  and state, `[secret]` masking, "incorrect passphrase";
- stack settings and config (`workspace.py`): `config set-all/get/rm` with `--path` keys and
  secrets, project config defaults and types, `--config-file`, the selected stack;
- updates (`engine.py`): each program runs under the Pulumi SDK's mocks
  (tooling/mock_engine.py) with the stack's configuration; StackReferences read the outputs of
  the stacks the backend holds; resource changes (create/update/delete/same, reads apart) come
  from comparing the new registrations' inputs with the previous checkpoint; the change
  summary, history entries and the engine events (`events.py`) have the CLI's shapes;
- the AWS account (`aws_account.py`): what the updates created, so that `refresh` (and
  `refresh --preview-only`, which writes nothing and takes no lock) finds the resources a test
  changed or deleted out of band, with the engine's refresh steps and events; and two AWS
  refusals the orchestrator must survive: DeleteTable on a deletion-protected table, and
  CreateSecret with a name still reserved by a deleted secret.

What it cannot check (no provider plugin or cloud is involved):
- no provider runs: no real diff (an input change is an in-place update; replacements and
  provider defaults are invisible), no provider validation beyond the SDK's and the resource
  types' own typing, no default provider resources in state or counts;
- policy packs are checked to exist (`PulumiPolicy.yaml`, resolved from the working directory
  as the CLI does) but not executed;
- a refresh reads the double's account, not AWS: only changes made through the account's
  out-of-band helpers show, named by top-level key (a provider's diff may name nested paths
  and ignore keys it does not manage);
- Pulumi Cloud is not served: only `file://` backends; `whoami` answers for the file backend;
- the language host is simplified: the program runs in the CLI's own Python process, which
  imports `shared` and the layer program from the interpreter's path (PYTHONPATH first, as the
  CLI's Python host gives it); the project's `virtualenv` is checked to exist, not used.
"""

from __future__ import annotations

from pathlib import Path

BIN_DIR = Path(__file__).resolve().parent / "bin"
