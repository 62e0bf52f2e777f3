#!/usr/bin/env python3
"""Dependency-free Kafka readiness probe (stdlib only; used by kafka.sh).

Speaks the Kafka wire protocol directly: ApiVersions v0, then a Metadata
request (version picked from the broker's advertised range, v1..v8, no topics).
Exit 0 and print "cluster_id=<id> controller_id=<n> brokers=<n>" when the
broker answers Metadata with at least one live broker and a known controller.
Exit 1 if something answers but is not a (ready) Kafka broker, 2 if nothing
answers on host:port.

usage: kafka_probe.py HOST PORT [TIMEOUT_SECONDS]
"""

from __future__ import annotations

import socket
import struct
import sys

API_METADATA = 3
API_VERSIONS = 18
CLIENT_ID = b"kafka.sh-probe"


class NotKafka(Exception):
    pass


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise NotKafka("connection closed by peer")
        buf += chunk
    return bytes(buf)


def _request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, corr, len(CLIENT_ID)) + CLIENT_ID
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if size < 4 or size > 64 * 1024 * 1024:
        raise NotKafka(f"implausible response size {size}")
    resp = _recv_exact(sock, size)
    (got_corr,) = struct.unpack_from(">i", resp, 0)
    if got_corr != corr:
        raise NotKafka(f"correlation id mismatch ({got_corr} != {corr})")
    return resp[4:]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s


def probe(host: str, port: int, timeout: float) -> str:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise ConnectionError(str(exc)) from exc
    with sock:
        sock.settimeout(timeout)
        try:
            r = _Reader(_request(sock, API_VERSIONS, 0, 1, b""))
            err = r.take(">h")
            ranges = {}
            for _ in range(r.take(">i")):
                key, lo, hi = r.take(">hhh")
                ranges[key] = (lo, hi)
        except (TimeoutError, struct.error, OSError) as exc:
            raise NotKafka(f"no valid ApiVersions response: {exc}") from exc
        if err != 0:
            raise NotKafka(f"ApiVersions error_code={err}")
        if API_METADATA not in ranges:
            raise NotKafka("no Metadata API (a KRaft controller listener?)")
        lo, hi = ranges[API_METADATA]
        version = min(hi, 8)  # newest non-flexible version
        if version < max(lo, 1):
            raise NotKafka(f"no usable Metadata version (broker supports {lo}..{hi})")
        body = struct.pack(">i", 0)  # empty topic list -> brokers/controller only
        if version >= 4:
            body += struct.pack(">b", 0)  # allow_auto_topic_creation
        if version >= 8:
            body += struct.pack(">bb", 0, 0)  # include_*_authorized_operations
        try:
            r = _Reader(_request(sock, API_METADATA, version, 2, body))
            if version >= 3:
                r.take(">i")  # throttle_time_ms
            brokers = []
            for _ in range(r.take(">i")):
                node_id = r.take(">i")
                bhost = r.string()
                bport = r.take(">i")
                r.string()  # rack
                brokers.append((node_id, bhost, bport))
            cluster_id = r.string() if version >= 2 else None
            controller_id = r.take(">i")
        except (TimeoutError, struct.error, OSError) as exc:
            raise NotKafka(f"no valid Metadata response: {exc}") from exc
        if not brokers or controller_id < 0:
            raise NotKafka(f"broker not ready (brokers={brokers}, controller_id={controller_id})")
        return f"cluster_id={cluster_id} controller_id={controller_id} brokers={len(brokers)}"


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 64
    host, port = argv[1], int(argv[2])
    timeout = float(argv[3]) if len(argv) > 3 else 3.0
    try:
        print(probe(host, port, timeout))
        return 0
    except ConnectionError as exc:
        print(f"nothing answers on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    except NotKafka as exc:
        print(f"{host}:{port} answers but not as a ready Kafka broker: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
