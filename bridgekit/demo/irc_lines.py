"""One IRC line as a client receives it: parsed per RFC 1459 with IRCv3 message tags, keeping the
exact bytes that came off the wire (so a test can check what a bridge really sent)."""

from __future__ import annotations

from dataclasses import dataclass, field

_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


def _unescape_tag_value(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, None)
        if nxt is not None:  # a trailing lone backslash is dropped
            out.append(_TAG_ESCAPES.get(nxt, nxt))
    return "".join(out)


def decode_line(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


@dataclass(frozen=True, eq=False)
class Line:
    """One line from the server, parsed per RFC 1459 with IRCv3 message tags."""

    command: str
    """Upper-case command or three-digit numeric (``"PRIVMSG"``, ``"001"``)."""
    source: str | None
    """The sender's nick (or the server's name); None when the line has no prefix."""
    user: str | None
    host: str | None
    params: tuple[str, ...]
    tags: dict[str, str]
    """Unescaped tag values; a tag without a value maps to ``""``."""
    raw_bytes: bytes
    """The line exactly as received, trailing CR LF included."""
    raw: str
    """The decoded line without its terminator."""
    received_at: float = field(default=0.0, compare=False)
    """``time.monotonic()`` when the line was read."""

    @property
    def target(self) -> str | None:
        """The first parameter (a message's target, a JOIN's channel, a numeric's own nick)."""
        return self.params[0] if self.params else None

    @property
    def text(self) -> str:
        """The last parameter (a message's text, a PART/QUIT/KICK reason); ``""`` if none."""
        return self.params[-1] if self.params else ""

    @property
    def untagged_bytes(self) -> bytes:
        """``raw_bytes`` without the ``@tags`` section: the part the 512-byte limit applies to
        when message tags are negotiated."""
        if self.raw_bytes.startswith(b"@"):
            _, _, rest = self.raw_bytes.partition(b" ")
            return rest.lstrip(b" ")
        return self.raw_bytes

    @property
    def ctcp(self) -> tuple[str, str] | None:
        """``(command, argument)`` of a CTCP PRIVMSG/NOTICE (``("ACTION", "waves")``), else None."""
        if self.command not in ("PRIVMSG", "NOTICE") or len(self.params) < 2:
            return None
        text = self.text
        if not text.startswith("\x01"):
            return None
        body = text[1:-1] if text.endswith("\x01") and len(text) > 1 else text[1:]
        command, _, argument = body.partition(" ")
        return command.upper(), argument

    @property
    def action(self) -> str | None:
        """The text of a ``/me`` (CTCP ACTION), else None."""
        ctcp = self.ctcp
        return ctcp[1] if ctcp is not None and ctcp[0] == "ACTION" and self.command == "PRIVMSG" else None

    def is_from(self, nick: str) -> bool:
        return self.source is not None and self.source.casefold() == nick.casefold()

    def __str__(self) -> str:
        return self.raw


def parse_line(raw_bytes: bytes, text: str | None = None, received_at: float = 0.0) -> Line:
    """Parse one line (``text`` is its decoded form without the terminator, if already known)."""
    if text is None:
        text = decode_line(raw_bytes.rstrip(b"\r\n"))
    rest = text
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        tag_part, _, rest = rest[1:].partition(" ")
        for item in tag_part.split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = _unescape_tag_value(value)
        rest = rest.lstrip(" ")
    source = user = host = None
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
        nick_user, _, host_part = prefix.partition("@")
        nick, _, user_part = nick_user.partition("!")
        source, user, host = nick, user_part or None, host_part or None
    command, _, rest = rest.partition(" ")
    params: list[str] = []
    while rest:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        param, _, rest = rest.partition(" ")
        params.append(param)
    return Line(
        command=command.upper(), source=source, user=user, host=host, params=tuple(params), tags=tags,
        raw_bytes=raw_bytes, raw=text, received_at=received_at,
    )


