"""hr-events are trusted only when signed by the HR producer key of the envelope's organisation:
every way of getting that wrong is refused, and says why."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from services.common.api import events_pb2
from services.common.events import EventDecodeError, new_event
from services.common.hr_signatures import (
    HR_EVENTS_TOPIC,
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    HrProducers,
    ProducerKey,
    UntrustedHrEvent,
    load_keys,
    register,
    sign,
    write_keys,
)

ACME, GLOBEX = "acme", "globex"


def hr_event(org: str = ACME) -> bytes:
    change = events_pb2.HrEvent(hr_person_id="h-1", terminated=events_pb2.Terminated())
    event = new_event(producer="hris", organization_id=org, program_id="", payload=change)
    return event.SerializeToString()


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "hr-producer-keys.json"


@pytest.fixture
def acme(keys_file: Path) -> ProducerKey:
    key = ProducerKey.generate()
    register(keys_file, ACME, key)
    return key


@pytest.fixture
def globex(keys_file: Path) -> ProducerKey:
    key = ProducerKey.generate()
    register(keys_file, GLOBEX, key)
    return key


def rejection(producers: HrProducers, value: bytes, headers: list[tuple[str, bytes]]) -> str:
    with pytest.raises(UntrustedHrEvent) as refused:
        producers.decode(HR_EVENTS_TOPIC, value, headers)
    return str(refused.value)


def test_an_event_signed_by_its_organisations_key_is_trusted(
    keys_file: Path, acme: ProducerKey, globex: ProducerKey
) -> None:
    producers = HrProducers(str(keys_file))
    value = hr_event(ACME)
    event = producers.decode(HR_EVENTS_TOPIC, value, acme.headers(value))
    assert event.hr_event.hr_person_id == "h-1"
    assert producers.verify(value, acme.headers(value), ACME) == ACME


def test_a_tampered_value_is_a_bad_signature(keys_file: Path, acme: ProducerKey) -> None:
    signed = hr_event(ACME)
    tampered = events_pb2.Event.FromString(signed)
    tampered.hr_event.hr_person_id = "h-2"
    reason = rejection(
        HrProducers(str(keys_file)), tampered.SerializeToString(), acme.headers(signed)
    )
    assert reason == f"bad signature for key id {acme.key_id!r}"


def test_a_signature_by_another_private_key_under_the_key_id_is_a_bad_signature(
    keys_file: Path, acme: ProducerKey
) -> None:
    value = hr_event(ACME)
    impostor = ProducerKey.generate(acme.key_id)
    reason = rejection(HrProducers(str(keys_file)), value, impostor.headers(value))
    assert reason == f"bad signature for key id {acme.key_id!r}"


def test_one_organisations_key_never_vouches_for_another(
    keys_file: Path, acme: ProducerKey, globex: ProducerKey
) -> None:
    about_acme = hr_event(ACME)
    reason = rejection(HrProducers(str(keys_file)), about_acme, globex.headers(about_acme))
    assert reason == (
        f"signed by organisation 'globex' (key id {globex.key_id!r}) but the envelope says 'acme'"
    )


def test_an_unknown_key_id_is_refused(keys_file: Path, acme: ProducerKey) -> None:
    value = hr_event(ACME)
    stranger = ProducerKey.generate("not-registered")
    reason = rejection(HrProducers(str(keys_file)), value, stranger.headers(value))
    assert reason == "unknown key id 'not-registered'"


@pytest.mark.parametrize(
    "kept", [(), (KEY_ID_HEADER,), (SIGNATURE_HEADER,)], ids=["none", "key id", "signature"]
)
def test_missing_headers_are_unsigned(
    keys_file: Path, acme: ProducerKey, kept: tuple[str, ...]
) -> None:
    value = hr_event(ACME)
    headers = [(name, v) for name, v in acme.headers(value) if name in kept]
    reason = rejection(HrProducers(str(keys_file)), value, headers)
    assert reason.startswith("unsigned: an hr-event needs the mentoring-key-id and")


def test_without_a_keys_file_no_hr_event_is_trusted(acme: ProducerKey) -> None:
    value = hr_event(ACME)
    reason = rejection(HrProducers(""), value, acme.headers(value))
    assert reason == (
        f"unknown key id {acme.key_id!r} (HR_PRODUCER_KEYS_FILE is not set: no key is trusted)"
    )


def test_other_topics_need_no_signature() -> None:
    event = new_event(
        producer="matching",
        organization_id=ACME,
        program_id="p1",
        payload=events_pb2.MatchProposed(match_id="m1", mentor_id="a", mentee_id="b"),
    )
    decoded = HrProducers("").decode("match-proposed", event.SerializeToString(), [])
    assert decoded.match_proposed.match_id == "m1"


def test_an_undecodable_hr_event_says_so_before_its_signature() -> None:
    with pytest.raises(EventDecodeError, match="not a protobuf") as refused:
        HrProducers("").decode(HR_EVENTS_TOPIC, b"\xff\xfe", [])
    assert not isinstance(refused.value, UntrustedHrEvent)


def test_keys_are_read_again_when_the_file_changes(keys_file: Path, acme: ProducerKey) -> None:
    producers = HrProducers(str(keys_file))
    value = hr_event(ACME)
    assert producers.verify(value, acme.headers(value), ACME) == ACME
    successor = ProducerKey.generate()
    register(keys_file, ACME, successor)
    assert producers.verify(value, successor.headers(value), ACME) == ACME
    write_keys(keys_file, {ACME: {successor.key_id: successor.public_key_text()}})
    assert rejection(producers, value, acme.headers(value)).startswith("unknown key id")


def test_a_broken_keys_file_trusts_nobody_and_says_why(keys_file: Path, acme: ProducerKey) -> None:
    producers = HrProducers(str(keys_file))
    keys_file.write_text("{not json")
    value = hr_event(ACME)
    assert rejection(producers, value, acme.headers(value)).startswith(
        f"HR_PRODUCER_KEYS_FILE {keys_file}: not JSON"
    )
    missing = HrProducers(str(keys_file.with_name("absent.json")))
    assert "No such file" in rejection(missing, value, acme.headers(value))


def test_a_key_id_speaks_for_one_organisation_only(keys_file: Path) -> None:
    key = ProducerKey.generate("shared").public_key_text()
    keys_file.write_text(json.dumps({ACME: {"shared": key}, GLOBEX: {"shared": key}}))
    with pytest.raises(ValueError, match="'shared' is listed for 'acme' and 'globex'"):
        load_keys(keys_file)


@pytest.mark.parametrize(
    "text", ["c2hvcnQ=", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 7]
)
def test_a_public_key_that_is_not_ed25519_is_refused(keys_file: Path, text: object) -> None:
    keys_file.write_text(json.dumps({ACME: {"k1": text}}))
    with pytest.raises(ValueError, match="key id 'k1'"):
        load_keys(keys_file)


def test_pem_public_keys_and_padded_base64_signatures_are_accepted(keys_file: Path) -> None:
    producer = ProducerKey.generate("k-pem")
    pem = producer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keys_file.write_text(json.dumps({ACME: {"k-pem": pem.decode()}}))
    value = hr_event(ACME)
    padded = base64.urlsafe_b64encode(producer.private_key.sign(value))
    headers = [(KEY_ID_HEADER, b"k-pem"), (SIGNATURE_HEADER, padded)]
    assert HrProducers(str(keys_file)).verify(value, headers, ACME) == ACME
    assert sign(value, "k-pem", producer.private_key) == producer.headers(value)
