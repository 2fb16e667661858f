"""Nicks mentioned in IRC lines, turned into Matrix pills and ``m.mentions`` user IDs.

An IRC user writes ``alice[m]: hi``; the Matrix user should get a notification and see a pill.
Mentions are found in the *plain* text (formatting codes removed), because a nick is a nick however
it is styled. Two entry points:

* :func:`irc_message_to_matrix` is what the bridge uses for an IRC line: formatting and pills in one
  ``formatted_body`` (the mentions become link spans that :func:`bridges.irc.formatting_to_matrix.irc_to_matrix`
  nests with the formatting tags).
* :func:`irc_mentions` does the same for text already known to be plain.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from bridges.irc.formatting import LinkSpan, strip_formatting
from bridges.irc.formatting_to_matrix import irc_to_matrix
from bridges.irc.nicks import NICK_CHARS, NICK_FIRST_CHARS

MATRIX_TO = "https://matrix.to/#/"

_NICK_RUN = re.compile("[" + re.escape("".join(sorted(NICK_CHARS))) + "]+")
_URL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.)\S+", re.IGNORECASE)
_EDGE_PUNCTUATION = "[]{}|\\^`"
"""Nick characters also used as punctuation around a name: ``[alice]``, ``{bob}``."""

NickLookup = Callable[[str], str | None]
"""Casefolded nick -> the Matrix user ID it belongs to, or None for nicks not to be pilled."""


@dataclass(frozen=True, slots=True)
class Mention:
    """A nick at ``text[start:end]`` (as written) that belongs to ``user_id``."""

    start: int
    end: int
    nick: str
    user_id: str


def find_mentions(text: str, nick_to_user: NickLookup, *, casefold: Callable[[str], str]) -> list[Mention]:
    """Known nicks in plain ``text``, matched as whole words, compared after ``casefold``.

    ``nick_to_user`` is called with the folded nick (fold by the network's CASEMAPPING). A whole
    run of nick characters is tried first (``alice[m]``), then without bracket-like punctuation
    around it (``[alice]``). Words inside URLs and the local part of e-mail addresses are not
    mentions.
    """
    urls = [match.span() for match in _URL.finditer(text)]
    mentions: list[Mention] = []
    for run in _NICK_RUN.finditer(text):
        if text[run.end() : run.end() + 1] == "@" or any(start <= run.start() < end for start, end in urls):
            continue
        mention = _mention_in(run, nick_to_user, casefold)
        if mention is not None:
            mentions.append(mention)
    return mentions


def irc_mentions(
    text: str, nick_to_user: NickLookup, *, casefold: Callable[[str], str]
) -> tuple[str, str | None, list[str]]:
    """``(text unchanged, HTML with pills or None, mentioned user IDs)`` for plain text.

    Everything outside the pills is HTML-escaped. The user IDs (each once, in order of first
    mention) are for the event's ``m.mentions``.
    """
    mentions = find_mentions(text, nick_to_user, casefold=casefold)
    if not mentions:
        return text, None, []
    out: list[str] = []
    position = 0
    for mention in mentions:
        out.append(html.escape(text[position : mention.start]))
        out.append(f'<a href="{html.escape(pill_href(mention.user_id))}">{html.escape(mention.nick)}</a>')
        position = mention.end
    out.append(html.escape(text[position:]))
    return text, "".join(out), _user_ids(mentions)


def irc_message_to_matrix(
    text: str, nick_to_user: NickLookup, *, casefold: Callable[[str], str]
) -> tuple[str, str | None, list[str]]:
    """An IRC line (with formatting codes) as ``(body, formatted_body or None, mentioned user IDs)``."""
    mentions = find_mentions(strip_formatting(text), nick_to_user, casefold=casefold)
    links = [LinkSpan(mention.start, mention.end, pill_href(mention.user_id)) for mention in mentions]
    body, formatted = irc_to_matrix(text, links=links)
    return body, formatted, _user_ids(mentions)


def pill_href(user_id: str) -> str:
    """The matrix.to link clients render as a pill for ``user_id`` (percent-encoded, not HTML-escaped)."""
    return MATRIX_TO + quote(user_id, safe="@:=+/[]")


def _mention_in(run: re.Match[str], nick_to_user: NickLookup, casefold: Callable[[str], str]) -> Mention | None:
    word = run.group()
    trimmed = word.strip(_EDGE_PUNCTUATION)
    offset = len(word) - len(word.lstrip(_EDGE_PUNCTUATION))
    candidates = [(word, run.start())] if trimmed == word else [(word, run.start()), (trimmed, run.start() + offset)]
    for candidate, start in candidates:
        if not candidate or candidate[0] not in NICK_FIRST_CHARS:
            continue
        user_id = nick_to_user(casefold(candidate))
        if user_id is not None:
            return Mention(start, start + len(candidate), candidate, user_id)
    return None


def _user_ids(mentions: list[Mention]) -> list[str]:
    return list(dict.fromkeys(mention.user_id for mention in mentions))
