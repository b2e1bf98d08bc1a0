"""lesbot's DATA reader (bot.doors.smtp_data) against aiosmtpd's own, byte for byte.

Two real listeners on 127.0.0.1, stock aiosmtpd and lesbot's session, with the same limits;
the same DATA bytes go to each over a socket, cut into pieces sent apart (so the server sees
partial lines and partial end lines); the reply, what the handler got, and the session's
state afterwards (the next command's reply) must be the same."""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.doors.smtp_data import Session

SIZE_LIMIT = 4000


class Keep:
    def __init__(self):
        self.got: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.got.append(envelope.original_content)
        return "250 2.0.0 kept"


@pytest.fixture(scope="module")
def servers():
    loop = asyncio.new_event_loop()
    started, out = threading.Event(), {}

    def run():
        asyncio.set_event_loop(loop)
        for name, cls in (("aiosmtpd", SMTP), ("lesbot", Session)):
            keep = Keep()
            srv = loop.run_until_complete(loop.create_server(
                lambda cls=cls, keep=keep: cls(keep, hostname="t", data_size_limit=SIZE_LIMIT,
                                               enable_SMTPUTF8=True, decode_data=False),
                "127.0.0.1", 0))
            out[name] = (srv, srv.sockets[0].getsockname()[1], keep)
        started.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait(10)
    yield out
    for srv, _, _ in out.values():
        loop.call_soon_threadsafe(srv.close)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    loop.close()


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.reply()                                     # greeting

    def reply(self) -> str:
        """One whole (possibly multi-line) reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    return " / ".join(lines + ["<closed>"])
                self.buf += chunk
            line, _, self.buf = self.buf.partition(b"\r\n")
            lines.append(line.decode())
            if len(line) < 4 or line[3:4] != b"-":
                return " / ".join(lines)

    def command(self, text: str) -> str:
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.command("QUIT")
        finally:
            self.s.close()


def session(port: int, keep: Keep, pieces: list[bytes], after: str = "NOOP") -> tuple:
    c = Client(port)
    try:
        c.command("EHLO client")
        c.command("MAIL FROM:<a@nhs.net>")
        c.command("RCPT TO:<b@nhs.net>")
        before = len(keep.got)
        data_reply = c.command("DATA")
        for piece in pieces:
            c.s.sendall(piece)
            time.sleep(0.001)
        done = c.reply()
        return data_reply, done, keep.got[before:], c.command(after)
    finally:
        c.close()


def both(servers, pieces: list[bytes], after: str = "NOOP") -> tuple:
    results = [session(port, keep, pieces, after) for _, port, keep in servers.values()]
    assert results[0] == results[1], pieces
    return results[1]


LINE = st.one_of(
    st.sampled_from([b"", b".", b"..", b".x", b"x.", b"x .", b"hello", b"\xe9t\xe9", b"a\nb", b"a\rb", b"\r", b"\n",
                     b"--b", b"..\r", b" .", b"From x"]),
    st.builds(lambda n, c: c * n, st.sampled_from([997, 998, 999, 1000, 1001, 1002, 1500, 2100]),
              st.sampled_from([b"x", b"."])),
)


@st.composite
def payloads(draw):
    lines = draw(st.lists(LINE, max_size=12))
    if draw(st.booleans()):
        lines += [b"y" * 300] * draw(st.integers(0, 20))            # near and over the size limit
    # a lone dot is the end: a client stuffs it (other lines keep the dots they are drawn with)
    data = b"".join((b".." if line == b"." else line) + b"\r\n" for line in lines) + b".\r\n"
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)]) if b > a]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(payloads())
def test_the_same_bytes_give_the_same_reply_and_content(servers, pieces):
    both(servers, pieces)


def test_what_each_case_gives(servers):
    """The cases by name, so a failure says which rule broke."""
    cases = {
        "empty message": ([b".\r\n"], "250", [b""]),
        "dot-stuffing removed": ([b"..a\r\nb\r\n...\r\n.\r\n"], "250", [b".a\r\nb\r\n..\r\n"]),
        "end line split over two packets": ([b"a\r\n", b".", b"\r\n"], "250", [b"a\r\n"]),
        "end line split after its CR": ([b"a\r\n.\r", b"\n"], "250", [b"a\r\n"]),
        "a line ending in a dot is not the end": ([b"Regards.\r\nx\r\n.\r\n"], "250", [b"Regards.\r\nx\r\n"]),
        "a dot after a bare LF is not the end": ([b"a\n.\r\nb\r\n.\r\n"], "250", [b"a\n.\r\nb\r\n"]),
        "a line of 1001 bytes with CRLF": ([b"x" * 999 + b"\r\n.\r\n"], "250", [b"x" * 999 + b"\r\n"]),
        "a line of 1002 bytes": ([b"x" * 1000 + b"\r\n.\r\n"], "500", []),
        "a long line with no break": ([b"x" * 5000 + b"\r\n.\r\n"], "500", []),
        "over the size limit": ([b"y" * 300 + b"\r\n"] * 15 + [b".\r\n"], "552", []),
        # lines ending in a dot: each is read on its own, so the last read is what goes over
        "over the size limit in the last line": ([b"y" * 397 + b".\r\n"] * 9 + [b"y" * 500 + b"\r\n.\r\n"], "552",
                                                 []),
        "exactly at the size limit": ([b"y" * 398 + b"\r\n"] * 9 + [b"y" * 398 + b"\r\n.\r\n"], "250",
                                      [(b"y" * 398 + b"\r\n") * 10]),
    }
    for name, (pieces, code, got) in cases.items():
        _, done, kept, after = both(servers, pieces)
        assert done.startswith(code) and kept == got and after.startswith("250"), name


def test_commands_sent_with_the_end_line_are_answered(servers):
    """A pipelining client sends the next command in the same packet as the end line."""
    c = Client(servers["lesbot"][1])
    try:
        c.command("EHLO client")
        c.command("MAIL FROM:<a@nhs.net>")
        c.command("RCPT TO:<b@nhs.net>")
        c.command("DATA")
        c.s.sendall(b"hello\r\n.\r\nMAIL FROM:<c@nhs.net>\r\nRCPT TO:<d@nhs.net>\r\n")
        assert c.reply().startswith("250 2.0.0 kept")
        assert c.reply().startswith("250") and c.reply().startswith("250")
    finally:
        c.close()


def test_a_client_gone_mid_message_leaves_nothing_half_kept(servers):
    _, port, keep = servers["lesbot"]
    before = len(keep.got)
    c = Client(port)
    c.command("EHLO client")
    c.command("MAIL FROM:<a@nhs.net>")
    c.command("RCPT TO:<b@nhs.net>")
    c.command("DATA")
    c.s.sendall(b"half a message\r\n")
    c.s.close()
    time.sleep(0.2)
    assert len(keep.got) == before
    assert Client(port).command("NOOP").startswith("250")      # the listener still serves


def test_data_before_a_recipient_is_refused_as_aiosmtpd_does(servers):
    for _, port, _ in servers.values():
        c = Client(port)
        try:
            c.command("EHLO client")
            c.command("MAIL FROM:<a@nhs.net>")
            assert c.command("DATA").startswith("503")
            c.command("RCPT TO:<b@nhs.net>")
            assert c.command("DATA x").startswith("501")
        finally:
            c.close()


def test_a_session_that_would_decode_the_mail_is_refused():
    with pytest.raises(ValueError):
        Session(Keep(), decode_data=True)
