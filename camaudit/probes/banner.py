"""Server-speaks-first banners: telnet (``telnet_banner``) and FTP (``ftp_banner``).

A telnet server usually opens with option negotiation (RFC 854: IAC DO/WILL ...) before its
prompt, such as ``192.0.0.64 login:`` (Hikvision, fingerprinting.md 4.1, recog telnet_banners).
camaudit refuses every option (WONT/DONT, which RFC 854 says a peer must accept), strips the
negotiation bytes and keeps the text. An FTP greeting is ``220 <text>`` (RFC 959 section 4.2);
the value kept is the text without the reply code, which is how recog's ftp_banners examples
read (corpus ``recog-axis-ftp-1``: ``Axis 2100 Network Camera 2.43 Nov 04 2008 ready.``).

The pure helpers (``telnet_split``, ``banner_text``, ``classify``) are separate from the one
coroutine that reads from a socket.
"""

from __future__ import annotations

import asyncio
import logging
import re

from . import Deadline, PortContext, ReadResult

log = logging.getLogger(__name__)

SOURCE = "banner"
#: Bytes of banner read at most: a greeting is a line or a few.
MAX_BANNER_BYTES = 4096
#: Characters kept as the observation value.
MAX_BANNER_TEXT = 2048
#: Once a banner started, stop when the server is quiet this long (it waits for our input).
BANNER_IDLE = 0.4

# RFC 854 command bytes.
IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240

_FTP_LINE = re.compile(r"^\d{3}[ -]?")
_LOGIN_PROMPT = re.compile(rb"(?:login|username|user name|password)\s*:\s*$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def telnet_split(data: bytes) -> tuple[bytes, bytes]:
    """Split telnet input into ``(text, replies)``: text without IAC sequences, and our refusals.

    DO x -> WONT x; WILL x -> DONT x; DONT/WONT need no answer; subnegotiation (SB ... IAC SE) is
    dropped; IAC IAC is a literal 0xFF. A sequence cut at the end of ``data`` is dropped.
    """
    text = bytearray()
    replies = bytearray()
    answered: set[tuple[int, int]] = set()
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte != IAC:
            text.append(byte)
            i += 1
            continue
        if i + 1 >= n:
            break
        command = data[i + 1]
        if command == IAC:
            text.append(IAC)
            i += 2
        elif command in (DO, DONT, WILL, WONT):
            if i + 2 >= n:
                break
            option = data[i + 2]
            reply = {DO: WONT, WILL: DONT}.get(command)
            if reply is not None and (command, option) not in answered:
                answered.add((command, option))
                replies += bytes((IAC, reply, option))
            i += 3
        elif command == SB:
            end = data.find(bytes((IAC, SE)), i + 2)
            if end < 0:
                break
            i = end + 2
        else:
            i += 2  # NOP, GA, AYT and friends: two bytes, no meaning for a banner
    return bytes(text), bytes(replies)


def banner_text(data: bytes, *, ftp: bool = False) -> str:
    """Printable banner text: negotiation stripped, control characters dropped, lines trimmed."""
    raw, _ = telnet_split(data)
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = [_CONTROL.sub("", line).rstrip() for line in text.split("\n")]
    if ftp:
        lines = [_FTP_LINE.sub("", line, count=1) for line in lines]
    return "\n".join(line for line in lines if line.strip()).strip()[:MAX_BANNER_TEXT]


def classify(protocol: str, data: bytes) -> str | None:
    """The observation kind for a banner, or None when it is neither telnet nor FTP."""
    if protocol == "ftp":
        return "ftp_banner"
    if protocol == "telnet":
        return "telnet_banner"
    if bytes((IAC,)) in data[:64] and any(c in data[:64] for c in (DO, DONT, WILL, WONT)):
        return "telnet_banner"
    if re.match(rb"220[ -]", data):
        return "ftp_banner"
    if _LOGIN_PROMPT.search(data.rstrip(b"\x00")):
        return "telnet_banner"
    return None


def record_banner(ctx: PortContext, data: bytes) -> None:
    """Record a banner as the kind it is; unknown server-first protocols are left alone."""
    kind = classify(ctx.protocol, data)
    if kind is None:
        log.debug("%s tcp/%d: unrecognised banner %r", ctx.address, ctx.port, data[:80])
        return
    text = banner_text(data, ftp=kind == "ftp_banner")
    if text:
        ctx.observe(kind, text, SOURCE)


async def read_banner(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    deadline: Deadline,
    *,
    first_wait: float,
) -> ReadResult:
    """Listen for a banner: nothing within ``first_wait`` gives ``why="timeout"`` and no data.

    Once bytes arrive, keep reading until the server is quiet for BANNER_IDLE, closes, the
    limit or the deadline. Telnet negotiation is refused as it comes, so that servers which wait
    for answers before their prompt go on.
    """
    buf = bytearray()
    while len(buf) < MAX_BANNER_BYTES:
        wait = min(deadline.remaining(), first_wait if not buf else BANNER_IDLE)
        if wait <= 0:
            return ReadResult(bytes(buf), "timeout")
        try:
            chunk = await asyncio.wait_for(reader.read(MAX_BANNER_BYTES - len(buf)), wait)
        except TimeoutError:
            return ReadResult(bytes(buf), "idle" if buf else "timeout")
        except ConnectionResetError:
            return ReadResult(bytes(buf), "reset")
        except OSError as exc:
            return ReadResult(bytes(buf), "error", str(exc))
        if not chunk:
            return ReadResult(bytes(buf), "eof")
        buf += chunk
        _, replies = telnet_split(chunk)
        if replies:
            try:
                writer.write(replies)
            except OSError:
                return ReadResult(bytes(buf), "reset")
    return ReadResult(bytes(buf), "limit")
