"""Who may speak for an organisation on hr-events: Ed25519 signatures by its HR producer keys.

An HR system signs the exact bytes of the Kafka message value with its organisation's private
key and sends two headers with the message: `mentoring-key-id` (which key) and
`mentoring-signature` (base64url of the signature). Every reader of hr-events verifies them
against the public keys in HR_PRODUCER_KEYS_FILE,
`{"<organization_id>": {"<key id>": "<base64 raw 32-byte public key, or PEM>"}}`. A key id
belongs to one organisation only, so a key vouches for its own organisation's events and for no
other's, whatever the envelope claims. Without the file no HR event is trusted.

The file is read again whenever it changes: an organisation's key is added or revoked without
restarting the services.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from services.common.events import TOPIC_BY_PAYLOAD, EventDecodeError, decode_event
from services.common.pb.mentoring.v1.events_pb2 import Event

log = logging.getLogger(__name__)

KEY_ID_HEADER = "mentoring-key-id"
SIGNATURE_HEADER = "mentoring-signature"
HR_EVENTS_TOPIC = TOPIC_BY_PAYLOAD["hr_event"]
KEYS_FILE_ENV = "HR_PRODUCER_KEYS_FILE"
# Kafka record headers as the clients give them: aiokafka's ConsumerRecord.headers.
Headers = Sequence[tuple[str, bytes | None]]
# A key id quoted in a reason is cut to this: it comes from whoever published the message.
_SHOWN = 100


class UntrustedHrEvent(EventDecodeError):
    """An hr-event its organisation's HR producer did not sign: no reader applies it, and the
    consumer groups dead-letter it with this reason."""


@dataclass(frozen=True, slots=True)
class ProducerKey:
    """An HR producer's private key and the key id its public half is registered under."""

    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, key_id: str | None = None) -> ProducerKey:
        return cls(key_id or uuid.uuid4().hex, Ed25519PrivateKey.generate())

    def public_key_text(self) -> str:
        """The public half as the keys file holds it: base64 of the raw 32 bytes."""
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode()

    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def headers(self, value: bytes) -> list[tuple[str, bytes]]:
        return sign(value, self.key_id, self.private_key)


def sign(value: bytes, key_id: str, private_key: Ed25519PrivateKey) -> list[tuple[str, bytes]]:
    """The headers to send with the message value `value`, which must go out byte for byte."""
    signature = base64.urlsafe_b64encode(private_key.sign(value)).rstrip(b"=")
    return [(KEY_ID_HEADER, key_id.encode()), (SIGNATURE_HEADER, signature)]


def signature_headers(headers: Headers) -> tuple[bytes, bytes]:
    """The record's key id and signature, empty when absent. A repeated header counts once, the
    first: any pair that verifies proves the organisation's key signed this very value."""
    found: dict[str, bytes] = {}
    for name, value in headers:
        if name in (KEY_ID_HEADER, SIGNATURE_HEADER):
            found.setdefault(name, value or b"")
    return found.get(KEY_ID_HEADER, b""), found.get(SIGNATURE_HEADER, b"")


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """A public key in the keys file, and the one organisation it speaks for."""

    organization_id: str
    public_key: Ed25519PublicKey


class HrProducers:
    """The organisations' HR producers, known by their public keys (HR_PRODUCER_KEYS_FILE).

    No file configured: no producer is known, so no HR event is trusted. A file that cannot be
    read or parsed trusts nobody either, and every rejection says what is wrong with it.
    """

    def __init__(self, keys_file: str) -> None:
        self._path = keys_file
        # (mtime, size, inode) of the file last read: a rename over it changes the inode.
        self._read_as: tuple[int, int, int] | None = None
        self._keys: dict[str, RegisteredKey] = {}
        # Why the file is unusable, as last logged.
        self._problem = ""

    def decode(self, topic: str, value: bytes | None, headers: Headers) -> Event:
        """The record's event, checked as decode_event checks it; one on hr-events only if its
        organisation's HR producer signed it. Raises EventDecodeError saying why not."""
        event = decode_event(value, topic)
        if topic == HR_EVENTS_TOPIC:
            self.verify(value or b"", headers, event.envelope.organization_id)
        return event

    def verify(self, value: bytes, headers: Headers, organization_id: str) -> str:
        """The organisation whose key signed the value, which must be the envelope's
        `organization_id`; raises UntrustedHrEvent saying why not."""
        key_id, signature = signature_headers(headers)
        if not key_id or not signature:
            raise UntrustedHrEvent(
                f"unsigned: an hr-event needs the {KEY_ID_HEADER} and {SIGNATURE_HEADER} headers"
            )
        name = key_id.decode(errors="replace")
        shown = name[:_SHOWN]
        registered = self._current().get(name)
        if registered is None:
            unset = "" if self._path else f" ({KEYS_FILE_ENV} is not set: no key is trusted)"
            raise UntrustedHrEvent(f"unknown key id {shown!r}{unset}")
        try:
            registered.public_key.verify(_unbase64(signature), value)
        except (InvalidSignature, ValueError):
            raise UntrustedHrEvent(f"bad signature for key id {shown!r}") from None
        if registered.organization_id != organization_id:
            raise UntrustedHrEvent(
                f"signed by organisation {registered.organization_id!r} (key id {shown!r}) but "
                f"the envelope says {organization_id[:_SHOWN]!r}"
            )
        return registered.organization_id

    def _current(self) -> dict[str, RegisteredKey]:
        """The keys as the file holds them now; raises UntrustedHrEvent while it is unusable."""
        if not self._path:
            return {}
        try:
            status = os.stat(self._path)
            read_as = (status.st_mtime_ns, status.st_size, status.st_ino)
            if read_as != self._read_as:
                self._keys, self._read_as, self._problem = load_keys(self._path), read_as, ""
                organisations = {key.organization_id for key in self._keys.values()}
                log.info("HR producer keys of %d organisations", len(organisations))
        except (OSError, ValueError) as exc:
            if str(exc) != self._problem:
                log.error("%s %s trusts nobody: %s", KEYS_FILE_ENV, self._path, exc)
            # Read again for the next event: the file may be mid-write, or mended by then.
            self._keys, self._read_as, self._problem = {}, None, str(exc)
            raise UntrustedHrEvent(f"{KEYS_FILE_ENV} {self._path}: {exc}") from None
        return self._keys


def load_keys(path: str | Path) -> dict[str, RegisteredKey]:
    """Key id -> its organisation and public key; raises ValueError saying what is wrong."""
    try:
        listed = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(listed, dict):
        raise ValueError("must be an object of organisation ids")
    keys: dict[str, RegisteredKey] = {}
    for organization_id, by_key_id in listed.items():
        if not organization_id or not isinstance(by_key_id, dict):
            raise ValueError(f"organisation {organization_id!r}: must map key ids to public keys")
        for key_id, text in by_key_id.items():
            if not key_id:
                raise ValueError(f"organisation {organization_id!r}: an empty key id")
            if key_id in keys:
                raise ValueError(
                    f"key id {key_id!r} is listed for {keys[key_id].organization_id!r} and "
                    f"{organization_id!r}: a key speaks for one organisation"
                )
            public_key = _public_key(text, f"key id {key_id!r}")
            keys[key_id] = RegisteredKey(organization_id, public_key)
    return keys


def register(path: Path, organization_id: str, producer: ProducerKey) -> None:
    """Add the producer's public key to the keys file for the organisation (creating the file),
    replacing the file whole so a reader never sees half of it."""
    listed: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    listed.setdefault(organization_id, {})[producer.key_id] = producer.public_key_text()
    write_keys(path, listed)


def write_keys(path: Path, listed: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
        json.dump(listed, out, indent=2, sort_keys=True)
    os.replace(out.name, path)


def _public_key(text: object, where: str) -> Ed25519PublicKey:
    if not isinstance(text, str):
        raise ValueError(f"{where}: a public key is a string")
    if text.lstrip().startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"{where}: not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{where}: not an Ed25519 public key")
        return key
    try:
        raw = _unbase64(text.strip().encode())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{where}: not base64 of a raw 32-byte Ed25519 public key, nor PEM")
    return Ed25519PublicKey.from_public_bytes(raw)


def _unbase64(text: bytes) -> bytes:
    """base64 or base64url, padded or not; raises ValueError (binascii.Error)."""
    urlsafe = text.replace(b"+", b"-").replace(b"/", b"_").rstrip(b"=")
    return base64.b64decode(urlsafe + b"=" * (-len(urlsafe) % 4), altchars=b"-_", validate=True)
