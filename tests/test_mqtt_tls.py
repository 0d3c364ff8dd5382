"""Connecting to a broker that wants TLS and a password, and the embedded broker's loopback binding."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import SCENARIOS, Subscriber, free_port, live_mqtt

from simline import load_scenario
from simline.live.driver import LiveDriver
from simline.mqtt import MqttAdapter, MqttOptions, parse_broker_url
from simline.mqtt.broker import EmbeddedBroker
from simline.sim import Line

USER, PASSWORD = "line1", "s3cret pass"


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 and localhost signed by it: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: x509.Name, public: Any, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "simline test CA")])
    ca = build("simline test CA", ca_name, ca_key.public_key(), ca_key, ca=True)
    cert = build("localhost", ca_name, key.public_key(), ca_key, ca=False)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


async def _tls(port: int, ca: Path) -> None:
    async with live_mqtt(f"mqtts://{USER}@127.0.0.1:{port}?ca={ca}") as live:
        assert live.publisher.address.tls and live.publisher.address.password == PASSWORD
        status = f"{live.base}/status"
        sub = Subscriber(port, [status], ca=ca, username=USER, password=PASSWORD)
        await asyncio.to_thread(sub.start)
        await sub.until(lambda: [m.json()["value"] for m in sub.snapshot()] == ["online"], 5, "online over TLS")
        sub.stop()
    # a wrong password: refused, reported, retried with backoff; the line runs all the same
    line = Line(load_scenario(SCENARIOS / "quickstart.yaml"), live=True)
    driver = LiveDriver(line, speed=3000.0)
    address = parse_broker_url(f"mqtts://{USER}:wrong@127.0.0.1:{port}?ca={ca}")
    adapter = MqttAdapter(driver, MqttOptions(broker=address, reconnect_min=0.05, reconnect_max=0.2))
    try:
        await adapter.start(wait=0.5)
        await driver.run(duration_seconds=1.0)
        stats = adapter.stats
        assert stats is not None and not stats.connected and stats.connect_failures >= 2
        assert "refused" in stats.last_error and "authori" in stats.last_error.lower(), stats.last_error
        assert line.env.now > 40
    finally:
        await adapter.stop()


def test_tls_with_user_and_password(mosquitto: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    passwd_tool = shutil.which("mosquitto_passwd")
    assert passwd_tool, "mosquitto_passwd comes with the mosquitto package"
    ca, cert, key = _certificates(tmp_path)
    passwords = tmp_path / "passwords"
    subprocess.run([passwd_tool, "-c", "-b", str(passwords), USER, PASSWORD], check=True, capture_output=True)
    settings = f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\npassword_file {passwords}\n"
    broker = type(mosquitto)(tmp_path, free_port(), settings=settings, anonymous=False)
    broker.start()
    monkeypatch.setenv("SIMLINE_MQTT_PASSWORD", PASSWORD)
    try:
        asyncio.run(_tls(broker.port, ca))
    finally:
        broker.stop()


async def _embedded_binds_loopback() -> None:
    broker = EmbeddedBroker(port=0)
    await broker.start()
    try:
        sockets = broker._broker._servers["default"].instance.sockets
        assert {s.getsockname()[0] for s in sockets} == {"127.0.0.1"} and broker.port > 0
        taken = EmbeddedBroker(port=broker.port)
        with pytest.raises(OSError, match="--mqtt-port"):
            await taken.start()
    finally:
        await broker.stop()


def test_the_embedded_broker_binds_to_loopback_and_says_when_its_port_is_taken() -> None:
    asyncio.run(_embedded_binds_loopback())
