"""IRC case folding by the network's CASEMAPPING: which nicks and channels are one ghost or portal."""

from __future__ import annotations

import pytest

from bridges.irc.casemapping import casefold_irc
from tests.unit.test_naming import GENERATED  # strings that hit every branch of the escaping


def test_the_bracketed_spelling_the_server_treats_as_the_same_nick_folds_the_same() -> None:
    assert casefold_irc("Tom[m]|Away🎉", "rfc1459") == casefold_irc("TOM{M}\\away🎉") == "tom{m}|away🎉"


def test_rfc1459_folds_bot_brackets_together_but_ascii_does_not() -> None:
    assert casefold_irc("[Bot]") == casefold_irc("{bot}") == "{bot}"
    assert casefold_irc("[Bot]", "ascii") == "[bot]" != casefold_irc("{bot}", "ascii")
    assert casefold_irc("#Python") == casefold_irc("#python")


def test_tilde_and_caret_fold_only_under_rfc1459() -> None:
    assert casefold_irc("A~\\", "rfc1459") == "a^|"
    assert casefold_irc("A~\\", "strict-rfc1459") == "a~|"
    assert casefold_irc("A~\\", "ascii") == "a~\\"
    # Non-ASCII is left alone by the byte-oriented mappings.
    assert casefold_irc("ÉMILE", "rfc1459") == "Émile"


def test_rfc7613_folds_unicode_case_and_width() -> None:
    assert casefold_irc("ÉMILE", "rfc7613") == "émile"
    assert casefold_irc("Straße", "rfc7613") == casefold_irc("STRASSE", "rfc7613")
    assert casefold_irc("ＡＢＣ", "rfc7613") == "abc"  # full-width letters
    assert casefold_irc("[Bot]", "rfc7613") == "[bot]"


def test_casemapping_names_are_matched_case_insensitively() -> None:
    assert casefold_irc("[A]", "RFC1459") == "{a}"


def test_an_unknown_casemapping_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown IRC CASEMAPPING 'rfc9999'.*rfc1459"):
        casefold_irc("alice", "rfc9999")


@pytest.mark.parametrize("casemapping", ["ascii", "rfc1459", "strict-rfc1459", "rfc7613"])
def test_folding_is_idempotent(casemapping: str) -> None:
    for text in GENERATED:
        once = casefold_irc(text, casemapping)
        assert casefold_irc(once, casemapping) == once
