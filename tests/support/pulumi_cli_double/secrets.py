"""The passphrase secrets provider of the file backend, as pkg/secrets/passphrase/manager.go and
sdk/go/common/resource/config/crypt.go implement it.

A stack's secrets state is `v1:<base64 salt>:<ciphertext of "pulumi">`, kept as `encryptionsalt`
in Pulumi.<stack>.yaml and as the checkpoint's `secrets_providers` state. The key is PBKDF2-SHA256
of the passphrase with that salt, 1,000,000 iterations, 32 bytes; values are AES-256-GCM with a
12-byte nonce, written `v1:<base64 nonce>:<base64 ciphertext>`. The passphrase comes from
PULUMI_CONFIG_PASSPHRASE, else the file named by PULUMI_CONFIG_PASSPHRASE_FILE (readPassphrase);
non-interactive, with neither set, the CLI stops. A wrong passphrase gives a locked manager that
fails only when it must encrypt or decrypt (newLockedPasspharseSecretsManager), which is also
when the double derives the key: like the CLI's in-process cache, but lazily, so commands that
touch no secret do not pay for the derivation.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.support.pulumi_cli_double.errors import CliError

ITERATIONS = 1_000_000
KEY_BYTES = 32
SALT_BYTES = 8
NONCE_BYTES = 12
CHECK_PLAINTEXT = "pulumi"

# How Pulumi marks a secret in serialized state (sdk/go/common/resource/sig): a documented wire
# constant, not a secret.
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

MISSING_PASSPHRASE = (
    "passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE "
    "environment variables"
)
INCORRECT_PASSPHRASE = (
    "incorrect passphrase, please set PULUMI_CONFIG_PASSPHRASE to the correct passphrase or set "
    "PULUMI_CONFIG_PASSPHRASE_FILE to a file containing the passphrase"
)

_KEYS: dict[tuple[str, str], bytes] = {}


def read_passphrase(environ: Mapping[str, str], cwd: Path) -> str:
    """The passphrase from the environment; CliError when neither variable is set."""
    if "PULUMI_CONFIG_PASSPHRASE" in environ:
        return environ["PULUMI_CONFIG_PASSPHRASE"]
    path = environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        try:
            return (cwd / path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CliError(f"unable to read PULUMI_CONFIG_PASSPHRASE_FILE: {error}") from None
    raise CliError(MISSING_PASSPHRASE)


def _derive(passphrase: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, ITERATIONS, KEY_BYTES)


def encrypt_with(key: bytes, plaintext: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), None)
    return f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"


def decrypt_with(key: bytes, ciphertext: str) -> str:
    """Raises ValueError when the value is malformed or the key is wrong."""
    parts = ciphertext.split(":")
    if len(parts) != 3 or parts[0] != "v1":
        raise ValueError("bad value")
    nonce, sealed = base64.b64decode(parts[1]), base64.b64decode(parts[2])
    try:
        return AESGCM(key).decrypt(nonce, sealed, None).decode()
    except Exception as error:  # cryptography raises InvalidTag for a wrong key
        raise ValueError("message authentication failed") from error


class PassphraseSecrets:
    """One stack's passphrase secrets manager; the key is derived on first use."""

    def __init__(self, state: str, environ: Mapping[str, str], cwd: Path) -> None:
        self.state = state
        self._environ = environ
        self._cwd = cwd
        # Asked now, as the CLI does when it builds the manager: no passphrase, no command.
        self._passphrase = read_passphrase(environ, cwd)

    @classmethod
    def new(cls, environ: Mapping[str, str], cwd: Path) -> PassphraseSecrets:
        """A fresh salt and its check value (NewPassphraseSecretsManager)."""
        passphrase = read_passphrase(environ, cwd)
        salt = os.urandom(SALT_BYTES)
        key = _derive(passphrase, salt)
        state = f"v1:{base64.b64encode(salt).decode()}:{encrypt_with(key, CHECK_PLAINTEXT)}"
        _KEYS[(passphrase, state)] = key
        return cls(state, environ, cwd)

    def _key(self) -> bytes:
        cached = _KEYS.get((self._passphrase, self.state))
        if cached is not None:
            return cached
        version, _, rest = self.state.partition(":")
        salt_text, _, check = rest.partition(":")
        if version != "v1" or not check:
            raise CliError(
                'constructing secrets manager of type "passphrase": malformed state value'
            )
        key = _derive(self._passphrase, base64.b64decode(salt_text))
        try:
            if decrypt_with(key, check) != CHECK_PLAINTEXT:
                raise ValueError("check value differs")
        except ValueError:
            raise CliError(f"failed to decrypt: {INCORRECT_PASSPHRASE}") from None
        _KEYS[(self._passphrase, self.state)] = key
        return key

    def verify(self) -> None:
        """Check the passphrase against the salt now (GetPassphraseSecretsManager), as the CLI
        does when it loads a stack's configuration."""
        try:
            self._key()
        except CliError:
            raise CliError("incorrect passphrase") from None

    def encrypt(self, plaintext: str) -> str:
        try:
            return encrypt_with(self._key(), plaintext)
        except CliError as error:
            raise CliError(str(error).replace("failed to decrypt", "failed to encrypt")) from None

    def decrypt(self, ciphertext: str) -> str:
        key = self._key()
        try:
            return decrypt_with(key, ciphertext)
        except ValueError as error:
            raise CliError(f"failed to decrypt secret value: {error}") from None

    def state_json(self) -> dict[str, object]:
        """The checkpoint's `secrets_providers` entry."""
        return {"type": "passphrase", "state": {"salt": self.state}}


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG
