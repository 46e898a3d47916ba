"""A tiny SMTP server on 127.0.0.1 for tests, on asyncio (``smtpd`` is deprecated, then gone).

It speaks enough of RFC 5321 for ``smtplib``: EHLO/HELO, AUTH PLAIN and LOGIN (with or without an
initial response; ``mechanisms`` chooses which are offered), MAIL FROM, RCPT TO, DATA
(dot-unstuffed), RSET, NOOP, QUIT. No STARTTLS.
Use it in an async test::

    async with FakeSmtp(user="u", password="p") as smtp:
        ...  # send to 127.0.0.1:smtp.port
        smtp.received[0].message["Subject"]

With ``user`` set, MAIL FROM without a successful AUTH is refused (530). Recipients in
``refused`` get 550, those in ``deferred`` 450; ``closed_for_now = True`` greets with 421 and
hangs up, like a server in maintenance.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType

HOST = "127.0.0.1"
MAX_LINE = 64 * 1024
_Reply = Callable[..., Awaitable[None]]
_ReadLine = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    user: str | None

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)


def _address(argument: str) -> str:
    """``FROM:<a@b> SIZE=1`` → ``a@b``."""
    _, _, rest = argument.partition(":")
    return rest.strip().split(" ", 1)[0].strip("<>")


def _b64(text: str) -> str | None:
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


@dataclass
class FakeSmtp:
    user: str | None = None
    password: str | None = None
    mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")
    refused: set[str] = field(default_factory=set)
    deferred: set[str] = field(default_factory=set)
    closed_for_now: bool = False
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _sessions: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> FakeSmtp:
        self._server = await asyncio.start_server(self._session, HOST, 0, limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    @property
    def url(self) -> str:
        if self.user is None:
            return f"smtp://{HOST}:{self.port}"
        return f"smtp://{self.user}:{self.password}@{HOST}:{self.port}"

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(*lines: str) -> None:
            *first, last = lines
            text = "".join(f"{line[:3]}-{line[4:]}\r\n" for line in first) + f"{last}\r\n"
            writer.write(text.encode())
            await writer.drain()

        async def read_line() -> str:
            raw = await reader.readline()
            if not raw:
                raise ConnectionError("client went away")
            return raw.decode("utf-8", "replace").rstrip("\r\n")

        if self.closed_for_now:
            await reply("421 fake-smtp closed for maintenance")
            return
        await reply("220 fake-smtp ESMTP ready")
        authenticated: str | None = None
        mail_from: str | None = None
        rcpt_to: list[str] = []
        while True:
            line = await read_line()
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                offers = [f"250 AUTH {' '.join(self.mechanisms)}"] if self.user else []
                await reply("250 fake-smtp", "250 8BITMIME", "250 SIZE 10240000", *offers)
            elif verb == "HELO":
                await reply("250 fake-smtp")
            elif verb == "AUTH" and self.user is not None:
                authenticated = await self._auth(argument, reply, read_line)
            elif verb == "MAIL":
                if self.user is not None and authenticated is None:
                    await reply("530 5.7.0 Authentication required")
                    continue
                mail_from, rcpt_to = _address(argument), []
                await reply("250 2.1.0 OK")
            elif verb == "RCPT":
                if mail_from is None:
                    await reply("503 5.5.1 MAIL first")
                    continue
                address = _address(argument)
                if address in self.refused:
                    await reply("550 5.1.1 No such user")
                elif address in self.deferred:
                    await reply("450 4.2.1 Mailbox busy, try again later")
                else:
                    rcpt_to.append(address)
                    await reply("250 2.1.5 OK")
            elif verb == "DATA":
                if mail_from is None or not rcpt_to:
                    await reply("503 5.5.1 RCPT first")
                    continue
                await reply("354 End data with <CR><LF>.<CR><LF>")
                data = await self._data(reader)
                self.received.append(Received(mail_from, tuple(rcpt_to), data, authenticated))
                mail_from, rcpt_to = None, []
                await reply("250 2.0.0 OK queued")
            elif verb == "RSET":
                mail_from, rcpt_to = None, []
                await reply("250 2.0.0 OK")
            elif verb == "NOOP":
                await reply("250 2.0.0 OK")
            elif verb == "QUIT":
                await reply("221 2.0.0 Bye")
                return
            else:
                await reply("502 5.5.2 Command not recognised")

    async def _auth(self, argument: str, reply: _Reply, read_line: _ReadLine) -> str | None:
        mechanism, _, initial = argument.partition(" ")
        mechanism = mechanism.upper()
        if mechanism not in self.mechanisms:
            await reply("504 5.5.4 Unrecognised authentication type")
            return None
        if mechanism == "PLAIN":
            if not initial:
                await reply("334 ")
                initial = await read_line()
            decoded = _b64(initial) or ""
            parts = decoded.split("\0")
            user, password = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        elif mechanism == "LOGIN":
            if not initial:
                await reply("334 " + base64.b64encode(b"Username:").decode())
                initial = await read_line()
            user = _b64(initial) or ""
            await reply("334 " + base64.b64encode(b"Password:").decode())
            password = _b64(await read_line()) or ""
        else:
            await reply("504 5.5.4 Unrecognised authentication type")
            return None
        if (user, password) != (self.user, self.password):
            await reply("535 5.7.8 Authentication credentials invalid")
            return None
        self.logins.append(user)
        await reply("235 2.7.0 Authentication successful")
        return user

    @staticmethod
    async def _data(reader: asyncio.StreamReader) -> bytes:
        lines: list[bytes] = []
        while True:
            raw = await reader.readline()
            if not raw:
                raise ConnectionError("client went away during DATA")
            if raw in (b".\r\n", b".\n"):
                return b"".join(lines)
            lines.append(raw[1:] if raw.startswith(b".") else raw)
