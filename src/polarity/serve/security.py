"""API keys: plain keys from settings or SHA-256 hashes from a keys file; every check
compares in constant time against every known key."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from polarity.errors import InputError

log = logging.getLogger("polarity.serve")

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


def read_keys(path: str | Path) -> list[tuple[str, str]]:
    """``(sha256 hex, name)`` per key line of a keys file."""
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.strip().split(maxsplit=1)
        if parts and not parts[0].startswith("#"):
            out.append((parts[0].lower(), parts[1] if len(parts) > 1 else ""))
    return out


def revoke_keys(path: str | Path, which: str) -> list[tuple[str, str]]:
    """Remove the keys whose id (the hash's first 12 characters) or name is ``which``;
    returns them. A running service stops accepting them within a second."""
    from polarity.folders import write_atomically

    path = Path(path)
    read_key_hashes(path)  # refuse a malformed file before rewriting it
    gone, kept = [], []
    for line in path.read_text().splitlines(keepends=True):
        parts = line.strip().split(maxsplit=1)
        match = parts and not parts[0].startswith("#") and (
            key_id(parts[0].lower()) == which or (len(parts) > 1 and parts[1] == which))
        (gone if match else kept).append(line)
    if not gone:
        raise InputError(f"no key with id or name {which!r} in {path} (see `polarity keys "
                         f"list --file {path}`)")
    write_atomically(path, "".join(kept))
    path.chmod(0o600)
    return [(key_id(g.split()[0]), (g.split(maxsplit=1)[1:] or [""])[0].strip()) for g in gone]


#: Values that templates ship in place of a key: never accepted as one.
PLACEHOLDER_KEYS = frozenset({"replace-me", "replace_me", "changeme", "change-me", "change_me",
                              "your-key-here", "your-api-key", "secret", "example", "xxx"})


def refuse_placeholders(keys: list[str]) -> None:
    for key in keys:
        if key.strip().lower() in PLACEHOLDER_KEYS:
            raise InputError(f"API key {key!r} is a placeholder from a template: put real "
                             "keys there, made with `polarity keys create` (in Kubernetes, "
                             "the hashed keys file of the polarity-api-keys Secret: "
                             "docs/deploy.md)")


@dataclass
class KeyStore:
    hashes: list[bytes]
    plain: list[bytes] = field(default_factory=list)
    path: Path | None = None
    stamp: tuple[int, int] | None = None
    checked: float = 0.0

    @classmethod
    def build(cls, plain: list[str], keys_file: str | None) -> KeyStore:
        refuse_placeholders(plain)
        digests = [bytes.fromhex(hash_key(k)) for k in plain]
        store = cls(list(digests), digests, Path(keys_file) if keys_file else None)
        store.reload()
        return store

    def __len__(self) -> int:
        return len(self.hashes)

    def reload(self) -> None:
        """Read the keys file again (the plain keys from settings stay)."""
        if self.path is None:
            return
        stat = self.path.stat() if self.path.exists() else None
        hashes = read_key_hashes(self.path)
        self.hashes = self.plain + [bytes.fromhex(d) for d in hashes]
        self.stamp = (stat.st_mtime_ns, stat.st_size) if stat else None

    def refresh(self, every: float = 1.0) -> None:
        """Reload when the keys file changed (checked at most every ``every`` seconds): a key
        removed from the file stops working without a restart, and so does every key of a
        deleted file (logged as an error). A file made unreadable or malformed keeps the keys
        read last, with a warning."""
        now = time.monotonic()
        if self.path is None or now - self.checked < every:
            return
        self.checked = now
        if not self.path.exists():
            if self.stamp is not None:  # deleting the file revokes its keys, loudly
                log.error("API keys file %s was deleted: every key it held is revoked (%d "
                          "key(s) from settings remain)", self.path, len(self.plain))
                self.hashes, self.stamp = list(self.plain), None
            return
        try:
            stat = self.path.stat()
            if (stat.st_mtime_ns, stat.st_size) != self.stamp:
                self.reload()
                log.info("API keys reloaded from %s: %d key(s)", self.path, len(self))
        except (OSError, InputError) as exc:
            log.warning("API keys file %s not reloaded: %s", self.path, exc)

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


class AmbiguousKey(ValueError):
    """A request that carries more than one key: refused, whichever of them is valid."""


#: The headers a key may come in; the 401 message names both.
KEY_HEADERS = "the X-API-Key header or Authorization: Bearer <key>"


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The one key a request presents: ``X-API-Key: <key>`` (polarity's own clients) or
    ``Authorization: Bearer <key>`` (Hugging Face, TEI and OpenAI-style clients), None when
    it carries neither. :class:`AmbiguousKey` when it carries several: two X-API-Key headers,
    two Bearer headers, or both headers with different keys. A server that took "the last
    one" (as a dict of headers does) and a proxy that checked the first would disagree on
    who is calling. An Authorization header of another scheme (Basic) is not a key."""
    found: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == b"x-api-key":
            found.append(value.decode("latin-1").strip())
        elif name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer":
                found.append(token.strip())
    if len(found) > 1 and (len(set(found)) > 1 or _repeated_header(headers)):
        raise AmbiguousKey(f"the request carries {len(found)} API keys: send one, in "
                           f"{KEY_HEADERS}")
    return found[0] if found else None


def _repeated_header(headers: list[tuple[bytes, bytes]]) -> bool:
    """Two X-API-Key or two Authorization headers (even with one key): refused, because
    proxies and servers disagree on which of them counts."""
    names = [n.lower() for n, _ in headers if n.lower() in (b"x-api-key", b"authorization")]
    return len(names) != len(set(names))


class RequireKey:
    """ASGI middleware: checks the key of every request before its body is read or parsed,
    so a request without a valid key gets 401 whatever its body holds. On an open path
    (``open_paths``: health) a request needs no key, but one it presents is checked all the
    same, so that the route can show more to a caller with a valid key. Every 401 is logged
    with the client's address and the reason, never with the key it sent."""

    def __init__(self, app, keys: KeyStore | None, open_paths: list[str]):
        self.app, self.keys, self.open_paths = app, keys, set(open_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.keys is None:
            return await self.app(scope, receive, send)
        self.keys.refresh()
        open_path = scope["path"] in self.open_paths
        try:
            kid = self.keys.check(presented_key(scope["headers"]))
            reason = f"missing or invalid API key: send it in {KEY_HEADERS}"
        except AmbiguousKey as exc:
            kid, reason = None, str(exc)
        if kid is not None:
            scope.setdefault("state", {})["key_id"] = kid
        elif not open_path:
            return await self._refuse(scope, receive, send, reason)
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope, receive, send, reason: str) -> None:
        from starlette.requests import Request

        from polarity.serve.errors import error_response

        client = scope.get("client") or ("-", 0)
        log.warning("401 from %s:%s on %r (request %s): %s", client[0], client[1],
                    scope["path"], scope.get("state", {}).get("request_id", "-"), reason)
        response = error_response(Request(scope), 401, "unauthorized", reason,
                                  {"WWW-Authenticate": 'Bearer, ApiKey header="X-API-Key"'})
        await response(scope, receive, send)
