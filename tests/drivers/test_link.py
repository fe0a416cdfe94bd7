"""drivers._link.Link: a retry after a timeout waits longer than the attempt before (×2, at most ×4), on a fresh
connection, and the next exchange is back at the configured timeout."""

import pytest
import pyvisa

from drivers._link import MAX_BACKOFF, Link
from drivers.base import DriverError


class _Conn:
    def __init__(self) -> None:
        self.timeout = 100    # ms, as the factory set it


class _Adapter:
    def __init__(self) -> None:
        self.connection = _Conn()

    def close(self) -> None:
        pass


class _Inst:
    def __init__(self) -> None:
        self.adapter = _Adapter()


def _timeout() -> pyvisa.errors.VisaIOError:
    return pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)


def _link(retries: int = 3) -> tuple[Link, list[_Inst]]:
    opened: list[_Inst] = []

    def factory() -> _Inst:
        opened.append(_Inst())
        return opened[-1]

    return Link("fake", "TCPIP::127.0.0.1::1::SOCKET", factory, timeout_s=0.1, retries=retries), opened


def test_retries_back_off_then_the_next_call_is_at_the_base_timeout():
    link, opened = _link()
    seen: list[int] = []

    def late_twice(inst: _Inst) -> str:
        seen.append(inst.adapter.connection.timeout)
        if len(seen) <= 2:
            raise _timeout()
        return "ok"

    assert link.call("Q?", late_twice) == "ok"
    assert seen == [100, 200, 400]            # 1×, 2×, 4× the 0.1 s timeout, each on a fresh connection
    assert len(opened) == 3 and link.faults == {"timeout": 2}
    assert link.call("Q?", lambda inst: inst.adapter.connection.timeout) == 100


def test_a_dead_link_fails_after_every_attempt_with_capped_waits():
    link, _ = _link(retries=4)
    seen: list[int] = []

    def dead(inst: _Inst) -> str:
        seen.append(inst.adapter.connection.timeout)
        raise _timeout()

    with pytest.raises(DriverError, match="no valid reply to Q\\? .* after 5 attempt"):
        link.call("Q?", dead)
    assert seen == [100, 200, 400, 400, 400] and MAX_BACKOFF == 4.0
    assert link.failures == {"timeout": 1}


def test_a_socket_link_sends_each_command_at_once_without_nagle():
    """VISA's default VI_ATTR_TCPIP_NODELAY = VI_TRUE (pyvisa-py leaves Nagle on): a set command the
    instrument does not answer must not hold the next command until the peer's delayed ACK."""
    import socket
    import threading

    from pymeasure.instruments import Instrument

    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            buf = b""
            while b"Q?\n" not in buf:
                data = conn.recv(100)
                if not data:
                    return
                buf += data
            got.append(buf)
            conn.sendall(b"1\n")

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    res = f"TCPIP::127.0.0.1::{port}::SOCKET"
    link = Link("fake", res, lambda: Instrument(res, "fake", visa_library="@py", read_termination="\n",
                                                write_termination="\n", timeout=2000))
    try:
        sock = link.inst.adapter.connection.visalib.sessions[link.inst.adapter.connection.session].interface
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert link.call("S 1", lambda i: (i.write("S 1"), i.ask("Q?"))[1].strip()) == "1"
        assert got == [b"S 1\nQ?\n"]
    finally:
        link.close()
        srv.close()
        th.join(5)
