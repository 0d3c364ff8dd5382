"""The Sparkplug B profile against Mosquitto, decoded by an independent decoder (tests/mqtt_support.py).

One run covers a node's whole life: NBIRTH/DBIRTH, data with seq wrapping after 255, a rebirth on the node control
command, a DCMD fault, a dead connection (the broker publishes the NDEATH will, matching bdSeq), the reconnection
(bdSeq + 1, seq 0) and the clean stop (NDEATH).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

from mqtt_support import (
    LINE,
    Received,
    Subscriber,
    decode_sparkplug,
    encode_sparkplug,
    live_mqtt,
    proto_schema,
    wait_until,
)

from simline.mqtt.sparkplug import DEVICE_METRICS, NODE_METRICS

GROUP = "simline"
NS = f"spBv1.0/{GROUP}"


def _decoded(messages: list[Received]) -> list[tuple[str, str | None, dict[str, Any]]]:
    """``(message type, device, payload)`` of every message the test node published, in arrival order."""
    out = []
    for m in messages:
        parts = m.topic.split("/")
        assert parts[:2] == ["spBv1.0", GROUP] and parts[3] == LINE, m.topic
        if parts[2] in ("NCMD", "DCMD"):  # the test's own commands
            continue
        out.append((parts[2], parts[4] if len(parts) == 5 else None, decode_sparkplug(m.payload)))
    return out


def _value(metric: dict[str, Any]) -> Any:
    return metric.get("value")


async def _node_life(mosquitto: Any) -> None:
    sub = Subscriber(mosquitto.port, [f"{NS}/#"]).start()  # before the node: it sees the first NBIRTH
    try:
        await _run(mosquitto, sub)
    finally:
        sub.stop()


def _kinds(sub: Subscriber, kind: str) -> list[dict[str, Any]]:
    return [p for k, _, p in _decoded(sub.snapshot()) if k == kind]


async def _run(mosquitto: Any, sub: Subscriber) -> None:
    options = {"profile": "sparkplug", "sample_interval": 0.02, "kpi_interval": 0.1}
    async with live_mqtt(mosquitto.url, speed=3000.0, **options) as live:
        devices = [name for name, _ in live.profile.machines]
        await sub.until(lambda: len(_kinds(sub, "DBIRTH")) == len(devices), 5, "the births")
        live.run()
        await sub.until(lambda: len(sub.snapshot()) > 300, 10, "more than 256 messages (a seq wrap)")
        # rebirth on request
        await asyncio.to_thread(
            sub.publish,
            f"{NS}/NCMD/{LINE}",
            encode_sparkplug(int(time.time() * 1000), [("Node Control/Rebirth", "Boolean", True)]),
        )
        await sub.until(lambda: len(_kinds(sub, "NBIRTH")) == 2, 5, "the rebirth")
        # a fault through DCMD, and an order through NCMD
        await asyncio.to_thread(
            sub.publish,
            f"{NS}/DCMD/{LINE}/{devices[0]}",
            encode_sparkplug(int(time.time() * 1000), [("Commands/InjectFault", "Double", 600.0)]),
        )
        order = json.dumps({"product": "plate", "options": {"size": "small", "engraving": "no"}, "request_id": "sp1"})
        await asyncio.to_thread(
            sub.publish,
            f"{NS}/NCMD/{LINE}",
            encode_sparkplug(int(time.time() * 1000), [("Orders/New", "String", order)]),
        )
        await asyncio.to_thread(sub.publish, f"{NS}/NCMD/{LINE}", b"\x08\xff\xff garbage")  # ignored, logged
        await wait_until(lambda: live.profile.commands.stats.accepted == 2, 5, "the fault and the order")
        await wait_until(lambda: live.line.by_id["cut"].machines[0].state.label == "down", 10, "cut to break down")
        # the connection dies: the broker publishes the will; the node reconnects with the next bdSeq
        client = live.publisher._client
        assert client is not None
        client.socket().shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        await sub.until(lambda: len(_kinds(sub, "NBIRTH")) == 3, 10, "the birth after the reconnection")
        received = len(sub.snapshot())
        await sub.until(lambda: len(sub.snapshot()) > received + 20, 5, "data after the reconnection")
        await live.stop()
        await sub.until(lambda: len(_kinds(sub, "NDEATH")) == 2, 5, "the NDEATH of the clean stop")
        assert live.profile.commands.stats.rejected == 1  # the garbage
    _check(_decoded(sub.snapshot()), devices)


def _check(messages: list[tuple[str, str | None, dict[str, Any]]], devices: list[str]) -> None:
    _, _, datatypes = proto_schema()
    names = {v: k for k, v in datatypes.items()}
    births = [p for k, _, p in messages if k == "NBIRTH"]
    deaths = [p for k, _, p in messages if k == "NDEATH"]
    bd = [[_value(m) for m in p["metrics"] if m.get("name") == "bdSeq"] for p in births + deaths]
    assert bd == [[0], [0], [1], [0], [1]], bd  # births: first, rebirth, after reconnect; deaths: will, clean stop
    assert all("seq" not in p for p in deaths)
    assert [m["datatype"] for p in deaths for m in p["metrics"]] == [datatypes["Int64"]] * 2
    # sessions: from each NBIRTH, seq 0, 1, 2, ... wrapping after 255, over every message of the node
    sessions: list[list[tuple[str, str | None, dict[str, Any]]]] = []
    for kind, device, p in messages:
        if kind == "NBIRTH":
            sessions.append([])
        if kind != "NDEATH" and sessions:
            sessions[-1].append((kind, device, p))
    assert len(sessions) == 3
    wrapped = False
    for session in sessions:
        seqs = [p["seq"] for _, _, p in session]
        assert seqs == [i % 256 for i in range(len(seqs))], seqs[:20]
        wrapped |= len(seqs) > 256
        aliases: dict[tuple[str | None, int], tuple[str, int]] = {}
        born: set[str | None] = set()
        for kind, device, p in session:
            if kind in ("NBIRTH", "DBIRTH"):
                expected = NODE_METRICS if kind == "NBIRTH" else DEVICE_METRICS
                metrics = [m for m in p["metrics"] if m.get("name") != "bdSeq"]
                assert [(m["name"], names[m["datatype"]]) for m in metrics] == [(n, names[dt]) for n, dt in expected]
                for m in metrics:
                    aliases[(device, m["alias"])] = (m["name"], m["datatype"])
                    assert m.get("is_null") or m["value_field"] == _field(names[m["datatype"]]), m
                born.add(device)
            else:
                assert kind in ("NDATA", "DDATA") and device in born, (kind, device)  # data only after its birth
                for m in p["metrics"]:
                    assert "name" not in m and "datatype" not in m and (device, m["alias"]) in aliases, m
                    _, datatype = aliases[(device, m["alias"])]
                    assert m.get("is_null") or m["value_field"] == _field(names[datatype]), m
        assert born == {None, *devices}
        all_aliases = [a for (_, a) in aliases]
        assert len(all_aliases) == len(set(all_aliases))  # unique over the node and its devices
    assert wrapped, "no session went past seq 255"
    # the fault went down as a DDATA State change, the results as LastResult metrics
    by_name = {}
    for kind, device, p in sessions[1]:
        if kind == "DBIRTH":
            by_name.update({(device, m["alias"]): m["name"] for m in p["metrics"]})
        if kind == "NBIRTH":
            by_name.update({(None, m["alias"]): m["name"] for m in p["metrics"] if "alias" in m})
    updates = [
        (device, by_name[(device, m["alias"])], _value(m))
        for kind, device, p in sessions[1]
        if kind in ("DDATA", "NDATA")
        for m in p["metrics"]
    ]
    assert (devices[0], "State", "down") in updates
    results = [json.loads(v) for d, n, v in updates if n == "Commands/LastResult" and d == devices[0]]
    assert results and results[0]["status"] == "accepted" and results[0]["result"] in ("down", "armed")
    orders = [json.loads(v) for d, n, v in updates if n == "Orders/LastResult"]
    assert orders and orders[0]["status"] == "accepted" and orders[0]["request_id"] == "sp1"


def _field(datatype: str) -> str:
    return {
        "Int32": "int_value",
        "Int64": "long_value",
        "Double": "double_value",
        "Boolean": "boolean_value",
        "String": "string_value",
    }[datatype]


def test_sparkplug_node_life_decoded_independently(mosquitto: Any) -> None:
    asyncio.run(_node_life(mosquitto))
