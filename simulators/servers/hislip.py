"""A HiSLIP 1.0 front end (IVI-6.1; TCP port 4880 on instruments) for a message-based server.

The PM100D's own link is USBTMC, whose transfers mark the end of each message (EOM); a raw TCP
socket has no such mark, so a VISA client on ``…::SOCKET`` must be told a read termination. HiSLIP
is the LAN protocol with the same message framing (``DataEnd``), so a client opening
``TCPIP::127.0.0.1::hislip0,<port>::INSTR`` with pyvisa-py reads whole replies with default
settings, exactly as over USBTMC.

Implemented (synchronous channel): ``Initialize`` → ``InitializeResponse`` (version 1.0, no overlap),
``Data``/``DataEnd`` (a message ends at ``DataEnd``; the reply is one ``DataEnd`` carrying the
request's MessageID), ``DeviceClearComplete`` → ``DeviceClearAcknowledge``, ``Trigger`` (ignored);
(asynchronous channel): ``AsyncInitialize``, ``AsyncMaxMsgSize``, ``AsyncDeviceClear``,
``AsyncLockInfo``, ``AsyncLock`` (always granted), ``AsyncRemoteLocalControl``, ``AsyncStatusQuery``
(status byte 0). Anything else answers ``Error`` "Unrecognized Message Type". No TLS, no
authentication (HiSLIP 2.0). Loopback only.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["HislipFrontEnd"]

HEADER = struct.Struct("!2sBBIQ")
T = {"Initialize": 0, "InitializeResponse": 1, "FatalError": 2, "Error": 3, "AsyncLock": 4, "AsyncLockResponse": 5,
     "Data": 6, "DataEnd": 7, "DeviceClearComplete": 8, "DeviceClearAcknowledge": 9,
     "AsyncRemoteLocalControl": 10, "AsyncRemoteLocalResponse": 11, "Trigger": 12, "AsyncMaxMsgSize": 15,
     "AsyncMaxMsgSizeResponse": 16, "AsyncInitialize": 17, "AsyncInitializeResponse": 18, "AsyncDeviceClear": 19,
     "AsyncStatusQuery": 21, "AsyncStatusResponse": 22, "AsyncDeviceClearAcknowledge": 23, "AsyncLockInfo": 24,
     "AsyncLockInfoResponse": 25}
VERSION = 0x0100
MAX_MSG = 1 << 20


def _msg(kind: str, control: int = 0, param: int = 0, payload: bytes = b"") -> bytes:
    return HEADER.pack(b"HS", T[kind], control, param & 0xFFFFFFFF, len(payload)) + payload


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = conn.recv(n - len(buf))
        except (TimeoutError, OSError):
            return None
        if not chunk:
            return None
        buf.extend(chunk)
    return bytes(buf)


class HislipFrontEnd:
    """Serves ``server`` (a :class:`~.base.ProtocolServer`: its ``respond(msg, session)`` answers) over
    HiSLIP on its own port. ``resource`` is the pyvisa-py resource string."""

    def __init__(self, server: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"HiSLIP front end: host {host!r} is not loopback")
        self.server = server
        self.host = "127.0.0.1"
        self.requested_port = int(port)
        self.port = 0
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._sessions = 0

    @property
    def resource(self) -> str:
        return f"TCPIP::{self.host}::hislip0,{self.port}::INSTR"

    def start(self) -> HislipFrontEnd:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.requested_port))
        s.listen(8)
        s.settimeout(0.2)
        self._sock = s
        self.port = s.getsockname()[1]
        threading.Thread(target=self._accept, name=f"hislip:{self.port}", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        session: dict[str, Any] = {}
        pending = bytearray()
        key = ("hislip", self.server.ROLE, id(conn))
        try:
            while not self._stop.is_set():
                head = _recv_exact(conn, HEADER.size)
                if head is None:
                    return
                prologue, kind, control, param, length = HEADER.unpack(head)
                if prologue != b"HS":
                    conn.sendall(_msg("FatalError", 1, 0, b"Poorly formed message header"))
                    return
                payload = _recv_exact(conn, length) if length else b""
                if payload is None:
                    return
                if kind == T["Initialize"]:
                    with self._lock:
                        self._sessions += 1
                        sid = self._sessions & 0xFFFF
                    conn.sendall(_msg("InitializeResponse", 0, (VERSION << 16) | sid))
                elif kind == T["AsyncInitialize"]:
                    conn.sendall(_msg("AsyncInitializeResponse", 0, int.from_bytes(b"SFLB", "big")))
                elif kind == T["AsyncMaxMsgSize"]:
                    conn.sendall(_msg("AsyncMaxMsgSizeResponse", 0, 0, struct.pack("!Q", MAX_MSG)))
                elif kind in (T["Data"], T["DataEnd"]):
                    pending.extend(payload)
                    if kind == T["DataEnd"]:
                        msg = bytes(pending).strip(b"\r\n ")
                        pending.clear()
                        if not msg:
                            continue
                        dropped, reply = self.server.respond(msg, session)
                        if dropped:
                            return
                        if reply:
                            conn.sendall(_msg("DataEnd", 0, param, reply))
                elif kind == T["AsyncDeviceClear"]:
                    conn.sendall(_msg("AsyncDeviceClearAcknowledge", 0, 0))
                elif kind == T["DeviceClearComplete"]:
                    pending.clear()
                    conn.sendall(_msg("DeviceClearAcknowledge", control, 0))
                elif kind == T["AsyncLockInfo"]:
                    conn.sendall(_msg("AsyncLockInfoResponse", 0, 0))
                elif kind == T["AsyncLock"]:
                    conn.sendall(_msg("AsyncLockResponse", 1, 0))
                elif kind == T["AsyncRemoteLocalControl"]:
                    conn.sendall(_msg("AsyncRemoteLocalResponse", 0, 0))
                elif kind == T["AsyncStatusQuery"]:
                    conn.sendall(_msg("AsyncStatusResponse", 0, 0))
                elif kind == T["Trigger"]:
                    continue
                else:
                    conn.sendall(_msg("Error", 1, 0, b"Unrecognized Message Type"))
        except OSError:
            return
        finally:
            gone = getattr(self.server.world.clock, "client_gone", None)
            if gone is not None:
                gone(key)
                gone(("tcp", self.server.ROLE, id(session)))
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass
