"""Credentials at rest: what the database holds, what the admin reads when a key is wrong or missing."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bridgekit.credentials import (
    CorruptCredentials,
    CredentialCipher,
    CredentialContextMismatch,
    CredentialError,
    UnknownCredentialKey,
    generate_key,
    key_id,
    load_key,
)
from bridgekit.errors import BridgekitError, ConfigError

LOGIN = {"username": "alice", "password": "hunter2-très-secret", "cookies": {"sid": "abc123"}}
OLD_KEY = generate_key()
NEW_KEY = generate_key()
OTHER_KEY = generate_key()


def shows_no_secret(error: BaseException, *secrets: str) -> None:
    """No message a log would print for ``error`` (its chained causes included) holds any of ``secrets``."""
    printed = []
    shown: BaseException | None = error
    while shown is not None:  # the chain as a printed traceback follows it
        printed.extend(traceback.format_exception_only(shown))
        shown = shown.__cause__ or (None if shown.__suppress_context__ else shown.__context__)
    for secret in secrets:
        assert all(secret not in line for line in printed)


# --- what is stored ---------------------------------------------------------------------------


def test_credentials_come_back_as_they_were_stored() -> None:
    cipher = CredentialCipher(NEW_KEY)
    assert cipher.decrypt(cipher.encrypt(LOGIN)) == LOGIN


def test_the_stored_text_is_versioned_ascii_without_the_credentials() -> None:
    stored = CredentialCipher(NEW_KEY).encrypt(LOGIN)
    assert stored.startswith("v1:")
    assert stored.isascii()
    assert "hunter2" not in stored
    assert "alice" not in stored


def test_the_same_credentials_encrypt_differently_each_time() -> None:
    cipher = CredentialCipher(NEW_KEY)
    first, second = cipher.encrypt(LOGIN), cipher.encrypt(LOGIN)
    assert first != second
    assert cipher.decrypt(first) == cipher.decrypt(second) == LOGIN


# --- key rotation -----------------------------------------------------------------------------


def test_after_a_key_change_old_rows_still_read_and_are_flagged_for_rotation() -> None:
    stored = CredentialCipher(OLD_KEY).encrypt(LOGIN)
    cipher = CredentialCipher(NEW_KEY, previous=[OLD_KEY])
    assert cipher.decrypt(stored) == LOGIN
    assert cipher.needs_rotation(stored)
    assert not cipher.needs_rotation(cipher.encrypt(LOGIN))


def test_rotated_rows_read_once_the_old_key_is_dropped() -> None:
    stored = CredentialCipher(OLD_KEY).encrypt(LOGIN, context="remote_session:7")
    rotated = CredentialCipher(NEW_KEY, previous=[OLD_KEY]).rotate(stored)
    only_new = CredentialCipher(NEW_KEY)
    assert only_new.decrypt(rotated, context="remote_session:7") == LOGIN
    assert not only_new.needs_rotation(rotated)
    # The binding to its row survives rotation.
    with pytest.raises(CredentialContextMismatch):
        only_new.decrypt(rotated, context="remote_session:8")


def test_rotating_a_current_row_leaves_it_unchanged() -> None:
    cipher = CredentialCipher(NEW_KEY, previous=[OLD_KEY])
    stored = cipher.encrypt(LOGIN)
    assert cipher.rotate(stored) == stored


def test_the_current_key_listed_again_as_previous_is_harmless() -> None:
    cipher = CredentialCipher(NEW_KEY, previous=[NEW_KEY, OLD_KEY])
    assert cipher.decrypt(cipher.encrypt(LOGIN)) == LOGIN


# --- refusals ---------------------------------------------------------------------------------


def test_a_row_written_with_a_key_the_bridge_lacks_is_refused_with_the_fix() -> None:
    stored = CredentialCipher(OLD_KEY).encrypt(LOGIN)
    cipher = CredentialCipher(NEW_KEY)
    with pytest.raises(UnknownCredentialKey) as caught:
        cipher.decrypt(stored)
    message = str(caught.value)
    assert "encrypted with a key this bridge does not have" in message
    assert "set BRIDGEKIT_CREDENTIALS_KEY to the key used before, or list it as a previous key" in message
    assert key_id(OLD_KEY) in message  # which key to look for
    shows_no_secret(caught.value, OLD_KEY, NEW_KEY, "hunter2")
    for operation in (cipher.needs_rotation, cipher.rotate):
        with pytest.raises(UnknownCredentialKey):
            operation(stored)


def flip_one_character(stored: str, position: int) -> str:
    replacement = "A" if stored[position] != "A" else "B"
    return stored[:position] + replacement + stored[position + 1:]


@pytest.mark.parametrize("position", [20, 60, -10], ids=["header", "ciphertext", "signature"])
def test_an_altered_row_is_refused(position: int) -> None:
    cipher = CredentialCipher(NEW_KEY)
    stored = cipher.encrypt(LOGIN)
    with pytest.raises(CorruptCredentials, match="damaged or were altered") as caught:
        cipher.decrypt(flip_one_character(stored, position))
    shows_no_secret(caught.value, NEW_KEY, "hunter2")


@pytest.mark.parametrize("stored", [
    "", "hunter2", '["password", "hunter2"]', "v2:abcdef01:gAAAA", "v1:", "v1:{kid}", "v1:{kid}:", "v1:{kid}:gAAAAé",
])
def test_values_that_are_not_stored_credentials_are_refused_as_corrupt(stored: str) -> None:
    cipher = CredentialCipher(NEW_KEY)
    with pytest.raises(CorruptCredentials) as caught:
        cipher.decrypt(stored.format(kid=key_id(NEW_KEY)))
    shows_no_secret(caught.value, NEW_KEY)


def test_a_truncated_row_is_refused() -> None:
    cipher = CredentialCipher(NEW_KEY)
    with pytest.raises(CorruptCredentials):
        cipher.decrypt(cipher.encrypt(LOGIN)[:-20])


def test_credentials_copied_into_another_row_are_refused() -> None:
    cipher = CredentialCipher(NEW_KEY)
    alice_row = cipher.encrypt(LOGIN, context="remote_session:1")
    with pytest.raises(CredentialContextMismatch, match="remote_session:2") as caught:
        cipher.decrypt(alice_row, context="remote_session:2")
    shows_no_secret(caught.value, NEW_KEY, "hunter2", "alice")


@pytest.mark.parametrize(("written", "read"), [("remote_session:1", None), (None, "remote_session:1")])
def test_a_context_is_needed_exactly_when_one_was_given(written: str | None, read: str | None) -> None:
    cipher = CredentialCipher(NEW_KEY)
    with pytest.raises(CredentialContextMismatch):
        cipher.decrypt(cipher.encrypt(LOGIN, context=written), context=read)


def test_every_refusal_is_a_bridgekit_credential_error() -> None:
    assert issubclass(UnknownCredentialKey, CredentialError)
    assert issubclass(CorruptCredentials, CredentialError)
    assert issubclass(CredentialContextMismatch, CredentialError)
    assert issubclass(CredentialError, BridgekitError)


# --- keys never shown -------------------------------------------------------------------------


def test_the_cipher_repr_shows_no_key() -> None:
    shown = repr(CredentialCipher(NEW_KEY, previous=[OLD_KEY]))
    for key in (NEW_KEY, OLD_KEY):
        assert key not in shown
        assert key[:8] not in shown
    assert key_id(NEW_KEY) in shown


def test_generated_keys_are_fresh_and_usable() -> None:
    first, second = generate_key(), generate_key()
    assert first != second
    assert load_key(configured=first, environ={}) == first
    CredentialCipher(first, previous=[second])


# --- where the key comes from -----------------------------------------------------------------


def test_the_environment_key_wins_over_the_configured_one() -> None:
    assert load_key(configured=OLD_KEY, environ={"BRIDGEKIT_CREDENTIALS_KEY": NEW_KEY}) == NEW_KEY


def test_the_configured_key_is_used_when_the_environment_has_none() -> None:
    assert load_key(configured=OLD_KEY, environ={}) == OLD_KEY
    assert load_key(configured=OLD_KEY, environ={"BRIDGEKIT_CREDENTIALS_KEY": "  "}) == OLD_KEY


def test_a_key_file_is_read_and_stripped_and_wins_over_the_config(tmp_path: Path) -> None:
    secret_file = tmp_path / "credentials_key"
    secret_file.write_text(f"\n  {NEW_KEY}\n", encoding="utf-8")
    environ = {"BRIDGEKIT_CREDENTIALS_KEY_FILE": str(secret_file)}
    assert load_key(configured=OLD_KEY, environ=environ) == NEW_KEY


def test_setting_both_the_key_and_a_key_file_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "credentials_key"
    secret_file.write_text(NEW_KEY, encoding="utf-8")
    environ = {"BRIDGEKIT_CREDENTIALS_KEY": NEW_KEY, "BRIDGEKIT_CREDENTIALS_KEY_FILE": str(secret_file)}
    with pytest.raises(ConfigError, match="set only one of them") as caught:
        load_key(configured=None, environ=environ)
    shows_no_secret(caught.value, NEW_KEY)


@pytest.mark.parametrize("contents", [None, ""], ids=["missing", "empty"])
def test_a_key_file_that_is_missing_or_empty_is_named(tmp_path: Path, contents: str | None) -> None:
    secret_file = tmp_path / "credentials_key"
    if contents is not None:
        secret_file.write_text(contents, encoding="utf-8")
    with pytest.raises(ConfigError, match=str(secret_file)):
        load_key(configured=NEW_KEY, environ={"BRIDGEKIT_CREDENTIALS_KEY_FILE": str(secret_file)})


@pytest.mark.parametrize("configured", [None, "", "   "])
def test_no_key_anywhere_says_how_to_make_one(configured: str | None) -> None:
    with pytest.raises(ConfigError, match="generate one with: bridgekit generate-key") as caught:
        load_key(configured=configured, environ={})
    assert "BRIDGEKIT_CREDENTIALS_KEY" in str(caught.value)


MALFORMED = {
    "too short": NEW_KEY[:22],
    "too long": generate_key()[:-1] + generate_key(),
    "not base64": "this is not a key at all, not even close!!!=",
    "a passphrase": "correct horse battery staple",
    "non-ascii": "ключ" * 11,
    "missing padding": NEW_KEY.rstrip("="),
}


@pytest.mark.parametrize("key", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_key_is_refused_naming_its_source_but_not_its_value(key: str) -> None:
    with pytest.raises(ConfigError, match="BRIDGEKIT_CREDENTIALS_KEY is not a valid credentials key") as caught:
        load_key(configured=None, environ={"BRIDGEKIT_CREDENTIALS_KEY": key})
    assert "generate one with: bridgekit generate-key" in str(caught.value)
    shows_no_secret(caught.value, key, key[:10])


def test_a_malformed_configured_key_is_named_as_the_config_one() -> None:
    with pytest.raises(ConfigError, match=r"in the config is not a valid credentials key.*16 bytes, not 32"):
        load_key(configured=NEW_KEY[:22] + "==", environ={})


def test_a_malformed_previous_key_is_named_by_its_position() -> None:
    with pytest.raises(ConfigError, match="previous credentials key #2 is not a valid") as caught:
        CredentialCipher(NEW_KEY, previous=[OLD_KEY, "oops"])
    shows_no_secret(caught.value, NEW_KEY, OLD_KEY, "oops")


def test_one_key_passed_as_the_previous_keys_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="sequence of keys"):
        CredentialCipher(NEW_KEY, previous=OLD_KEY)


def test_a_value_sealed_with_the_key_but_holding_no_credentials_mapping_is_refused() -> None:
    # Written by hand, as another program holding the key might.
    foreign = Fernet(NEW_KEY.encode()).encrypt(b'["alice", "hunter2"]').decode()
    with pytest.raises(CorruptCredentials, match="do not hold a credentials mapping") as caught:
        CredentialCipher(NEW_KEY).decrypt(f"v1:{key_id(NEW_KEY)}:{foreign}")
    shows_no_secret(caught.value, NEW_KEY, "hunter2")
