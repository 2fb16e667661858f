"""SigningKey and HKDF derivation (``bridgekit/signing.py``)."""

from __future__ import annotations

import pytest

from bridgekit.signing import SigningKey, derive_key


def test_a_tag_verifies_for_its_message_only() -> None:
    key = SigningKey(b"k" * 32)
    tag = key.sign(b"message", length=12)
    assert len(tag) == 12
    assert key.verify(b"message", tag)
    assert not key.verify(b"massage", tag)
    assert not key.verify(b"message", bytes(12))
    assert not SigningKey(b"j" * 32).verify(b"message", tag)


def test_tags_shorter_than_96_bits_are_neither_made_nor_accepted() -> None:
    key = SigningKey(b"k" * 32)
    with pytest.raises(ValueError, match="12 to 32"):
        key.sign(b"message", length=8)
    assert not key.verify(b"message", key.sign(b"message")[:8])
    assert not key.verify(b"message", b"")


def test_previous_keys_still_verify_and_never_sign() -> None:
    old = SigningKey(b"o" * 32)
    rotated = SigningKey(b"n" * 32, previous=(old.current,))
    assert rotated.verify(b"m", old.sign(b"m"))
    assert rotated.sign(b"m") != old.sign(b"m")


def test_derivation_is_stable_and_separates_connectors_and_purposes() -> None:
    material = b"m" * 32
    key = derive_key(material, connector="libera", purpose="media-links")
    assert key == derive_key(material, connector="libera", purpose="media-links")
    assert len(key) == 32
    others = {derive_key(material, connector="oftc", purpose="media-links"),
              derive_key(material, connector="libera", purpose="other"),
              derive_key(b"n" * 32, connector="libera", purpose="media-links"), material}
    assert key not in others


def test_the_key_is_never_shown() -> None:
    assert "kkkk" not in repr(SigningKey(b"k" * 32))
