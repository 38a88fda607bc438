"""API keys: plain keys from settings or SHA-256 hashes from a keys file; every check
compares in constant time against every known key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from polarity.errors import InputError

KEY_PREFIX = "pk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key_hash: str) -> str:
    """A short, non-secret name for a key, used in logs, metrics and rate limits."""
    return key_hash[:12]


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(path: str | Path, name: str = "") -> str:
    """Generate a key, append its hash to ``path`` (mode 600) and return the plain key."""
    key = new_key()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = f"{hash_key(key)} {name}".rstrip() + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
    path.chmod(0o600)
    return key


def read_key_hashes(path: str | Path) -> list[str]:
    """Hashes from a keys file: ``<sha256 hex> [name]`` per line, ``#`` comments allowed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"API keys file not found: {path} (create one with `polarity keys "
                         f"create --file {path}`)")
    hashes = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest = line.split()[0].lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InputError(f"{path}:{n} is not a SHA-256 hex digest")
        hashes.append(digest)
    return hashes


@dataclass
class KeyStore:
    hashes: list[bytes]

    @classmethod
    def build(cls, plain: list[str], keys_file: str | None) -> KeyStore:
        digests = [hash_key(k) for k in plain]
        if keys_file:
            digests += read_key_hashes(keys_file)
        return cls([bytes.fromhex(d) for d in digests])

    def __len__(self) -> int:
        return len(self.hashes)

    def check(self, presented: str | None) -> str | None:
        """The key id when ``presented`` is a known key, else None."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        found = None
        for known in self.hashes:  # no early exit: time does not depend on which key matched
            if hmac.compare_digest(digest, known):
                found = known
        return key_id(found.hex()) if found is not None else None
