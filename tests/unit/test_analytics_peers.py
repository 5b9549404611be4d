"""Requests forwarded between analytics workers (services/common/peers.py), over real in-process
gRPC servers: the real AnalyticsServicer forwarding for a program another worker holds, the
real interceptor chain on the owner, and stand-ins for the owner that record what reaches them
or answer without knowing the secret."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

import grpc
import jwt
import pytest
from grpc import aio

from mentoring.tokens import mint
from services.analytics.servicer import AnalyticsServicer
from services.common import auth
from services.common.access import Principal
from services.common.api import analytics_pb2, analytics_pb2_grpc
from services.common.config import AuthSettings, Settings
from services.common.errors import Unauthenticated, Unavailable
from services.common.grpc_server import GrpcServer, ServiceBinding
from services.common.peers import FORWARDED, PROOF, SECRET_ENV, Peers
from tests.unit.test_grpc_bootstrap import free_port

SECRET = "peer-secret-" + "s" * 32
AUTH = AuthSettings(jwt_secret="k" * 32, issuer="tests", audience="mentoring")
ORG = "acme"
KPIS = "/mentoring.v1.AnalyticsService/GetProgramKpis"
COORDINATOR = Principal(ORG, "coord-1", frozenset({"coordinator"}), frozenset({"coord-1"}))
REQUEST = analytics_pb2.GetProgramKpisRequest(organization_id=ORG, program_id="p")


def url_of(port: int) -> str:
    return f"grpc://127.0.0.1:{port}"


def bearer(*roles: str, org: str = ORG, sub: str = "coord-1") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {mint(AUTH, organization=org, subject=sub, roles=roles)}"),)


async def rpc_error(call: Any) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    return caught.value


# --- the token and the proof ---------------------------------------------------------------


def test_forwarded_metadata_names_the_caller_and_holds_no_credentials_of_theirs() -> None:
    peers = Peers(SECRET, url_of(1))
    metadata, jti = peers.forward_metadata(url_of(2), KPIS, COORDINATOR)
    assert [key for key, _ in metadata] == [FORWARDED]
    claims = jwt.decode(metadata[0][1], SECRET, algorithms=["HS256"], audience=url_of(2))
    assert claims["iss"] == "analytics-peer"
    assert claims["jti"] == jti
    assert claims["rpc"] == KPIS
    assert claims["exp"] - claims["iat"] == 30
    assert claims["caller"]["organization_id"] == ORG
    assert claims["caller"]["subject"] == "coord-1"
    assert claims["caller"]["roles"] == ["coordinator"]
    # The owner at that URL reads back exactly the caller, once.
    owner = Peers(SECRET, url_of(2))
    assert owner.accept(metadata[0][1], KPIS) == (jti, COORDINATOR)
    with pytest.raises(Unauthenticated, match="used already"):
        owner.accept(metadata[0][1], KPIS)


def test_the_caller_arrives_whole() -> None:
    """Every field of the Principal travels, whatever fields it grows."""
    values: dict[str, Any] = {}
    for item in fields(Principal):
        values[item.name] = (
            frozenset({f"{item.name}-1", f"{item.name}-2"})
            if item.type == "frozenset[str]"
            else f"{item.name}-value"
        )
    caller = Principal(**values)
    metadata, _ = Peers(SECRET, url_of(1)).forward_metadata(url_of(2), KPIS, caller)
    assert Peers(SECRET, url_of(2)).accept(metadata[0][1], KPIS)[1] == caller


@pytest.mark.parametrize(
    "caller",
    [
        {"organization_id": ORG},  # no subject
        {"organization_id": ORG, "subject": "s", "roles": "coordinator"},
        {"organization_id": "", "subject": "s"},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_caller_is_refused(caller: Any) -> None:
    claims = {"iss": "analytics-peer", "aud": url_of(2), "jti": "j", "rpc": KPIS}
    now = int(time.time())
    token = jwt.encode({**claims, "iat": now, "exp": now + 30, "caller": caller}, SECRET)
    with pytest.raises(Unauthenticated, match="caller is malformed"):
        Peers(SECRET, url_of(2)).accept(token, KPIS)


@pytest.mark.parametrize(
    ("mint_with", "owner", "rpc", "now", "reason"),
    [
        ("x" * 40, url_of(2), KPIS, None, "Signature verification failed"),
        (SECRET, url_of(3), KPIS, None, "Audience doesn't match"),
        (SECRET, url_of(2), "/mentoring.v1.AnalyticsService/GetRetention", None, "is for"),
        (SECRET, url_of(2), KPIS, time.time() - 60, "expired"),
    ],
)
def test_a_peer_token_is_good_for_one_worker_one_rpc_and_half_a_minute(
    mint_with: str, owner: str, rpc: str, now: float | None, reason: str
) -> None:
    metadata, _ = Peers(mint_with, url_of(1)).forward_metadata(url_of(2), KPIS, COORDINATOR, now)
    with pytest.raises(Unauthenticated, match=reason):
        Peers(SECRET, owner).accept(metadata[0][1], rpc)


def test_without_the_secret_a_worker_neither_forwards_nor_accepts() -> None:
    peers = Peers("", url_of(1))
    with pytest.raises(Unavailable, match=SECRET_ENV):
        peers.forward_metadata(url_of(2), KPIS, COORDINATOR)
    metadata, _ = Peers(SECRET, url_of(2)).forward_metadata(url_of(1), KPIS, COORDINATOR)
    with pytest.raises(Unauthenticated, match=SECRET_ENV):
        peers.accept(metadata[0][1], KPIS)
    with pytest.raises(SystemExit, match="at least 32"):
        Peers("short", url_of(1))


def test_a_reply_counts_only_with_the_owners_proof_over_it() -> None:
    peers = Peers(SECRET, url_of(1))
    owner = url_of(2)
    reply = analytics_pb2.ProgramKpis(organization_id=ORG, sessions=3).SerializeToString()
    proof = Peers(SECRET, owner).proof("jti-1", reply)
    assert peers.verified_reply(owner, "jti-1", reply, [(PROOF, proof)]) == reply
    forged = Peers("y" * 40, owner).proof("jti-1", reply)
    tampered = analytics_pb2.ProgramKpis(organization_id=ORG, sessions=4).SerializeToString()
    for jti, data, trailing in [
        ("jti-1", reply, []),  # no proof
        ("jti-1", reply, [(PROOF, forged)]),  # another secret
        ("jti-2", reply, [(PROOF, proof)]),  # the proof of another request
        ("jti-1", tampered, [(PROOF, proof)]),  # another reply
        ("jti-1", reply, [(PROOF, proof), (PROOF, proof)]),
    ]:
        with pytest.raises(Unavailable) as caught:
            peers.verified_reply(owner, jti, data, trailing)
        assert str(caught.value) == f"analytics peer at {owner} could not be verified"


# --- over gRPC -----------------------------------------------------------------------------


class Elsewhere:
    """An AnalyticsApp whose every key is held by the worker at `owner`."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def holds(self, key: str) -> bool:
        return False

    def owner_of(self, key: str) -> str:
        return self.owner


class WhoAmI(analytics_pb2_grpc.AnalyticsServiceServicer):
    """An owner that answers with the caller the interceptor handed it."""

    async def GetProgramKpis(self, request: Any, context: Any) -> analytics_pb2.ProgramKpis:
        principal = auth.current()
        who = "nobody" if principal is None else f"{principal.subject} {sorted(principal.roles)}"
        return analytics_pb2.ProgramKpis(organization_id=request.organization_id, cohort_id=who)


@dataclass
class Recorder(analytics_pb2_grpc.AnalyticsServiceServicer):
    """A plain gRPC server (no platform interceptors) posing as the owner: it records the
    metadata it receives and answers, with a proof made with `secret` ('' for none)."""

    secret: str
    url: str = ""
    received: list[dict[str, str]] = field(default_factory=list)

    async def GetProgramKpis(self, request: Any, context: Any) -> analytics_pb2.ProgramKpis:
        metadata = {k: v for k, v in context.invocation_metadata()}
        self.received.append(metadata)
        reply = analytics_pb2.ProgramKpis(organization_id=ORG, sessions=42)
        if self.secret:
            claims = jwt.decode(
                metadata[FORWARDED], self.secret, algorithms=["HS256"], audience=self.url
            )
            proof = Peers(self.secret, self.url).proof(claims["jti"], reply.SerializeToString())
        else:
            proof = "0" * 64
        context.set_trailing_metadata(((PROOF, proof),))
        return reply


def settings(auth_settings: AuthSettings, port: int) -> Settings:
    return replace(
        Settings.from_env("analytics", {}),
        grpc_port=port,
        shutdown_grace_seconds=0.2,
        auth=auth_settings,
    )


async def serve(servicer: Any, auth_settings: AuthSettings, peers: Peers | None) -> GrpcServer:
    port = int(peers.url.rsplit(":", 1)[1]) if peers else free_port()
    binding = ServiceBinding.of(
        analytics_pb2.DESCRIPTOR,
        servicer,
        analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
    )
    running = GrpcServer(settings(auth_settings, port), [binding], peers)
    await running.start()
    return running


@pytest.fixture
async def recorders() -> AsyncIterator[tuple[Recorder, Recorder]]:
    """A recording owner that knows the secret, and an impostor that does not."""
    started = []
    made = []
    for secret in (SECRET, ""):
        port = free_port()
        recorder = Recorder(secret, url_of(port))
        server = aio.server()
        analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(recorder, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        started.append(server)
        made.append(recorder)
    try:
        yield made[0], made[1]
    finally:
        for server in started:
            await server.stop(0)


@pytest.fixture
def no_current() -> Iterator[None]:
    yield
    assert auth.current() is None


async def forwarder(owner: str, secret: str = SECRET, auth_settings: AuthSettings = AUTH) -> Any:
    peers = Peers(secret, url_of(free_port()))
    servicer = AnalyticsServicer(Elsewhere(owner), peers)  # type: ignore[arg-type]
    return await serve(servicer, auth_settings, peers)


async def test_the_forwarded_request_carries_a_peer_token_never_the_bearer_token(
    recorders: tuple[Recorder, Recorder], no_current: None
) -> None:
    genuine, _ = recorders
    server = await forwarder(genuine.url)
    try:
        async with aio.insecure_channel(server.address) as ch:
            stub = analytics_pb2_grpc.AnalyticsServiceStub(ch)
            reply = await stub.GetProgramKpis(REQUEST, metadata=bearer("coordinator"))
    finally:
        await server.stop()
    assert reply.sessions == 42
    (received,) = genuine.received
    assert "authorization" not in received
    assert not any("Bearer" in value for value in received.values())
    claims = jwt.decode(received[FORWARDED], SECRET, algorithms=["HS256"], audience=genuine.url)
    assert claims["caller"]["organization_id"] == ORG
    assert claims["caller"]["subject"] == "coord-1"


async def test_a_reply_without_a_valid_proof_is_refused(
    recorders: tuple[Recorder, Recorder],
) -> None:
    _, impostor = recorders
    server = await forwarder(impostor.url)
    try:
        async with aio.insecure_channel(server.address) as ch:
            stub = analytics_pb2_grpc.AnalyticsServiceStub(ch)
            err = await rpc_error(stub.GetProgramKpis(REQUEST, metadata=bearer("coordinator")))
    finally:
        await server.stop()
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert err.details() == f"analytics peer at {impostor.url} could not be verified"
    (received,) = impostor.received
    assert "authorization" not in received


async def test_without_the_secret_nothing_is_forwarded(
    recorders: tuple[Recorder, Recorder],
) -> None:
    genuine, _ = recorders
    # Authentication off, as in development: forwarding still needs the secret.
    server = await forwarder(genuine.url, secret="", auth_settings=AuthSettings())
    try:
        async with aio.insecure_channel(server.address) as ch:
            stub = analytics_pb2_grpc.AnalyticsServiceStub(ch)
            err = await rpc_error(stub.GetProgramKpis(REQUEST))
    finally:
        await server.stop()
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert SECRET_ENV in err.details()
    assert genuine.received == []


async def test_genuine_peers_forward_the_callers_identity_under_the_access_policy(
    no_current: None,
) -> None:
    owner_url = url_of(free_port())
    owner = await serve(WhoAmI(), AUTH, Peers(SECRET, owner_url))
    server = await forwarder(owner_url)
    try:
        async with aio.insecure_channel(server.address) as ch:
            stub = analytics_pb2_grpc.AnalyticsServiceStub(ch)
            reply = await stub.GetProgramKpis(REQUEST, metadata=bearer("coordinator"))
            assert reply.cohort_id == "coord-1 ['coordinator']"
            # Refused where the caller is, before anything is forwarded.
            err = await rpc_error(
                stub.GetProgramKpis(REQUEST, metadata=bearer("coordinator", org="globex"))
            )
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.stop()
        await owner.stop()


@pytest.fixture(params=[AUTH, AuthSettings()], ids=["auth on", "auth off"])
async def owner(request: pytest.FixtureRequest) -> AsyncIterator[tuple[GrpcServer, Peers]]:
    peers = Peers(SECRET, url_of(free_port()))
    running = await serve(WhoAmI(), request.param, peers)
    try:
        yield running, peers
    finally:
        await running.stop()


async def test_the_owner_refuses_a_forwarded_request_without_a_valid_peer_token(
    owner: tuple[GrpcServer, Peers],
) -> None:
    server, peers = owner
    other_secret, _ = Peers("z" * 40, url_of(1)).forward_metadata(peers.url, KPIS, COORDINATOR)
    other_worker, _ = Peers(SECRET, url_of(1)).forward_metadata(url_of(9), KPIS, COORDINATOR)
    async with aio.insecure_channel(server.address) as ch:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(ch)
        for forged in ("1", other_secret[0][1], other_worker[0][1], ""):
            # A valid bearer token alongside does not help: the request claims to be forwarded.
            metadata = ((FORWARDED, forged), *bearer("coordinator"))
            err = await rpc_error(stub.GetProgramKpis(REQUEST, metadata=metadata))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED, forged
            assert err.details().startswith("forwarded request: invalid peer token")


async def test_the_owner_answers_a_genuine_peer_with_a_proof_under_the_callers_policy(
    owner: tuple[GrpcServer, Peers], no_current: None
) -> None:
    server, peers = owner
    forwarding = Peers(SECRET, url_of(1))
    participant = Principal(ORG, "p-1", frozenset({"participant"}), frozenset({"p-1"}))
    async with aio.insecure_channel(server.address) as ch:
        raw = ch.unary_unary(KPIS, request_serializer=lambda m: m.SerializeToString())
        metadata, jti = forwarding.forward_metadata(peers.url, KPIS, COORDINATOR)
        call = raw(REQUEST, metadata=metadata)
        data = await call
        checked = forwarding.verified_reply(peers.url, jti, data, await call.trailing_metadata())
        reply = analytics_pb2.ProgramKpis.FromString(checked)
        assert reply.cohort_id == "coord-1 ['coordinator']"
        # The policy applies to the carried caller, with authentication on or off.
        for caller, code in [
            (participant, grpc.StatusCode.PERMISSION_DENIED),
            (replace(COORDINATOR, organization_id="globex"), grpc.StatusCode.PERMISSION_DENIED),
        ]:
            metadata, _ = forwarding.forward_metadata(peers.url, KPIS, caller)
            err = await rpc_error(raw(REQUEST, metadata=metadata))
            assert err.code() == code


async def test_with_authentication_on_a_forwarded_request_must_name_its_caller() -> None:
    peers = Peers(SECRET, url_of(free_port()))
    server = await serve(WhoAmI(), AUTH, peers)
    try:
        async with aio.insecure_channel(server.address) as ch:
            stub = analytics_pb2_grpc.AnalyticsServiceStub(ch)
            metadata, _ = Peers(SECRET, url_of(1)).forward_metadata(peers.url, KPIS, None)
            err = await rpc_error(stub.GetProgramKpis(REQUEST, metadata=metadata))
    finally:
        await server.stop()
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "names no caller" in err.details()
