"""A loopback TCP server that speaks one instrument's bytes and answers from the World.

Subclasses set ``ROLE`` and implement :meth:`split` (framing), :meth:`handle` (one message → reply
bytes or None for silence), :meth:`garbage` and :meth:`instrument_error`. The base applies the
request faults of :class:`~simulators.faults.Faults` to every message: ``drop`` closes the
connection without answering, ``timeout`` swallows the message, ``garbage`` answers junk with a
valid frame/terminator, ``instrument_error`` lets the instrument report its own error.
Servers bind loopback only.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["ProtocolServer", "LOOPBACK_HOSTS"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ProtocolServer:
    """Threaded TCP server, one thread per client connection. ``start()`` binds and listens;
    ``stop()`` closes the listener and every client connection (idempotent)."""

    ROLE = ""
    NAME = ""
    DEFAULT_PORT = 0

    def __init__(self, world: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"{type(self).__name__}: host {host!r} is not loopback; simulators bind "
                             f"only to {', '.join(LOOPBACK_HOSTS)}")
        self.world = world
        self.host = "127.0.0.1" if host == "localhost" else host
        self.requested_port = int(port)
        self.port = 0
        self._sock: socket.socket | None = None
        self._clients: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._junk = random.Random(f"garbage/{self.ROLE}/{getattr(world, 'seed', 0)}")
        self.messages = 0

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def resource(self) -> str:
        """pyvisa resource string of this server (pyvisa-py TCPIP SOCKET)."""
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    def start(self) -> ProtocolServer:
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.requested_port))
        s.listen(8)
        s.settimeout(0.2)
        self._sock = s
        self.port = s.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name=f"{self.ROLE}-server:{self.port}", daemon=True)
        t.start()
        self._threads.append(t)
        log.info("%s server (%s) listening on %s", self.ROLE, self.NAME, self.resource)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            self._close(c)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=1.0)

    def __enter__(self) -> ProtocolServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), name=f"{self.ROLE}-conn", daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _close(self, conn: socket.socket) -> None:
        with self._lock:
            self._clients.discard(conn)
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            conn.close()
        except OSError:
            pass

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        session: dict[str, Any] = {}
        conn.settimeout(0.5)
        try:
            while not self._stopping.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                buf.extend(data)
                for msg in self.split(buf):
                    if not self._one(conn, msg, session):
                        return
        finally:
            gone = getattr(self.world.clock, "client_gone", None)
            if gone is not None:
                gone(("tcp", self.ROLE, id(session)))
            self._close(conn)

    def _one(self, conn: socket.socket, msg: bytes, session: dict[str, Any]) -> bool:
        """Handle one message; False when the connection was dropped."""
        dropped, reply = self.respond(msg, session)
        if dropped:
            self._close(conn)
            return False
        if reply:
            try:
                conn.sendall(reply)
            except OSError:
                return False
        return True

    def respond(self, msg: bytes, session: dict[str, Any]) -> tuple[bool, bytes | None]:
        """The instrument's answer to one message: ``(dropped, reply bytes or None)``, with the request
        faults applied (a transport front end such as :mod:`.hislip` calls this too)."""
        world = self.world
        # a paced clock (``sim serve --speed max``) lets lab time run at most one step past this request
        note = getattr(world.clock, "client_request", None)
        if note is not None:
            note(("tcp", self.ROLE, id(session)))
        with world.lock:
            t = world.advance()
            self.messages += 1
            fault = world.faults.request_fault(self.ROLE, t)
            if fault == "drop":
                log.info("%s: fault drop on %r", self.ROLE, msg)
                return True, None
            if fault == "timeout":
                log.info("%s: fault timeout on %r", self.ROLE, msg)
                return False, None
            try:
                if fault == "garbage":
                    reply = self.garbage(msg)
                elif fault == "instrument_error":
                    reply = self.instrument_error(msg, session, t)
                else:
                    reply = self.handle(msg, session, t)
            except Exception:  # a server bug must not kill the connection silently
                log.exception("%s: error handling %r", self.ROLE, msg)
                reply = None
        return False, reply

    def junk(self, n: int = 12) -> str:
        """Printable junk that parses as no number."""
        alphabet = "#%&*?!@~^xqzZQ"
        return "".join(self._junk.choice(alphabet) for _ in range(n))

    # -- to implement --------------------------------------------------------------------
    def split(self, buf: bytearray) -> list[bytes]:
        """Remove complete messages from ``buf`` and return them (without framing)."""
        raise NotImplementedError

    def handle(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        raise NotImplementedError

    def garbage(self, msg: bytes) -> bytes | None:
        raise NotImplementedError

    def instrument_error(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        raise NotImplementedError


def split_lines(buf: bytearray, sep: bytes = b"\n", strip: bytes = b"\r\n ") -> list[bytes]:
    """Line framing helper: split on ``sep``; strip ``strip`` characters; drop empty lines."""
    out = []
    while True:
        i = buf.find(sep)
        if i < 0:
            return out
        line = bytes(buf[:i]).strip(strip)
        del buf[: i + len(sep)]
        if line:
            out.append(line)
