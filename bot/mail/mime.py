"""The stdlib's message tree for ordinary mail, built without its line-at-a-time parser.

email.feedparser hands every line through a generator, a deque and a check against each
boundary in force: about 2 µs a line, most of the worker's time on a plain question. Here
the lines are split once (in C), only lines starting with "--" are tested as boundaries,
and a body is joined in one go. The rules are the feedparser's own (same boundary pattern,
same newline trimming, same Message calls), for mail it reads without a defect; anything
else (a defect, message/* parts, a digest, a Unix From line, deep nesting) returns None
and the caller uses the stdlib parser. tests/bot/mail/test_mime.py holds the two equal.
"""
from __future__ import annotations

import re
from email.message import Message
from io import StringIO
from itertools import compress, count, repeat

# The feedparser's patterns (email/feedparser.py), so a line means the same thing here.
HEADER_LINE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")
BLANK = ("\n", "\r\n", "\r")


class _Unusual(Exception):
    """Mail the stdlib parser should read: it knows how to record what is odd about it."""


def message_tree(text: str, policy, max_depth: int) -> Message | None:
    """`text` is the raw message decoded as BytesParser does (ASCII, surrogateescape)."""
    lines = StringIO(text, newline="").readlines()
    dashes = list(compress(count(), map(str.startswith, lines, repeat("--"))))
    try:
        msg, _ = _Reader(lines, dashes, policy, max_depth).part(0, (), 1)
    except _Unusual:
        return None
    return msg


class _Reader:
    def __init__(self, lines, dashes, policy, max_depth):
        self.lines, self.dashes, self.policy, self.max_depth = lines, dashes, policy, max_depth
        self.at = 0                         # index into dashes: the next line that may be a boundary

    def next_end(self, i: int, ends) -> int:
        """The first line from i that one of `ends` (boundary matchers) stops at, else the end."""
        lines, dashes = self.lines, self.dashes
        k = self.at
        while k < len(dashes) and dashes[k] < i:
            k += 1
        while k < len(dashes):
            j = dashes[k]
            if _stops(lines[j], ends):
                self.at = k
                return j
            k += 1
        self.at = k
        return len(lines)

    def part(self, i: int, ends, depth: int) -> tuple[Message, int]:
        """One message or part from line i: (it, the line it stopped at)."""
        if depth > self.max_depth:
            raise _Unusual
        lines, n = self.lines, len(self.lines)
        msg = Message(policy=self.policy)
        start = i
        while True:
            if i == n:
                raise _Unusual                  # no blank line after the headers
            line = lines[i]
            if line.startswith("--") and _stops(line, ends):
                raise _Unusual
            if not HEADER_LINE.match(line):
                if line not in BLANK:
                    raise _Unusual              # MissingHeaderBodySeparatorDefect
                break
            i += 1
        self.headers(msg, lines[start:i])
        i += 1
        if msg.get_content_maintype() == "message":
            raise _Unusual
        if msg.get_content_maintype() != "multipart":
            j = self.next_end(i, ends)
            msg.set_payload("".join(lines[i:j]))
            return msg, j
        return msg, self.multipart(msg, i, ends, depth)

    def headers(self, msg: Message, block: list[str]) -> None:
        name, value = "", []
        for line in block:
            if line[0] in " \t":
                if not name:
                    raise _Unusual              # FirstHeaderLineIsContinuationDefect
                value.append(line)
                continue
            if line.startswith("From ") or line[0] == ":":
                raise _Unusual                  # Unix From line, or a header with no name
            if name:
                msg.set_raw(*self.policy.header_source_parse(value))
            name, value = line[:line.find(":")], [line]
        if name:
            msg.set_raw(*self.policy.header_source_parse(value))

    def multipart(self, msg: Message, i: int, ends, depth: int) -> int:
        boundary = msg.get_boundary()
        if boundary is None or msg.get_content_type() == "multipart/digest" or \
                str(msg.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary"):
            raise _Unusual
        mine = boundary_line(boundary)
        lines, n = self.lines, len(self.lines)
        inner = ends + (mine,)
        j = self.next_end(i, inner)
        if j == n or _stops(lines[j], ends) or mine(lines[j])[0]:
            raise _Unusual                      # StartBoundaryNotFoundDefect
        if j > i:
            preamble = lines[i:j]
            preamble[-1] = _trimmed(preamble[-1])
            msg.preamble = "".join(preamble)
        while True:
            # j is a boundary between two parts; doubled boundaries stop part()'s header loop
            child, j = self.part(j + 1, inner, depth + 1)
            msg.attach(child)
            if j == n or _stops(lines[j], ends):
                raise _Unusual                  # CloseBoundaryNotFoundDefect
            if child.get_content_maintype() == "multipart":
                if child.epilogue == "":
                    child.epilogue = None
                elif child.epilogue is not None:
                    child.epilogue = _trimmed(child.epilogue)
            elif isinstance(child._payload, str):
                child._payload = _trimmed(child._payload)
            if mine(lines[j])[0]:
                break
        k = self.next_end(j + 1, ends)
        msg.epilogue = "".join(lines[j + 1:k])        # a close with no newline is the last line
        return k


def boundary_line(boundary: str):
    """The feedparser's boundary test, re.compile('(?P<sep>' + re.escape('--' + boundary) +
    r')(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$').match, without compiling a pattern
    per message (each has its own boundary, so re's cache never helps: 0.1-0.4 ms a compile).
    Returns (closes the multipart?, the line's newline) or None."""
    sep = "--" + boundary

    def match(line: str):
        if not line.startswith(sep):
            return None
        rest = line[len(sep):]
        closes = rest.startswith("--")
        rest = (rest[2:] if closes else rest).lstrip(" \t")
        return (closes, rest) if rest in ("", "\n", "\r\n", "\r") else None
    return match


def _stops(line: str, ends) -> bool:
    """One of the boundaries in force ends the part here (the feedparser's false end of file)."""
    return any(end(line) for end in ends)


def _trimmed(text: str) -> str:
    """RFC 2046: the newline before a boundary belongs to the boundary. (The feedparser's
    NLCRE_eol.search(text) gives the same, trying every position of a long part.)"""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\r", "\n")) else text
