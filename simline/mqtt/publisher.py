"""The MQTT connection of a live line: a paho client driven by the asyncio loop, never blocking the simulation.

The client's socket is watched by the event loop (``add_reader``/``add_writer``; paho's ``loop_read``,
``loop_write`` and ``loop_misc``), so publishing, the model and the OPC UA server share one thread and no lock.
Only the blocking part of a connection attempt (TCP connect, TLS handshake) runs in a worker thread; the loop
does not touch that client until the attempt returns. TCP_NODELAY is set for millisecond latency.

Reliability:

* A connection that breaks is re-made with exponential backoff and jitter: the delay before attempt *n* is drawn
  uniformly from ``[d/2, d]`` with ``d = min(reconnect_max, reconnect_min · 2ⁿ)``. Each attempt uses a fresh
  client (and a fresh will, e.g. Sparkplug's next bdSeq).
* Messages wait in a bounded :class:`~simline.mqtt.buffer.OutBuffer` while the broker is away (profiles that keep
  messages across connections) or while more than ``max_backlog`` messages are unwritten on the socket.
* Gaps are recorded per topic: messages dropped from the buffer, and messages handed to a connection that broke
  before the broker confirmed them. The broker confirms through QoS 1 acknowledgements: its PUBACK of a message
  means it received everything written before it on that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from simline.mqtt.buffer import GapLog, Message, OutBuffer
from simline.mqtt.config import BrokerAddress, MqttOptions
from simline.mqtt.delivery import Confirmations, PublisherStats, Will, backoff_delay, published

__all__ = ["Publisher"]

log = logging.getLogger("simline.mqtt")
_OK = MQTTErrorCode.MQTT_ERR_SUCCESS
QOS_WINDOW = 1000
"""QoS>0 messages handed to the client and not yet acknowledged, at most (more wait in the buffer)."""


class Publisher:
    """Publishes messages to one broker from the running asyncio loop.

    Args:
        address: The broker.
        client_id: MQTT client id.
        options: Buffer, backlog, keep-alive, reconnect and timeout settings.
        keep_offline: Keep messages in the buffer while disconnected (else they are discarded: session-bound).
        subscriptions: Topic filters subscribed (QoS 1) on every connection, before ``on_connect`` is called.
        on_connect: Called on the loop after every successful connection (publish births or snapshots here).
        on_message: Called with ``(topic, payload)`` of each message received.
        will: Called before each connection attempt for the will to register, if any.
        on_drop: Called with each message dropped from the full buffer.
    """

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        options: MqttOptions,
        *,
        keep_offline: bool = True,
        subscriptions: list[str] | None = None,
        on_connect: Callable[[], None] | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
        will: Callable[[], Will | None] | None = None,
        on_drop: Callable[[Message], None] | None = None,
    ) -> None:
        self.address = address
        self.client_id = client_id
        self.options = options
        self.keep_offline = keep_offline
        self.subscriptions = list(subscriptions or [])
        self._on_connect_cb = on_connect
        self._on_message_cb = on_message
        self._will_cb = will
        self._on_drop_cb = on_drop
        self.stats = PublisherStats()
        self.gaps = GapLog()
        self.buffer = OutBuffer(options.buffer_messages, self._dropped)
        self.connected = False
        self.last_outage_ms: tuple[int, int] | None = None
        self._outage_start_ms: int | None = None
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._handed = 0  # hand-offs since the socket last drained
        self.confirmations = Confirmations()
        self._unacked: deque[mqtt.MQTTMessageInfo] = deque()  # QoS>0 messages the broker has not acknowledged
        self._connack: asyncio.Future[bool] | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._stopping = False
        self._rng = random.Random()

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self, wait: float = 0.0) -> bool:
        """Start connecting (in the background) and wait up to ``wait`` seconds for the first connection.

        Returns:
            Whether the publisher is connected when this returns.
        """
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopping = False
        self._connect_task = asyncio.create_task(self._connect_loop(), name="mqtt-connect")
        self._housekeeping = asyncio.create_task(self._housekeeping_loop(), name="mqtt-housekeeping")
        deadline = self._loop.time() + wait
        while not self.connected and self._loop.time() < deadline and not self._connect_task.done():
            await asyncio.sleep(0.01)
        return self.connected

    async def stop(self, timeout: float = 2.0) -> None:
        """Write what is buffered (up to ``timeout`` seconds), wait for the broker to confirm the last QoS>0 message,
        then disconnect cleanly (so the broker does not send the will)."""
        self._stopping = True
        for task in (self._connect_task, self._housekeeping):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        client = self._client
        if client is None:
            return
        loop = asyncio.get_running_loop()
        if self.connected:
            deadline = loop.time() + timeout
            while loop.time() < deadline and self.connected:
                self._handed = 0
                self._pump()
                last = self.confirmations.last_qos
                if not self.buffer and not client.want_write() and (last is None or published(last)):
                    break
                await asyncio.sleep(0.005)
            client.disconnect()
            client.loop_write()  # sends DISCONNECT and closes the socket
        self._close_client(client)
        self.connected = self.stats.connected = False

    # --- publishing ----------------------------------------------------------------------------------
    def publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False, seq: int = -1, sample: bool = False
    ) -> None:
        """Publish now if the connection can take it, else buffer (see the module docstring). Never blocks."""
        if self.connected:
            if not self.buffer and self._handed < self.options.max_backlog and len(self._unacked) < QOS_WINDOW:
                self._send(topic, payload, qos, retain, seq)
                return
        elif not self.keep_offline:
            self.stats.discarded += 1
            return
        self.buffer.push(Message(topic, payload, qos, retain, seq, sample))
        self.stats.buffered = len(self.buffer)
        self.stats.buffer_high_water = self.buffer.high_water

    def _send(self, topic: str, payload: bytes, qos: int, retain: bool, seq: int) -> None:
        client = self._client
        assert client is not None
        self._handed += 1
        try:
            info = client.publish(topic, payload, qos, retain)
        except ValueError as exc:  # an invalid topic or an oversized payload: a bug upstream, never fatal
            log.error("cannot publish to %r: %s", topic, exc)
            info = None
        if info is None or info.rc != _OK:
            self.stats.dropped += 1
            if seq >= 0:
                self.gaps.add_dropped(topic, seq)
            return
        self.stats.published += 1
        self.confirmations.handed(topic, seq, qos, info)
        if qos:
            self._unacked.append(info)

    def _pump(self) -> None:
        """Hand buffered messages to the client while the connection can take them."""
        if not self.connected or self._client is None:
            return
        buffer, limit, unacked = self.buffer, self.options.max_backlog, self._unacked
        while self._handed < limit and len(unacked) < QOS_WINDOW:
            m = buffer.pop()
            if m is None:
                break
            self._send(m.topic, m.payload, m.qos, m.retain, m.seq)
        self.stats.buffered = len(buffer)

    def _dropped(self, message: Message) -> None:
        self.stats.dropped += 1
        if message.seq >= 0:
            self.gaps.add_dropped(message.topic, message.seq)
        if self._on_drop_cb is not None:
            self._on_drop_cb(message)

    # --- connection ----------------------------------------------------------------------------------
    def _new_client(self) -> mqtt.Client:
        a = self.address
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        c.suppress_exceptions = True
        c.connect_timeout = self.options.connect_timeout
        c.max_inflight_messages_set(100)  # paho's cost per acknowledgement grows with this window
        c.max_queued_messages_set(2 * QOS_WINDOW)
        if a.username:
            c.username_pw_set(a.username, a.password)
        if a.tls:
            context = ssl.create_default_context(cafile=str(a.ca_file) if a.ca_file else None)
            if a.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            c.tls_set_context(context)
            c.tls_insecure_set(a.insecure)
        will = self._will_cb() if self._will_cb is not None else None
        if will is not None:
            c.will_set(will.topic, will.payload, will.qos, will.retain)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        return c

    async def _connect_loop(self) -> None:
        loop = asyncio.get_running_loop()
        a = self.address
        attempt = 0
        while not self._stopping:
            client = self._new_client()
            self._connack = loop.create_future()
            ok = False
            try:
                await asyncio.wait_for(
                    loop.run_in_executor(None, client.connect, a.host, a.port, self.options.keepalive),
                    self.options.connect_timeout + 1.0,
                )
            except (OSError, ssl.SSLError, ValueError, TimeoutError) as exc:
                self._connect_failed(client, f"cannot connect to {a.display()}: {exc or type(exc).__name__}", attempt)
            else:
                self._attach(client)
                try:
                    ok = await asyncio.wait_for(asyncio.shield(self._connack), self.options.connect_timeout)
                except TimeoutError:
                    ok = False
                if not ok:
                    self._connect_failed(client, self.stats.last_error or f"no CONNACK from {a.display()}", attempt)
            if ok:
                return
            await asyncio.sleep(
                backoff_delay(attempt, self.options.reconnect_min, self.options.reconnect_max, self._rng)
            )
            attempt += 1

    def _connect_failed(self, client: mqtt.Client, reason: str, attempt: int) -> None:
        self.stats.connect_failures += 1
        self.stats.last_error = reason
        (log.warning if attempt % 10 == 9 else log.info)("%s (attempt %d; retrying)", reason, attempt + 1)
        self._close_client(client)

    def _attach(self, client: mqtt.Client) -> None:
        """Watch the new connection's socket from the loop (the connect attempt ran in a worker thread)."""
        assert self._loop is not None
        sock = client.socket()
        if sock is None:
            return
        self._client = client
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
        self._loop.add_reader(sock, self._on_readable, client)
        if client.want_write():
            self._loop.add_writer(sock, self._on_writable, client)

    def _close_client(self, client: mqtt.Client) -> None:
        sock = client.socket()
        if sock is not None and self._loop is not None:
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
            with contextlib.suppress(OSError):
                sock.close()
        if client is self._client:
            self._client = None

    # --- paho callbacks (all on the loop thread, except during a connect attempt, when they are ignored) -------
    def _on_readable(self, client: mqtt.Client) -> None:
        client.loop_read()
        sock = client.socket()
        while isinstance(sock, ssl.SSLSocket) and sock.pending() and client.socket() is sock:
            client.loop_read()
        if client is self._client:
            self.confirmations.confirm()
            unacked = self._unacked
            if unacked and published(unacked[0]):
                while unacked and published(unacked[0]):
                    unacked.popleft()
                if self.buffer:
                    self._pump()

    def _on_writable(self, client: mqtt.Client) -> None:
        client.loop_write()
        if client is self._client and not client.want_write():
            self._handed = 0
            if self.buffer:
                self._pump()

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if threading.get_ident() == self._loop_thread and self._loop is not None:
            self._loop.add_writer(sock, self._on_writable, client)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if threading.get_ident() == self._loop_thread and self._loop is not None:
            self._loop.remove_writer(sock)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if threading.get_ident() == self._loop_thread and self._loop is not None:
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if client is not self._client:
            return
        if reason.is_failure:
            self.stats.last_error = f"broker refused the connection: {reason}"
            log.error("%s refused the connection: %s", self.address.display(), reason)
            self._resolve_connack(False)
            return
        now_ms = int(time.time() * 1000)
        if self._outage_start_ms is not None:
            self.last_outage_ms = (self._outage_start_ms, now_ms)
            self._outage_start_ms = None
        self.connected = self.stats.connected = True
        self.stats.connects += 1
        self._handed = 0
        if self.stats.connects > 1:
            log.warning("reconnected to %s", self.address.display())
        if self.subscriptions:
            client.subscribe([(topic, 1) for topic in self.subscriptions])
        self._resolve_connack(True)
        if self._on_connect_cb is not None:
            try:
                self._on_connect_cb()
            except Exception:  # a bug in a profile must not take the connection down
                log.exception("MQTT on-connect handler failed")
        self._pump()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if client is not self._client:
            return
        self._client = None
        self._resolve_connack(False)
        was_connected = self.connected
        self.connected = self.stats.connected = False
        if self._stopping or not was_connected:
            return
        self.stats.disconnects += 1
        self.stats.last_error = f"connection lost: {reason}"
        self._outage_start_ms = int(time.time() * 1000)
        log.warning("lost the connection to %s (%s); reconnecting", self.address.display(), reason)
        lost = self.confirmations.lost()
        for topic, seq in lost:
            self.gaps.add_uncertain(topic, seq)
        self.stats.uncertain += len(lost)
        self._handed = 0
        self._unacked.clear()
        if not self.keep_offline:
            self.stats.discarded += len(self.buffer.clear())
            self.stats.buffered = 0
        if self._connect_task is None or self._connect_task.done():
            self._connect_task = asyncio.get_running_loop().create_task(self._connect_loop(), name="mqtt-connect")

    def _resolve_connack(self, ok: bool) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(ok)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._on_message_cb is None:
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:
            log.info("ignored a message with a topic that is not UTF-8")
            return
        try:
            self._on_message_cb(topic, bytes(message.payload))
        except Exception:  # bad input must never escape into paho or the loop
            log.exception("MQTT message handler failed on %r", topic)

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            client = self._client
            if client is not None and client.socket() is not None:
                client.loop_misc()  # keep-alive pings and their timeout
            if self.connected:
                self.confirmations.confirm()
                self._pump()
