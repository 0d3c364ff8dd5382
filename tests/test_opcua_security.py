"""Security profiles of the OPC UA server, checked with a real asyncua server and real asyncua clients.

Every test serves the quickstart line live on a free loopback port with its state (certificates, users) in
``tmp_path``. Client application certificates are generated per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import shutil
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from opcua_server import users as users_mod
from opcua_server.security import Pki, SecurityConfig, application_uri, apply_security
from opcua_server.server import LineServer
from opcua_server.users import add_user, load_users, remove_user, verify
from simline import load_scenario
from simline.live.driver import LiveDriver
from simline.sim import Line

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
NS = "urn:simline:line"
SIGN_AND_ENCRYPT = ua.MessageSecurityMode.SignAndEncrypt
OPERATOR_PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "viewer password 42"


# --- helpers ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(profile: str, state_dir: Path, users_file: Path | None = None) -> AsyncIterator[LineServer]:
    """The quickstart line, live, served over OPC UA on 127.0.0.1 with a security profile."""
    line = Line(load_scenario(QUICKSTART), live=True)
    driver = LiveDriver(line, speed=60)  # an order takes many wall seconds to finish
    config = SecurityConfig(profile=profile, state_dir=state_dir, users_file=users_file)  # type: ignore[arg-type]
    for attempt in range(3):  # the free port may be taken between the probe and the bind
        server = LineServer(driver, f"opc.tcp://127.0.0.1:{free_port()}/simline", config, publish_interval=0.1)
        try:
            await server.start()
            break
        except OSError:
            with contextlib.suppress(Exception):
                await server.server.stop()
            if attempt == 2:
                raise
    run = asyncio.create_task(driver.run())
    try:
        yield server
    finally:
        driver.stop()
        await run
        await server.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


def client_certificate(folder: Path, name: str = "tester") -> tuple[Path, Path, str]:
    """A self-signed client application certificate: (certificate DER, key PEM, application URI)."""
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"urn:simline:test-client:{name}"
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        name,
        {},
        [x509.UniformResourceIdentifier(uri), x509.DNSName(socket.gethostname())],
        extended=[ExtendedKeyUsageOID.CLIENT_AUTH],
        days=30,
    )
    cert_path, key_path = folder / f"{name}_cert.der", folder / f"{name}_key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return cert_path, key_path, uri


async def make_client(
    url: str,
    cert: tuple[Path, Path, str] | None = None,
    user: str | None = None,
    password: str | None = None,
    mode: ua.MessageSecurityMode = SIGN_AND_ENCRYPT,
) -> Client:
    client = Client(url, timeout=5)
    if cert is not None:
        cert_path, key_path, uri = cert
        client.application_uri = uri
        await client.set_security(SecurityPolicyBasic256Sha256, str(cert_path), str(key_path), mode=mode)
    if user is not None:
        client.set_user(user)
        client.set_password(password or "")
    return client


@contextlib.asynccontextmanager
async def connected(url: str, **kwargs: Any) -> AsyncIterator[Client]:
    client = await make_client(url, **kwargs)
    await client.connect()
    try:
        yield client
    finally:
        await client.disconnect()


async def refused(url: str, **kwargs: Any) -> int:
    """Connect and expect the server to refuse; returns the status code."""
    client = await make_client(url, **kwargs)
    try:
        await client.connect()
    except ua.UaStatusCodeError as exc:
        return int(exc.code)
    else:
        await client.disconnect()
        raise AssertionError("the server accepted the connection")
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()


async def place_order(client: Client) -> str:
    idx = await client.get_namespace_index(NS)
    line = client.get_node(ua.NodeId("Line", idx))
    return await line.call_method(
        ua.NodeId("Line.PlaceOrder", idx),
        "plate",
        '{"size": "large", "engraving": "yes"}',
        ua.Variant(1, ua.VariantType.UInt32),
    )


async def denied(action: Any) -> None:
    with pytest.raises(ua.UaStatusCodeError) as err:
        await action
    assert err.value.code == ua.StatusCodes.BadUserAccessDenied


def make_users(path: Path) -> Path:
    add_user(path, "alice", OPERATOR_PASSWORD, "operator")
    add_user(path, "bob", VIEWER_PASSWORD, "viewer")
    return path


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheaper scrypt for tests that log in many times (each hash records its own parameters)."""
    monkeypatch.setattr(users_mod, "SCRYPT_N", 2**10)
    monkeypatch.setattr(users_mod, "SCRYPT_P", 1)
    monkeypatch.setattr(users_mod, "_DUMMY", None)


def der_files(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.glob("*.der"))]


# --- open ---------------------------------------------------------------------------------------------------
def test_open_profile_anonymous_may_call_and_write(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with serve("open", tmp_path / "state") as server:
            url = server.endpoint
            async with connected(url) as client:
                endpoints = await client.get_endpoints()
                assert {e.SecurityPolicyUri.rsplit("#", 1)[1] for e in endpoints} == {"None"}
                assert {t.TokenType for e in endpoints for t in e.UserIdentityTokens} == {ua.UserTokenType.Anonymous}
                assert (await place_order(client)).startswith("O")
                idx = await client.get_namespace_index(NS)
                await client.get_node(ua.NodeId("Machines.cut.Setpoints.SpeedOverride", idx)).write_value(1.5)
            assert server.line.by_id["cut"].speed == 1.5

    run(main())
    assert "profile 'open'" in caplog.text
    assert not (tmp_path / "state" / "pki").exists()  # no certificates in the open profile


# --- default ------------------------------------------------------------------------------------------------
def test_default_profile_refuses_security_policy_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with serve("default", tmp_path / "state") as server:
            url = server.endpoint
            probe = Client(url, timeout=5)
            endpoints = await probe.connect_and_get_server_endpoints()
            assert {(e.SecurityPolicyUri.rsplit("#", 1)[1], e.SecurityMode) for e in endpoints} == {
                ("Basic256Sha256", ua.MessageSecurityMode.Sign),
                ("Basic256Sha256", ua.MessageSecurityMode.SignAndEncrypt),
            }
            kinds = {t.TokenType for e in endpoints for t in e.UserIdentityTokens}
            assert kinds == {ua.UserTokenType.Anonymous, ua.UserTokenType.UserName, ua.UserTokenType.Certificate}
            # an ordinary client finds no None endpoint
            with pytest.raises(ua.UaError):
                async with connected(url):
                    pass
            # a client that ignores the endpoints is refused by the server
            monkeypatch.setattr(Client, "find_endpoint", staticmethod(lambda eps, mode, uri: eps[0]))
            assert await refused(url) == ua.StatusCodes.BadSecurityPolicyRejected
            # nor may anyone register servers (asyncua serves RegisterServer without a session)
            await probe.connect_sessionless()
            try:
                fake = ua.RegisteredServer(
                    ServerUri="urn:elsewhere", ServerNames=[ua.LocalizedText("elsewhere")], IsOnline=True
                )
                with pytest.raises(ua.UaStatusCodeError) as err:
                    await probe.uaclient.register_server(fake)
                assert err.value.code == ua.StatusCodes.BadServiceUnsupported
                assert [s.ApplicationUri for s in await probe.find_servers()] == [server.server.get_application_uri()]
            finally:
                await probe.disconnect_sessionless()

    run(main())


def test_default_profile_anonymous_is_read_only_and_certificates_are_trusted_on_first_use(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cert = client_certificate(tmp_path / "client")

    async def main() -> None:
        async with serve("default", state) as server:
            async with connected(server.endpoint, cert=cert) as client:
                idx = await client.get_namespace_index(NS)
                names = [(await n.read_browse_name()).Name for n in await client.nodes.objects.get_children()]
                assert "Machines" in names and "Line" in names
                minutes = client.get_node(ua.NodeId("Line.Clock.SimulatedMinutes", idx))
                assert await minutes.read_value() >= 0.0
                changes: list[Any] = []

                class Handler:
                    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
                        changes.append(value)

                sub = await client.create_subscription(50, Handler())
                await sub.subscribe_data_change(minutes)
                for _ in range(100):
                    if changes:
                        break
                    await asyncio.sleep(0.02)
                assert changes
                await sub.delete()
                speed = client.get_node(ua.NodeId("Machines.cut.Setpoints.SpeedOverride", idx))
                await denied(speed.write_value(2.0))
                await denied(place_order(client))
                cut = client.get_node(ua.NodeId("Machines.cut", idx))
                await denied(cut.call_method(ua.NodeId("Machines.cut.InjectFault", idx), 30.0))
            assert server.line.by_id["cut"].speed == 1.0

    run(main())
    accepted = der_files(state / "pki" / "accepted")
    assert accepted == [cert[0].read_bytes()]


def test_default_profile_users_from_the_users_file(tmp_path: Path, cheap_hashes: None) -> None:
    state = tmp_path / "state"
    users_file = make_users(tmp_path / "users.json")
    cert = client_certificate(tmp_path / "client")

    async def main() -> None:
        async with serve("default", state, users_file) as server:
            url = server.endpoint
            async with connected(url, cert=cert, user="alice", password=OPERATOR_PASSWORD) as client:
                order_id = await place_order(client)
                assert order_id in server.line.orders
                idx = await client.get_namespace_index(NS)
                await client.get_node(ua.NodeId("Machines.cut.Setpoints.SpeedOverride", idx)).write_value(2.0)
            assert server.line.by_id["cut"].speed == 2.0
            async with connected(url, cert=cert, user="bob", password=VIEWER_PASSWORD) as client:
                idx = await client.get_namespace_index(NS)
                # a viewer reads: the order alice placed (it may already be done, so not OpenOrders)
                assert await client.get_node(ua.NodeId("Line.Orders.LastOrderId", idx)).read_value() == order_id
                await denied(place_order(client))
            wrong = await refused(url, cert=cert, user="alice", password="not the password")
            assert wrong == ua.StatusCodes.BadUserAccessDenied
            assert await refused(url, cert=cert, user="mallory", password=OPERATOR_PASSWORD) == wrong
            # asyncua's built-in remote admin is off: 'admin' is just an unknown user
            assert await refused(url, cert=cert, user="admin", password="admin") == wrong
            # the Sign-only endpoint works too (the password is then encrypted with the server's key)
            async with connected(
                url, cert=cert, user="alice", password=OPERATOR_PASSWORD, mode=ua.MessageSecurityMode.Sign
            ) as client:
                assert await place_order(client) in server.line.orders

    run(main())
    assert len(der_files(state / "pki" / "accepted")) == 1  # recorded once


# --- secure -------------------------------------------------------------------------------------------------
def test_secure_profile_trusts_only_trusted_client_certificates(tmp_path: Path, cheap_hashes: None) -> None:
    state = tmp_path / "state"
    users_file = make_users(tmp_path / "users.json")
    cert = client_certificate(tmp_path / "client")
    pki = state / "pki"

    async def main() -> None:
        async with serve("secure", state, users_file) as server:
            url = server.endpoint
            probe = Client(url, timeout=5)
            endpoints = await probe.connect_and_get_server_endpoints()
            kinds = {t.TokenType for e in endpoints for t in e.UserIdentityTokens}
            assert kinds == {ua.UserTokenType.UserName, ua.UserTokenType.Certificate}
            assert {e.SecurityMode for e in endpoints} == {
                ua.MessageSecurityMode.Sign,
                ua.MessageSecurityMode.SignAndEncrypt,
            }
            code = await refused(url, cert=cert, user="alice", password=OPERATOR_PASSWORD)
            assert code == ua.StatusCodes.BadSecurityChecksFailed
            rejected = sorted((pki / "rejected").glob("*.der"))
            assert [p.read_bytes() for p in rejected] == [cert[0].read_bytes()]
            assert der_files(pki / "accepted") == []
            shutil.move(rejected[0], pki / "trusted" / rejected[0].name)  # what an admin does; no restart
            # anonymous is refused, even with a trusted certificate
            assert await refused(url, cert=cert) == ua.StatusCodes.BadIdentityTokenRejected
            async with connected(url, cert=cert, user="alice", password=OPERATOR_PASSWORD) as client:
                assert await place_order(client) in server.line.orders
            async with connected(url, cert=cert, user="bob", password=VIEWER_PASSWORD) as client:
                await denied(place_order(client))
            # X509 user certificates: those in pki/users log in as operators, others are refused
            for name in ("operator-cert", "stranger-cert"):
                user_cert, user_key, _ = client_certificate(tmp_path / "users", name)
                client = await make_client(url, cert=cert)
                await client.load_client_certificate(str(user_cert))
                await client.load_private_key(user_key)
                if name == "operator-cert":
                    shutil.copy(user_cert, pki / "users" / user_cert.name)
                    await client.connect()
                    try:
                        assert await place_order(client) in server.line.orders
                    finally:
                        await client.disconnect()
                else:
                    with pytest.raises(ua.UaStatusCodeError) as err:
                        await client.connect()
                    assert err.value.code == ua.StatusCodes.BadUserAccessDenied
                    with contextlib.suppress(Exception):
                        await client.disconnect()

    run(main())


def test_pki_checks_of_client_certificates(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    cert_path, _, uri = client_certificate(tmp_path / "client")
    der = cert_path.read_bytes()
    described = ua.ApplicationDescription(ApplicationUri=uri)
    impostor = ua.ApplicationDescription(ApplicationUri="urn:someone:else")

    def code(profile: str, der: bytes, description: ua.ApplicationDescription) -> int | None:
        try:
            pki.check_client(profile, der, description)  # type: ignore[arg-type]
        except ServiceError as exc:
            return int(exc.code)
        return None

    assert code("secure", der, described) == ua.StatusCodes.BadSecurityChecksFailed
    assert code("secure", der, described) == ua.StatusCodes.BadSecurityChecksFailed
    assert der_files(pki.rejected) == [der]  # recorded once
    assert code("default", der, impostor) is None  # trusted on first use; the URI mismatch only warns
    assert der_files(pki.accepted) == [der]
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    (pki.trusted / "tester.pem").write_bytes(pem)  # PEM works too
    assert code("secure", der, described) is None
    assert code("secure", der, impostor) == ua.StatusCodes.BadCertificateUriInvalid
    key = cert_gen.generate_private_key()
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    expired = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=400))
        .not_valid_after(now - datetime.timedelta(days=35))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    (pki.trusted / "old.der").write_bytes(expired)
    assert code("default", expired, described) == ua.StatusCodes.BadCertificateTimeInvalid
    assert code("secure", expired, described) == ua.StatusCodes.BadCertificateTimeInvalid
    assert code("default", b"not a certificate", described) == ua.StatusCodes.BadCertificateInvalid


# --- the server certificate ---------------------------------------------------------------------------------
def test_server_certificate_matches_the_application_uri_and_is_reused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    own = state / "pki" / "own"

    async def start_and_read() -> tuple[bytes, str, bytes]:
        async with serve("default", state) as server:
            probe = Client(server.endpoint, timeout=5)
            endpoints = await probe.connect_and_get_server_endpoints()
            return (
                endpoints[0].ServerCertificate,
                server.server.get_application_uri(),
                endpoints[0].Server.ApplicationUri,
            )

    first, uri, advertised = run(start_and_read())
    assert uri == advertised == application_uri() == f"urn:simline:server:{socket.gethostname()}"
    on_disk = (own / "server_cert.der").read_bytes()
    assert first == on_disk
    cert = x509.load_der_x509_certificate(on_disk)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [uri]
    assert {socket.gethostname(), "localhost"} <= set(san.get_values_for_type(x509.DNSName))
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.subject == cert.issuer
    assert stat.S_IMODE((own / "server_key.pem").stat().st_mode) == 0o600
    fingerprint = cert.fingerprint(hashes.SHA256())

    async def restart() -> x509.Certificate:  # the security setup of a second start, without serving
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{free_port()}/simline")
        await apply_security(server, SecurityConfig(profile="secure", state_dir=state))
        assert server.get_application_uri() == uri
        return server.iserver.certificate

    assert run(restart()).fingerprint(hashes.SHA256()) == fingerprint
    assert sorted(p.name for p in own.iterdir()) == ["server_cert.der", "server_key.pem"]


# --- the users file -----------------------------------------------------------------------------------------
def test_users_file_stores_hashes_only_and_validates(tmp_path: Path) -> None:
    path = make_users(tmp_path / "users.json")
    text = path.read_text()
    assert OPERATOR_PASSWORD not in text and VIEWER_PASSWORD not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(text)
    alice = next(u for u in data["users"] if u["name"] == "alice")
    assert alice["role"] == "operator"
    assert alice["password"]["algorithm"] == "scrypt" and {"n", "r", "p", "salt", "hash"} <= set(alice["password"])
    assert (alice["password"]["n"], alice["password"]["r"], alice["password"]["p"]) == (2**14, 8, 5)
    bob = next(u for u in data["users"] if u["name"] == "bob")
    assert bob["password"]["salt"] != alice["password"]["salt"]

    users = load_users(path)
    assert verify(users, "alice", OPERATOR_PASSWORD) == "operator"
    assert verify(users, "bob", VIEWER_PASSWORD) == "viewer"
    assert verify(users, "alice", VIEWER_PASSWORD) is None
    assert verify(users, "carol", OPERATOR_PASSWORD) is None
    assert verify(users, None, None) is None
    assert load_users(tmp_path / "missing.json") == {} == load_users(None)  # no default users, no passwords

    with pytest.raises(ValueError, match="too short"):
        add_user(path, "carol", "short", "viewer")
    with pytest.raises(ValueError, match="invalid user name"):
        add_user(path, "no spaces please", OPERATOR_PASSWORD, "viewer")
    with pytest.raises(ValueError, match="invalid role"):
        add_user(path, "carol", OPERATOR_PASSWORD, "admin")
    with pytest.raises(ValueError, match="already exists"):
        add_user(path, "alice", OPERATOR_PASSWORD, "viewer")
    add_user(path, "alice", "a new password!", "viewer", replace=True)
    assert verify(load_users(path), "alice", "a new password!") == "viewer"
    remove_user(path, "bob")
    assert set(load_users(path)) == {"alice"}
    with pytest.raises(ValueError, match="no user 'bob'"):
        remove_user(path, "bob")

    data["users"][0]["password"] = "plaintext!!"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="plaintext password is not allowed"):
        load_users(path)


def test_user_manager_roles_and_throttle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cheap_hashes: None) -> None:
    from asyncua.crypto.permission_rules import UserRole

    path = make_users(tmp_path / "users.json")
    manager = users_mod.SimlineUserManager(path, allow_anonymous=False)
    alice = manager.get_user(None, "alice", OPERATOR_PASSWORD)
    bob = manager.get_user(None, "bob", VIEWER_PASSWORD)
    assert alice is not None and alice.role is UserRole.User and alice.name == "alice"
    assert bob is not None and bob.role is UserRole.Anonymous and bob.name == "bob"
    assert manager.get_user(None) is None  # anonymous not allowed
    assert users_mod.SimlineUserManager(None, allow_anonymous=True).get_user(None).role is UserRole.Anonymous  # type: ignore[union-attr]
    add_user(path, "carol", "carol's password", "operator")  # picked up without a restart
    assert manager.get_user(None, "carol", "carol's password") is not None
    monkeypatch.setattr(users_mod, "MAX_FAILURES", 2)
    assert manager.get_user(None, "alice", "wrong password 1") is None
    assert manager.get_user(None, "alice", "wrong password 2") is None
    assert manager.get_user(None, "alice", OPERATOR_PASSWORD) is None  # throttled after too many failures
