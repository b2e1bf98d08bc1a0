"""aiosmtpd's SMTP session, with the DATA section read in chunks instead of line by line.

aiosmtpd awaits readuntil(CRLF) once per line of a message: a Python coroutine step, a log
call and a join for each of a message's few hundred lines, over half the CPU of taking a
message. Here the stream is read up to each ".\\r\\n" (or ~1 KB at a time where there is
none), and a lone dot is the end as before. What the client sees is aiosmtpd's: the same
replies (354, 250, 500 for a line over 1001 bytes, 552 over the size limit, 503, 501),
the same content (dot-stuffing removed), the same end of DATA.
tests/bot/doors/test_smtp_data.py sends the same bytes to both and compares.
"""
from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import MISSING, SMTP, syntax

log = logging.getLogger("lesbot.smtp")

TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH = "552 Error: Too much mail data"


class Session(SMTP):
    def __init__(self, handler, **kwargs):
        if kwargs.get("decode_data"):
            raise ValueError("lesbot keeps mail as the bytes received: decode_data must be False")
        super().__init__(handler, **kwargs)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content, problem = await read_data(self._reader, self.data_size_limit, self.line_length_limit)
        except asyncio.CancelledError:
            log.info("connection lost during DATA")
            self._writer.close()
            raise
        except asyncio.IncompleteReadError:
            self._writer.close()         # the client went away mid-message
            return
        if problem:
            await self.push(problem)
            self._set_post_data_state()
            return
        self.envelope.original_content = self.envelope.content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


async def read_data(reader: asyncio.StreamReader, size_limit: int | None,
                    line_limit: int) -> tuple[bytes, str]:
    """The message up to the lone dot, dot-stuffing removed: (content, "") or (b"", the error
    reply). Over a limit, the rest is read and dropped, as aiosmtpd does."""
    kept: list[bytes] = []
    size = 0                      # bytes before the end line, as aiosmtpd counts them
    tail = b""                    # the last bytes read: where the end line is recognised
    problem = ""
    while True:
        try:
            chunk = await reader.readuntil(b".\r\n")
            candidate = True
        except asyncio.LimitOverrunError as e:
            chunk = await reader.readexactly(e.consumed)
            candidate = False
        tail = (tail + chunk)[-5:]
        end = candidate and (tail == b"\r\n.\r\n" or (size == 0 and chunk == b".\r\n"))
        if end:
            chunk = chunk[:-3]            # the end line is not part of the message
        size += len(chunk)
        if not problem:
            kept.append(chunk)
            if size_limit and size > size_limit:
                problem = _first_problem(b"".join(kept), size_limit, line_limit)
                kept = []
        if end:
            break
    if problem:
        return b"", problem
    data = b"".join(kept)
    if any(len(line) > line_limit - 2 for line in data.split(b"\r\n")):
        return b"", TOO_LONG
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\r\n.", b"\r\n"), ""


def _first_problem(data: bytes, size_limit: int, line_limit: int) -> str:
    """Over the size limit: which limit aiosmtpd would have met first, line by line."""
    size = 0
    for line in data.split(b"\r\n"):
        if len(line) > line_limit:
            return TOO_LONG         # its reader stops before the line ends: counted as too long at once
        size += len(line) + 2
        if size > size_limit:
            return TOO_MUCH         # the size is looked at before the length of the line just read
        if len(line) > line_limit - 2:
            return TOO_LONG
    return TOO_MUCH
