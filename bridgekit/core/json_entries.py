"""A transaction body's JSON read as text: the exact text of each entry, with nesting bounded.

Storing each event as the homeserver wrote it keeps it byte for byte, and saves encoding every
event again (which cost more than all the rest of the parsing). So the body's top-level object is
read key by key with the decoder's own scanner, and the lists named by the caller are split entry
by entry, each entry's text kept next to its value.

Some valid JSON is too deep to handle: nesting past the decoder's recursion limit, or close
enough to it that re-encoding in a deeper stack would fail. Such a value is never decoded (or is
dropped): it stands as a :class:`TooDeep` holding its text, found without recursion
(:func:`skip_value`), so the entry can be rejected alone. Pure, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 100
"""Deepest nesting of arrays and objects accepted in one entry. Real events are a few levels deep;
the JSON decoder's limit is the interpreter's recursion limit (1000 frames, shared with the
caller's stack)."""


# The decoder's C scanner parses one JSON value at an index and says where it ended.
_scan_value: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BLANKS = " \t\n\r"


def _skip_whitespace(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


class TooDeep:
    """Stands for a value nested deeper than :data:`MAX_DEPTH` (never decoded, or dropped)."""

    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw


@dataclass(frozen=True, slots=True)
class SplitBody:
    """A JSON object read by :func:`split_object`: its values, and the text each came from."""

    document: dict[str, Any]
    """The top-level object; values nested too deep are :class:`TooDeep`."""
    entries: dict[str, list[str]]
    """For each list section, the exact text of each of its entries."""
    raws: dict[str, str]
    """For each other top-level key, the exact text of its value."""

    def raw(self, key: str) -> str:
        return self.raws[key]


class NotAnObject(Exception):
    """The text is JSON (or may be) but not an object: the caller decides what it was."""


def split_object(text: str, lists_to_split: Collection[str]) -> SplitBody:
    """Read the JSON object ``text``, splitting the lists under the keys in ``lists_to_split``
    entry by entry. Raises :class:`NotAnObject`, or ValueError, StopIteration or IndexError
    (where the decoder's scanner stopped) when the text is not JSON."""
    index = _skip_whitespace(text, 0)
    if text[index] != "{":
        raise NotAnObject
    split = SplitBody({}, {}, {})
    index = _skip_whitespace(text, index + 1)
    if text[index] == "}":
        return split
    while True:
        key, index = _read_key(text, index)
        index = _skip_whitespace(text, index)
        if key in lists_to_split and text[index] == "[":
            split.document[key], split.entries[key], index = _split_list(text, index)
        else:
            start = index
            split.document[key], index = _scan_bounded(text, index)
            split.raws[key] = text[start:index]
        index = _skip_whitespace(text, index)
        if text[index] == "}":
            break
        if text[index] != ",":
            raise ValueError(f"expected ',' or '}}' at {index}")
        index = _skip_whitespace(text, index + 1)
    if _skip_whitespace(text, index + 1) != len(text):
        raise ValueError("extra data after the object")
    return split


def _split_list(text: str, index: int) -> tuple[list[Any], list[str], int]:
    values: list[Any] = []
    raws: list[str] = []
    index = _skip_whitespace(text, index + 1)
    if text[index] == "]":
        return values, raws, index + 1
    while True:
        start = index
        try:
            value, index = _scan_value(text, index)
        except RecursionError:
            value, index = _too_deep(text, start)
        # Counting brackets is cheap and bounds the depth from above: only a value with more
        # than MAX_DEPTH of them (brackets in strings count too) is measured exactly.
        if text.count("{", start, index) + text.count("[", start, index) > MAX_DEPTH and depth(value) > MAX_DEPTH:
            value = TooDeep(text[start:index])
        values.append(value)
        raws.append(text[start:index])
        # Homeservers send compact JSON: look at the next character before paying for a
        # whitespace search.
        if text[index] in _BLANKS:
            index = _skip_whitespace(text, index)
        if text[index] == "]":
            return values, raws, index + 1
        if text[index] != ",":
            raise ValueError(f"expected ',' or ']' at {index}")
        index += 1
        if text[index] in _BLANKS:
            index = _skip_whitespace(text, index)


def _scan_bounded(text: str, index: int) -> tuple[Any, int]:
    """The value at ``index`` and where it ends; :class:`TooDeep` in its place when it nests
    deeper than :data:`MAX_DEPTH`. (:func:`_split_list` does the same inline: it runs per event.)"""
    try:
        value, end = _scan_value(text, index)
    except RecursionError:
        return _too_deep(text, index)
    if text.count("{", index, end) + text.count("[", index, end) > MAX_DEPTH and depth(value) > MAX_DEPTH:
        return TooDeep(text[index:end]), end
    return value, end


def _too_deep(text: str, index: int) -> tuple[TooDeep, int]:
    end = skip_value(text, index)
    return TooDeep(text[index:end]), end


def skip_value(text: str, index: int) -> int:
    """Where the JSON value at ``index`` ends, found without recursion (a value too deep for the
    decoder). Raises ValueError (or IndexError at the end of the text) when it is not JSON."""
    closers: list[str] = []
    while True:
        index = _skip_whitespace(text, index)
        opener = text[index]
        if opener in "[{":
            closers.append("]" if opener == "[" else "}")
            index = _skip_whitespace(text, index + 1)
            if text[index] == closers[-1]:
                closers.pop()
                index += 1
            else:
                if opener == "{":
                    _key, index = _read_key(text, index)
                continue
        else:
            try:  # a string, number or literal: no recursion
                _scalar, index = _scan_value(text, index)
            except StopIteration:
                raise ValueError(f"expected a value at {index}") from None
        # After a value: close what ends here, then expect the next value of the innermost one.
        while True:
            if not closers:
                return index
            index = _skip_whitespace(text, index)
            if text[index] == closers[-1]:
                closers.pop()
                index += 1
            elif text[index] == ",":
                index += 1
                if closers[-1] == "}":
                    _key, index = _read_key(text, _skip_whitespace(text, index))
                break
            else:
                raise ValueError(f"expected ',' or {closers[-1]!r} at {index}")


def _read_key(text: str, index: int) -> tuple[str, int]:
    """An object's key at ``index``, and where its value may start (after the ``:``)."""
    if text[index] != '"':
        raise ValueError(f"expected a key at {index}")
    key, index = _scan_value(text, index)
    index = _skip_whitespace(text, index)
    if text[index] != ":":
        raise ValueError(f"expected ':' at {index}")
    return key, index + 1


def depth(value: object) -> int:
    """How deeply arrays and objects nest in a decoded value (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest


__all__ = ["MAX_DEPTH", "NotAnObject", "SplitBody", "TooDeep", "depth", "skip_value", "split_object"]
