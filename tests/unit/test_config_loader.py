"""Loading the config file: what an admin sees when it is right, wrong, overridden or misspelt."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bridgekit.config_loader import LoadedConfig, load_config, load_tokens
from bridgekit.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config.yaml"


def problems_of(path: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    return str(caught.value)


# --- valid files ------------------------------------------------------------------------------


def test_a_valid_file_is_read_with_its_values(config_file: Path) -> None:
    write(config_file, """
homeserver:
  url: http://synapse:8008
  server_name: example.org
appservice:
  listen: {port: 8080}
connectors:
  irc:
    networks: [libera]
""")
    loaded = load_config(config_file, environ={})
    assert loaded.config.homeserver.server_name == "example.org"
    assert loaded.config.appservice.listen.port == 8080
    assert loaded.config.connectors["irc"].settings() == {"networks": ["libera"]}
    assert loaded.warnings == ()
    assert loaded.path == config_file


def test_an_empty_file_means_every_default(config_file: Path) -> None:
    write(config_file, "")
    assert load_config(config_file, environ={}).config.appservice.id == "bridgekit"


def test_a_section_with_nothing_under_it_means_its_defaults(config_file: Path) -> None:
    write(config_file, "homeserver:\nconnectors:\n  irc:\n")
    config = load_config(config_file, environ={}).config
    assert config.homeserver.url == "http://127.0.0.1:8008"
    assert config.connectors["irc"].enabled


# --- invalid files ----------------------------------------------------------------------------


def test_a_bad_value_names_the_file_the_key_and_what_is_expected(config_file: Path) -> None:
    write(config_file, "appservice:\n  listen:\n    port: abc\n")
    message = problems_of(config_file)
    assert str(config_file) in message
    assert "appservice.listen.port: expected an integer between 1 and 65535, got 'abc'" in message


def test_every_problem_is_reported_at_once(config_file: Path) -> None:
    write(config_file, """
homeserver:
  timeout_seconds: -1
  server_name: https://example.org
appservice:
  listen: {port: 70000}
logging:
  level: LOUD
""")
    message = problems_of(config_file)
    assert "4 problems" in message
    assert "homeserver.timeout_seconds: expected a number greater than 0, got -1" in message
    assert "homeserver.server_name: expected a bare server name" in message
    assert "appservice.listen.port: expected an integer between 1 and 65535, got 70000" in message
    assert "logging.level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'" in (
        message
    )


def test_a_section_that_is_not_a_mapping_is_named(config_file: Path) -> None:
    write(config_file, "homeserver: http://localhost:8008\n")
    assert "homeserver: expected a section (a mapping of keys), got 'http://localhost:8008'" in (
        problems_of(config_file)
    )


def test_broken_yaml_names_the_file_and_the_line(config_file: Path) -> None:
    write(config_file, "homeserver:\n  url: [unclosed\n")
    message = problems_of(config_file)
    assert f"config file {config_file} is not valid YAML" in message
    assert "line" in message


def test_a_section_given_twice_is_refused_rather_than_half_dropped(config_file: Path) -> None:
    write(config_file, "appservice:\n  id: first\nhomeserver: {}\nappservice:\n  id: second\n")
    message = problems_of(config_file)
    assert "key 'appservice' is given twice (first on line 1)" in message
    assert f'in "{config_file}", line 4' in message


def test_a_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    message = problems_of(tmp_path / "nope.yaml")
    assert "not found" in message
    assert "bridgekit generate-config -o" in message


def test_overlapping_connector_prefixes_are_refused(config_file: Path) -> None:
    write(config_file, """
connectors:
  a: {ghost_prefix: _x_}
  b: {ghost_prefix: _x_a_}
""")
    assert "connectors.a.ghost_prefix '_x_a_' also covers connectors.b.ghost_prefix" in (
        problems_of(config_file)
    )


def test_a_default_prefix_covers_every_ghost_under_it(config_file: Path) -> None:
    # hooks' default _hooks_ no longer repeats the name (@_hooks_<id>): libera's @_hooks_libera_x
    # could be a ghost of either.
    write(config_file, """
connectors:
  hooks: {}
  libera: {ghost_prefix: _hooks_}
""")
    assert "connectors.hooks.ghost_prefix '_hooks_' also covers connectors.libera.ghost_prefix" in (
        problems_of(config_file)
    )


# --- environment overrides --------------------------------------------------------------------


def test_environment_overrides_nested_keys_with_typed_values(config_file: Path) -> None:
    write(config_file, "appservice:\n  listen:\n    port: 1234\n")
    loaded = load_config(config_file, environ={
        "BRIDGEKIT_APPSERVICE__LISTEN__PORT": "8080",
        "BRIDGEKIT_APPSERVICE__RECEIVE_EPHEMERAL": "true",
        "BRIDGEKIT_HOMESERVER__URL": "http://synapse:8008",
        "BRIDGEKIT_HOMESERVER__TIMEOUT_SECONDS": "2.5",
        "BRIDGEKIT_CONNECTORS__IRC__ENABLED": "false",
        "BRIDGEKIT_CONNECTORS__IRC__MAX_LINES": "3",
    })
    config = loaded.config
    assert config.appservice.listen.port == 8080
    assert config.appservice.receive_ephemeral is True
    assert config.homeserver.url == "http://synapse:8008"
    assert config.homeserver.timeout_seconds == 2.5
    assert config.connectors["irc"].enabled is False
    assert config.connectors["irc"].settings() == {"max_lines": 3}
    assert "appservice.listen.port" in loaded.env_keys
    assert loaded.warnings == ()


def test_string_keys_keep_the_text_as_typed(config_file: Path) -> None:
    write(config_file, "")
    environ = {"BRIDGEKIT_APPSERVICE__ID": "1234", "BRIDGEKIT_APPSERVICE__ADDRESS": "null"}
    config = load_config(config_file, environ=environ).config
    assert config.appservice.id == "1234"
    assert config.appservice.address is None


def test_an_override_is_logged_by_key_never_by_value(
    config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(config_file, "")
    secret = "postgresql+asyncpg://bridge:hunter2hunter2@db/bridge"
    with caplog.at_level(logging.INFO, logger="bridgekit.config_loader"):
        load_config(config_file, environ={"BRIDGEKIT_DATABASE__URL": secret})
    assert "database.url" in caplog.text
    assert "BRIDGEKIT_DATABASE__URL" in caplog.text
    assert "hunter2" not in caplog.text


def test_a_bad_overridden_value_names_the_variable_but_hides_the_value(config_file: Path) -> None:
    write(config_file, "")
    message = problems_of(config_file, {"BRIDGEKIT_APPSERVICE__LISTEN__PORT": "s3cret"})
    assert "appservice.listen.port: expected an integer between 1 and 65535" in message
    assert "BRIDGEKIT_APPSERVICE__LISTEN__PORT" in message
    assert "s3cret" not in message


def test_an_override_below_a_scalar_is_refused(config_file: Path) -> None:
    write(config_file, "homeserver: 5\n")
    message = problems_of(config_file, {"BRIDGEKIT_HOMESERVER__URL": "http://x"})
    assert "BRIDGEKIT_HOMESERVER__URL: cannot set homeserver.url" in message


def test_token_variables_are_not_config_keys(config_file: Path) -> None:
    write(config_file, "")
    loaded = load_config(config_file, environ={"BRIDGEKIT_AS_TOKEN": "x" * 20, "PATH": "/bin"})
    assert loaded.warnings == ()
    assert loaded.env_keys == ()


# --- unknown keys -----------------------------------------------------------------------------


def test_a_misspelt_key_is_warned_about_with_a_suggestion_and_kept(config_file: Path) -> None:
    write(config_file, "homeserver:\n  ulr: http://synapse:8008\n")
    loaded = load_config(config_file, environ={})
    assert len(loaded.warnings) == 1
    assert "unknown key 'homeserver.ulr' (did you mean 'homeserver.url'?)" in loaded.warnings[0]
    assert loaded.config.homeserver.model_extra == {"ulr": "http://synapse:8008"}


def test_a_key_in_the_wrong_section_suggests_the_right_one(config_file: Path) -> None:
    write(config_file, "server_name: example.org\n")
    (warning,) = load_config(config_file, environ={}).warnings
    assert "unknown key 'server_name' (did you mean 'homeserver.server_name'?)" in warning


def test_a_key_far_from_any_known_one_is_warned_without_a_guess(config_file: Path) -> None:
    write(config_file, "appservice:\n  flux_capacitor: 3\n")
    (warning,) = load_config(config_file, environ={}).warnings
    assert "unknown key 'appservice.flux_capacitor';" in warning


def test_connector_keys_belong_to_the_connector_and_are_not_warned_about(
    config_file: Path,
) -> None:
    write(config_file, "connectors:\n  irc:\n    networks: {libera: {}}\n    nick_template: x\n")
    assert load_config(config_file, environ={}).warnings == ()


def test_a_wildcard_listener_without_an_address_is_warned_about(config_file: Path) -> None:
    write(config_file, "appservice:\n  listen: {host: 0.0.0.0}\n")
    (warning,) = load_config(config_file, environ={}).warnings
    assert "set appservice.address" in warning


def test_loading_never_changes_the_file(config_file: Path) -> None:
    write(config_file, "homeserver:\n  ulr: x\n")
    before = (config_file.read_bytes(), config_file.stat().st_mtime_ns)
    load_config(config_file, environ={"BRIDGEKIT_HOMESERVER__URL": "http://other:8008"})
    assert (config_file.read_bytes(), config_file.stat().st_mtime_ns) == before


# --- tokens -----------------------------------------------------------------------------------


def loaded_in(directory: Path, text: str = "") -> LoadedConfig:
    directory.mkdir(parents=True, exist_ok=True)
    return load_config(write(directory / "config.yaml", text), environ={})


def test_tokens_come_from_the_registration_next_to_the_config(tmp_path: Path) -> None:
    loaded = loaded_in(tmp_path / "etc", "appservice: {registration: reg/bridge.yaml}\n")
    (tmp_path / "etc" / "reg").mkdir()
    write(tmp_path / "etc" / "reg" / "bridge.yaml", "as_token: " + "a" * 32 + "\nhs_token: "
          + "h" * 32 + "\n")
    tokens = load_tokens(loaded, environ={})
    assert (tokens.as_token, tokens.hs_token) == ("a" * 32, "h" * 32)


def test_token_variables_win_over_the_registration(tmp_path: Path) -> None:
    loaded = loaded_in(tmp_path)
    write(tmp_path / "registration.yaml", f"as_token: {'a' * 32}\nhs_token: {'h' * 32}\n")
    tokens = load_tokens(loaded, environ={"BRIDGEKIT_AS_TOKEN": "A" * 32})
    assert (tokens.as_token, tokens.hs_token) == ("A" * 32, "h" * 32)
    both = {"BRIDGEKIT_AS_TOKEN": "A" * 32, "BRIDGEKIT_HS_TOKEN": "H" * 32}
    assert load_tokens(loaded_in(tmp_path / "empty"), environ=both).hs_token == "H" * 32


def test_a_missing_registration_says_how_to_generate_it(tmp_path: Path) -> None:
    loaded = loaded_in(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_tokens(loaded, environ={})
    message = str(caught.value)
    assert f"{tmp_path / 'registration.yaml'} not found" in message
    assert f"run: bridgekit generate-registration -c {tmp_path / 'config.yaml'}" in message


def test_a_short_token_is_refused_with_the_fix(tmp_path: Path) -> None:
    loaded = loaded_in(tmp_path)
    write(tmp_path / "registration.yaml", f"as_token: short\nhs_token: {'h' * 32}\n")
    with pytest.raises(ConfigError, match="as_token is missing or shorter than 16 characters"):
        load_tokens(loaded, environ={})
