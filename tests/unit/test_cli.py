"""The bridgekit command as an admin uses it: files written, messages shown, exit codes."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bridgekit.cli import main
from bridgekit.config import AppserviceTokens
from bridgekit.config_loader import LoadedConfig, load_config

CONFIG = """\
homeserver:
  url: http://hs.test
  server_name: example.org
connectors:
  irc: {}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def generate_registration(config_file: Path, *extra: str) -> dict[str, object]:
    assert main(["generate-registration", "-c", str(config_file), *extra], environ={}) == 0
    loaded: dict[str, object] = yaml.safe_load((config_file.parent / "registration.yaml").read_text())
    return loaded


# --- generate-config --------------------------------------------------------------------------


def test_generate_config_prints_an_example_that_loads_without_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate-config"], environ={}) == 0
    example = tmp_path / "example.yaml"
    example.write_text(capsys.readouterr().out, encoding="utf-8")
    loaded = load_config(example, environ={})
    assert loaded.warnings == ()
    assert "# Port to bind" in example.read_text()
    assert "  # libera:" in example.read_text()
    assert "  #   factory: irc" in example.read_text()  # how to add an IRC network is shown


def test_generate_config_writes_a_file_but_never_over_an_existing_one(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(config_file)
    assert main(["generate-config", "-o", str(config_file)], environ={}) == 1
    assert "exists; not replacing it (use --force to)" in capsys.readouterr().err
    assert snapshot(config_file) == before

    assert main(["generate-config", "-o", str(config_file), "--force"], environ={}) == 0
    assert load_config(config_file, environ={}).warnings == ()
    fresh = tmp_path / "new.yaml"
    assert main(["generate-config", "-o", str(fresh)], environ={}) == 0
    assert f"bridgekit generate-registration -c {fresh}" in capsys.readouterr().out


# --- generate-registration --------------------------------------------------------------------


def test_generate_registration_writes_a_private_file_and_says_what_next(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registration = generate_registration(config_file)
    path = config_file.parent / "registration.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert registration["id"] == "bridgekit"
    assert {"regex": r"@_irc_.*:example\.org", "exclusive": True} in (
        registration["namespaces"]["users"]  # type: ignore[index]
    )
    out = capsys.readouterr().out
    assert f"Wrote the registration to {path}" in out
    assert "app_service_config_files" in out
    assert f"bridgekit doctor -c {config_file}" in out


def test_a_rerun_keeps_the_tokens_and_refreshes_the_namespaces(config_file: Path) -> None:
    first = generate_registration(config_file)
    config_file.write_text(CONFIG + "  webhook: {}\n", encoding="utf-8")
    second = generate_registration(config_file)
    assert (second["as_token"], second["hs_token"]) == (first["as_token"], first["hs_token"])
    assert {"regex": r"@_webhook_.*:example\.org", "exclusive": True} in (
        second["namespaces"]["users"]  # type: ignore[index]
    )


def test_new_tokens_replace_the_old_ones_on_request(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = generate_registration(config_file)
    second = generate_registration(config_file, "--new-tokens")
    assert second["as_token"] != first["as_token"]
    assert second["hs_token"] != first["hs_token"]
    assert "The tokens changed" in capsys.readouterr().out
    assert stat.S_IMODE((config_file.parent / "registration.yaml").stat().st_mode) == 0o600


def test_keys_added_by_hand_survive_a_refresh(config_file: Path) -> None:
    generate_registration(config_file)
    path = config_file.parent / "registration.yaml"
    path.write_text(path.read_text() + "org.example.admin_note: keep me\n")
    assert generate_registration(config_file)["org.example.admin_note"] == "keep me"
    assert generate_registration(config_file, "--new-tokens")["org.example.admin_note"] == "keep me"


def test_the_connectors_third_party_protocols_are_listed(config_file: Path) -> None:
    # CONFIG enables the IRC connector (found by entry point), which answers lookups for "irc".
    protocols = generate_registration(config_file).get("protocols", [])
    assert isinstance(protocols, list)
    assert "irc" in protocols


def test_a_broken_registration_is_not_replaced_unless_new_tokens_are_asked_for(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file.parent / "registration.yaml"
    path.write_text("as_token: [unclosed\n")
    assert main(["generate-registration", "-c", str(config_file)], environ={}) == 2
    assert "replace it with --new-tokens" in capsys.readouterr().err
    assert path.read_text() == "as_token: [unclosed\n"
    assert len(str(generate_registration(config_file, "--new-tokens")["as_token"])) >= 64


def test_generating_never_touches_the_config(config_file: Path) -> None:
    before = snapshot(config_file)
    generate_registration(config_file)
    generate_registration(config_file, "--new-tokens")
    assert snapshot(config_file) == before
    assert main(["generate-registration", "-c", str(config_file), "-o", str(config_file)],
                environ={}) == 1
    assert snapshot(config_file) == before


def test_a_config_error_exits_2_with_the_message_and_no_traceback(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text("appservice: {listen: {port: abc}}\n", encoding="utf-8")
    assert main(["generate-registration", "-c", str(config_file)], environ={}) == 2
    err = capsys.readouterr().err
    assert "appservice.listen.port: expected an integer between 1 and 65535, got 'abc'" in err
    assert "Traceback" not in err
    assert not (config_file.parent / "registration.yaml").exists()


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"], environ={}) == 2
    assert main([], environ={}) == 2


# --- run --------------------------------------------------------------------------------------


@pytest.fixture
def restore_root_level() -> Iterator[None]:
    # `run` sets the root logger's level from the config, as a process would once.
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.mark.usefixtures("restore_root_level")
def test_run_hands_the_config_and_tokens_to_the_bridge(config_file: Path) -> None:
    generate_registration(config_file)
    seen: list[tuple[LoadedConfig, AppserviceTokens]] = []

    def bridge(loaded: LoadedConfig, tokens: AppserviceTokens) -> int:
        seen.append((loaded, tokens))
        return 3

    assert main(["run", "-c", str(config_file)], environ={}, bridge_runner=bridge) == 3
    ((loaded, tokens),) = seen
    assert loaded.config.homeserver.server_name == "example.org"
    assert len(tokens.as_token) >= 16
    assert loaded.warnings == ()


@pytest.mark.usefixtures("restore_root_level")
def test_run_passes_on_a_stale_registration_as_warnings_with_the_fix(config_file: Path) -> None:
    generate_registration(config_file)
    config_file.write_text(CONFIG + "  webhook: {}\n", encoding="utf-8")
    seen: list[LoadedConfig] = []

    def bridge(loaded: LoadedConfig, tokens: AppserviceTokens) -> int:
        seen.append(loaded)
        return 0

    assert main(["run", "-c", str(config_file)], environ={}, bridge_runner=bridge) == 0
    warnings = "\n".join(seen[0].warnings)
    assert "lacks '@_webhook_.*:example\\.org'" in warnings
    assert f"fix: bridgekit generate-registration -c {config_file}" in warnings


@pytest.mark.usefixtures("restore_root_level")
def test_run_without_tokens_exits_2_and_says_how_to_get_them(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "-c", str(config_file)], environ={},
                bridge_runner=lambda loaded, tokens: 0) == 2
    assert "run: bridgekit generate-registration" in capsys.readouterr().err


# --- doctor -----------------------------------------------------------------------------------

def homeserver(ping: httpx.Response) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host != "hs.test":  # the bridge's own /health: not running
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/_matrix/client/versions":
            return httpx.Response(200, json={"versions": ["v1.11", "v1.12"]})
        assert request.url.path == "/_matrix/client/v1/appservice/bridgekit/ping"
        assert request.headers["authorization"].startswith("Bearer ")
        assert "transaction_id" in json.loads(request.content)
        return ping

    return httpx.MockTransport(handle)


def doctor(config_file: Path, transport: httpx.MockTransport) -> int:
    return main(["doctor", "-c", str(config_file)], environ={}, http_transport=transport)


def test_doctor_passes_when_everything_answers(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate_registration(config_file)
    capsys.readouterr()
    assert doctor(config_file, homeserver(httpx.Response(200, json={"duration_ms": 12}))) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["OK"] * 5 + ["SKIP"]
    assert lines[-1] == "SKIP  bridge: not running (nothing answers http://127.0.0.1:29331/health)"
    assert any("reached the bridge" in line and "12 ms" in line for line in lines)


def test_doctor_fails_with_the_fix_when_the_homeserver_lacks_the_registration(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate_registration(config_file)
    refused = httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": "not an AS"})
    assert doctor(config_file, homeserver(refused)) == 1
    (ping,) = [line for line in capsys.readouterr().out.splitlines() if " ping:" in line]
    assert ping.startswith("FAIL")
    assert "fix: install the registration on the homeserver" in ping


def test_doctor_says_when_the_homeserver_cannot_reach_the_bridge(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate_registration(config_file)
    failed = httpx.Response(502, json={"errcode": "M_CONNECTION_FAILED", "error": "refused"})
    assert doctor(config_file, homeserver(failed)) == 1
    assert "cannot reach the bridge at http://127.0.0.1:29330" in capsys.readouterr().out


def test_doctor_reports_an_unreachable_homeserver_and_a_missing_registration(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert doctor(config_file, httpx.MockTransport(refuse)) == 1
    out = capsys.readouterr().out
    assert "FAIL  registration:" in out
    assert "fix: bridgekit generate-registration" in out
    assert "FAIL  homeserver: cannot reach http://hs.test/_matrix/client/versions" in out
    assert "SKIP  ping:" in out


def test_doctor_flags_a_database_driver_that_is_not_installed(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate_registration(config_file)
    config_file.write_text(CONFIG + "database: {url: 'sqlite:///sync.db'}\n", encoding="utf-8")
    assert doctor(config_file, homeserver(httpx.Response(200, json={"duration_ms": 1}))) == 1
    assert "FAIL  database: driver pysqlite of database.url is not async" in (
        capsys.readouterr().out
    )


@pytest.mark.usefixtures("restore_root_level")
def test_ctrl_c_stops_run_quietly_with_status_130(config_file: Path) -> None:
    generate_registration(config_file)

    def interrupted(loaded: LoadedConfig, tokens: AppserviceTokens) -> int:
        raise KeyboardInterrupt

    assert main(["run", "-c", str(config_file)], environ={}, bridge_runner=interrupted) == 130


def test_generate_key_prints_a_key_the_credentials_cipher_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    from bridgekit.credentials import CredentialCipher, load_key

    assert main(["generate-key"]) == 0
    key = capsys.readouterr().out.strip()
    cipher = CredentialCipher(load_key(configured=None, environ={"BRIDGEKIT_CREDENTIALS_KEY": key}))
    assert cipher.decrypt(cipher.encrypt({"password": "hunter2"})) == {"password": "hunter2"}
    assert main(["generate-key"]) == 0
    assert capsys.readouterr().out.strip() != key


def test_doctor_names_the_variable_to_change_when_environment_tokens_differ_and_its_fix_ends_the_loop(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The admin once exported tokens, then made a new registration: the environment wins over
    # the file, so regenerating the file (the old advice) left the mismatch where it was.
    generate_registration(config_file)
    registration = yaml.safe_load((config_file.parent / "registration.yaml").read_text())
    environ = {"BRIDGEKIT_AS_TOKEN": "x" * 32, "BRIDGEKIT_HS_TOKEN": registration["hs_token"]}
    answered = homeserver(httpx.Response(200, json={"duration_ms": 3}))
    capsys.readouterr()

    assert main(["doctor", "-c", str(config_file)], environ=environ, http_transport=answered) == 1
    (line,) = [line for line in capsys.readouterr().out.splitlines() if " registration:" in line]
    assert line.startswith("FAIL")
    assert "BRIDGEKIT_AS_TOKEN differs from as_token" in line
    assert "remove BRIDGEKIT_AS_TOKEN from the bridge's environment" in line
    assert "BRIDGEKIT_HS_TOKEN" not in line  # it agrees: not to be touched
    assert "generate-registration" not in line  # the file is right; regenerating changes nothing

    # Following the advice either way ends it.
    for fixed in ({"BRIDGEKIT_HS_TOKEN": registration["hs_token"]},
                  {**environ, "BRIDGEKIT_AS_TOKEN": registration["as_token"]}):
        assert main(["doctor", "-c", str(config_file)], environ=fixed, http_transport=answered) == 0, fixed
    assert "OK    registration:" in capsys.readouterr().out
