"""The ``bridgekit`` command: the composition root an admin meets first.

``generate-config`` writes the example config (from the schema), ``generate-registration`` the
registration the homeserver admin installs, ``run`` loads both and starts the bridge, and
``doctor`` checks that config, registration, database driver and homeserver agree (the checks
are in :mod:`bridgekit.doctor`).

Exit codes: 0 success, 1 a check or a write failed, 2 the config (or the command line) is
wrong, 130 stopped with Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bridgekit.config import AppserviceTokens, BridgeConfig
from bridgekit.config_loader import (
    LoadedConfig,
    load_config,
    load_tokens,
    read_registration,
    render_example_config,
)
from bridgekit.core.connectors import connector_factories
from bridgekit.credentials import generate_key
from bridgekit.doctor import CheckResult, run_checks
from bridgekit.errors import ConfigError
from bridgekit.registration import (
    MANAGED_KEYS,
    build_double_puppet_registration,
    build_registration,
    check_registration_matches,
    new_token,
    registration_to_yaml,
)

BridgeRunner = Callable[[LoadedConfig, AppserviceTokens], int]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class CommandContext:
    """What the commands take from the outside world, injected so tests need no patching."""

    environ: Mapping[str, str]
    http_transport: httpx.BaseTransport | None = None
    bridge_runner: BridgeRunner | None = None


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    http_transport: httpx.BaseTransport | None = None,
    bridge_runner: BridgeRunner | None = None,
) -> int:
    """Run one command and return its exit code (the console script's entry point)."""
    context = CommandContext(os.environ if environ is None else environ, http_transport, bridge_runner)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # argparse exits on --help and on usage errors
        return stop.code if isinstance(stop.code, int) else 2
    command: Callable[[argparse.Namespace, CommandContext], int] = args.command
    try:
        return command(args, context)
    except ConfigError as error:
        print(f"bridgekit: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C is how an admin stops a foreground bridge: shut down quietly, no traceback.
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridgekit", description="Matrix appservice bridges.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    generate_config = commands.add_parser(
        "generate-config", help="print or write an example config with every key and its default"
    )
    generate_config.add_argument("-o", "--output", help="write to this file instead of stdout")
    generate_config.add_argument(
        "--force", action="store_true", help="replace the output file if it exists"
    )
    generate_config.set_defaults(command=_generate_config)

    generate_registration = commands.add_parser(
        "generate-registration", help="write the registration file the homeserver admin installs"
    )
    _config_option(generate_registration)
    generate_registration.add_argument(
        "-o", "--output", help="where to write it (default: appservice.registration of the config)"
    )
    generate_registration.add_argument(
        "--new-tokens", action="store_true",
        help="generate new tokens even if the file exists (the homeserver must then reload it)",
    )
    generate_registration.add_argument(
        "--double-puppet", action="store_true",
        help="write the second, non-exclusive registration for double puppeting instead "
        "(default file: doublepuppet-registration.yaml next to the registration)",
    )
    generate_registration.set_defaults(command=_generate_registration)

    run = commands.add_parser("run", help="run the bridge")
    _config_option(run)
    run.set_defaults(command=_run)

    doctor = commands.add_parser(
        "doctor", help="check config, registration, database driver and the homeserver connection"
    )
    _config_option(doctor)
    doctor.set_defaults(command=_doctor)

    generate_key = commands.add_parser(
        "generate-key",
        help="print a new key for encrypting remote-network credentials at rest "
        "(put it in BRIDGEKIT_CREDENTIALS_KEY, or a file named by BRIDGEKIT_CREDENTIALS_KEY_FILE)",
    )
    generate_key.set_defaults(command=_generate_key)
    return parser


def _generate_key(_args: argparse.Namespace, _context: CommandContext) -> int:
    print(generate_key())
    return 0


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", default="config.yaml", help="the config file (default: config.yaml)"
    )


# --- generate-config --------------------------------------------------------------------------


def _generate_config(args: argparse.Namespace, context: CommandContext) -> int:
    text = render_example_config()
    if args.output is None:
        sys.stdout.write(text)
        return 0
    output = Path(args.output)
    try:
        # "x" creates or fails atomically: an admin's config is never replaced by accident.
        with output.open("w" if args.force else "x", encoding="utf-8") as file:
            file.write(text)
    except FileExistsError:
        print(f"bridgekit: {output} exists; not replacing it (use --force to)", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"bridgekit: cannot write {output}: {error}", file=sys.stderr)
        return 1
    print(f"Wrote an example config to {output}. Edit it, then run:")
    print(f"  bridgekit generate-registration -c {output}")
    return 0


# --- generate-registration --------------------------------------------------------------------


def _generate_registration(args: argparse.Namespace, context: CommandContext) -> int:
    loaded = load_config(args.config, environ=context.environ)
    _print_warnings(loaded.warnings)
    if args.double_puppet:
        return _generate_double_puppet_registration(args, loaded)
    output = Path(args.output) if args.output else loaded.registration_path
    if output.exists() and output.resolve() == loaded.path.resolve():
        print(f"bridgekit: {output} is the config file; not writing over it", file=sys.stderr)
        return 1
    existed = output.exists()
    # With --new-tokens a broken old file is no obstacle: it is what the option recovers from.
    previous = _previous(output, tolerant=args.new_tokens) if existed else {}
    tokens = None if args.new_tokens else _reusable_tokens(previous)
    registration = build_registration(
        loaded.config,
        as_token=tokens[0] if tokens else new_token(),
        hs_token=tokens[1] if tokens else new_token(),
        protocols=_thirdparty_protocols(loaded.config),
    )
    # Keys an admin added by hand (protocols, unstable opt-ins) survive a refresh.
    added_by_hand = {key: value for key, value in previous.items() if key not in MANAGED_KEYS}
    computed = registration.get("protocols", [])
    registration.update(added_by_hand)
    if computed and isinstance(registration.get("protocols"), list):  # the connectors' and the admin's
        registration["protocols"] = sorted({*computed, *map(str, registration["protocols"])})
    try:
        _write_private(output, registration_to_yaml(registration))
    except OSError as error:
        print(f"bridgekit: cannot write {output}: {error}", file=sys.stderr)
        return 1
    _explain_registration(
        loaded, output, kept_tokens=tokens is not None, existed=existed, added_by_hand=added_by_hand
    )
    return 0


def _generate_double_puppet_registration(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    output = Path(args.output) if args.output else loaded.registration_path.with_name("doublepuppet-registration.yaml")
    previous = _previous(output, tolerant=args.new_tokens) if output.exists() else {}
    tokens = None if args.new_tokens else _reusable_tokens(previous)
    registration = build_double_puppet_registration(
        loaded.config, as_token=tokens[0] if tokens else new_token(), hs_token=tokens[1] if tokens else new_token(),
    )
    if isinstance(previous.get("sender_localpart"), str):
        registration["sender_localpart"] = previous["sender_localpart"]
    try:
        _write_private(output, registration_to_yaml(registration))
    except OSError as error:
        print(f"bridgekit: cannot write {output}: {error}", file=sys.stderr)
        return 1
    print(f"Wrote the double-puppet registration to {output} (readable by you only).")
    print("It lets the bridge post as any user of this homeserver who logs in to a network through it.")
    print("Install it on the homeserver next to the bridge's registration, then set in the config:")
    print(f"  double_puppet:\n    registration: {output}")
    print("and check it with 'status' in your management room after logging in.")
    return 0


def _thirdparty_protocols(config: BridgeConfig) -> list[str]:
    """The protocols the configured connectors answer directory lookups for (IRC: ``irc``)."""
    try:
        connectors = connector_factories(config)
    except ConfigError as error:
        print(f"bridgekit: note: {error}; the registration lists no third-party protocols", file=sys.stderr)
        return []
    return sorted({p for factory in connectors for p in getattr(factory, "protocol_ids", ())})


def _previous(output: Path, *, tolerant: bool) -> dict[str, Any]:
    try:
        return read_registration(output, missing_hint="")
    except ConfigError as error:
        if tolerant:
            return {}
        raise ConfigError(f"{error}\nfix it, or replace it with --new-tokens") from None


def _reusable_tokens(previous: Mapping[str, Any]) -> tuple[str, str] | None:
    as_token, hs_token = previous.get("as_token"), previous.get("hs_token")
    usable = all(isinstance(token, str) and len(token) >= 16 for token in (as_token, hs_token))
    return (str(as_token), str(hs_token)) if usable else None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only; readers see the old file or the new, never half."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _explain_registration(
    loaded: LoadedConfig, output: Path, *, kept_tokens: bool, existed: bool,
    added_by_hand: Mapping[str, Any],
) -> None:
    tokens = "tokens kept from the existing file" if kept_tokens else "new tokens"
    print(f"Wrote the registration to {output} ({tokens}; readable by you only).")
    if existed and not kept_tokens:
        print("The tokens changed: the homeserver uses the old ones until it reloads this file.")
    if added_by_hand:
        print(f"Kept keys added by hand: {', '.join(sorted(added_by_hand))}.")
    if output.resolve() != loaded.registration_path.resolve():
        print(f"Note: `bridgekit run` reads the tokens from {loaded.registration_path} "
              f"(appservice.registration in {loaded.path}); set that key to this file.")
    print("Next: install it on the homeserver and restart it. Synapse: add its path to")
    print("app_service_config_files in homeserver.yaml. Dendrite, conduwuit and others:")
    print("see registration/README.md. Then check the connection with:")
    print(f"  bridgekit doctor -c {loaded.path}")


# --- run --------------------------------------------------------------------------------------


def _run(args: argparse.Namespace, context: CommandContext) -> int:
    # Logging first, so the names of keys set from the environment are reported at INFO.
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # Alembic announces each of its plugins at INFO when first imported; only migrations matter.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    loaded = load_config(args.config, environ=context.environ)
    logging.getLogger().setLevel(loaded.config.logging.level)
    tokens = load_tokens(loaded, environ=context.environ)
    loaded = dataclasses.replace(
        loaded, warnings=loaded.warnings + tuple(_registration_warnings(loaded))
    )
    runner = context.bridge_runner or _run_bridge
    return runner(loaded, tokens)


def _registration_warnings(loaded: LoadedConfig) -> list[str]:
    path = loaded.registration_path
    if not path.exists():  # tokens came from the environment; nothing here to compare
        return []
    mismatches = check_registration_matches(loaded.config, read_registration(path, missing_hint=""))
    if not mismatches:
        return []
    fix = (f"{path} does not match the config; fix: bridgekit generate-registration -c "
           f"{loaded.path} (tokens are kept), then reload it on the homeserver and restart it")
    return [f"{path}: {mismatch}" for mismatch in mismatches] + [fix]


def _run_bridge(loaded: LoadedConfig, tokens: AppserviceTokens) -> int:
    # Imported here: the other commands must work without the server's dependencies loaded.
    from bridgekit.app import run_bridge

    return run_bridge(loaded, tokens)


# --- doctor -----------------------------------------------------------------------------------


def _doctor(args: argparse.Namespace, context: CommandContext) -> int:
    loaded = load_config(args.config, environ=context.environ)
    _print_warnings(loaded.warnings)
    results = run_checks(loaded, context.environ, context.http_transport)
    for result in results:
        print(result.line())
    return 0 if all(result.passed is not False for result in results) else 1


def _print_warnings(warnings: Sequence[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


__all__ = ["BridgeRunner", "CheckResult", "CommandContext", "main"]
