"""Reading the config file and the secrets it points to, and writing the example config.

``load_config`` reads the YAML (never writes it), applies ``BRIDGEKIT_<SECTION>__<KEY>``
environment overrides, validates the result into :class:`~bridgekit.config.BridgeConfig` and
reports every problem at once, naming the file, the key and the fix. Unknown keys are kept and
warned about. ``load_tokens`` finds the appservice tokens (environment first, then the registration
file). ``render_example_config`` is the other end of the same schema: what it writes loads back
without a warning.
"""

from __future__ import annotations

import difflib
import io
import logging
import textwrap
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from bridgekit.config import (
    AppserviceTokens,
    BridgeConfig,
    ConnectorSection,
    describe_expected,
    iter_keys,
    section_model,
)
from bridgekit.errors import ConfigError

logger = logging.getLogger(__name__)

ENV_PREFIX = "BRIDGEKIT_"
# The names of the variables that hold the tokens, not tokens.
AS_TOKEN_ENV = "BRIDGEKIT_AS_TOKEN"  # noqa: S105
HS_TOKEN_ENV = "BRIDGEKIT_HS_TOKEN"  # noqa: S105


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config, the file it came from and what the admin should hear about it."""

    config: BridgeConfig
    path: Path
    warnings: tuple[str, ...] = ()
    env_keys: tuple[str, ...] = ()
    """Key paths set from the environment (names only: values may be secrets)."""

    def resolve(self, relative: str | Path) -> Path:
        """A path from the config, taken relative to the config file's directory."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.path.parent / candidate

    @property
    def registration_path(self) -> Path:
        return self.resolve(self.config.appservice.registration)


def load_config(path: str | Path, *, environ: Mapping[str, str]) -> LoadedConfig:
    """Read, override from ``environ`` and validate; ConfigError lists every problem at once."""
    path = Path(path)
    data = _read_mapping(path, what="config file", missing_hint=(
        f"create one with: bridgekit generate-config -o {path}"
    ))
    env_sources, problems = _apply_environment(data, environ)
    _empty_sections_to_mappings(data)
    warnings = [f"{path}: {text}" for text in _unknown_key_warnings(data)]
    try:
        config = BridgeConfig.model_validate(data)
    except ValidationError as error:
        problems += [_describe_error(item, env_sources) for item in error.errors()]
    if problems:
        raise ConfigError(_problem_report(path, problems, warnings))
    warnings += _address_warnings(config, path)
    return LoadedConfig(config, path, tuple(warnings), tuple(env_sources))


def read_registration(path: Path, *, missing_hint: str) -> dict[str, Any]:
    """The registration file as a mapping; ConfigError (with ``missing_hint``) if absent."""
    return _read_mapping(path, what="registration file", missing_hint=missing_hint)


def load_tokens(loaded: LoadedConfig, *, environ: Mapping[str, str]) -> AppserviceTokens:
    """BRIDGEKIT_AS_TOKEN / BRIDGEKIT_HS_TOKEN if set, else the tokens of the registration file."""
    from_env = {"as_token": environ.get(AS_TOKEN_ENV), "hs_token": environ.get(HS_TOKEN_ENV)}
    if all(from_env.values()):
        return _tokens(from_env, source=f"{AS_TOKEN_ENV} / {HS_TOKEN_ENV}")
    registration_path = loaded.registration_path
    registration = read_registration(registration_path, missing_hint=(
        f"appservice.registration in {loaded.path} names it; run: bridgekit generate-registration "
        f"-c {loaded.path} -o {registration_path} (or set {AS_TOKEN_ENV} and {HS_TOKEN_ENV})"
    ))
    merged = {key: from_env[key] or registration.get(key) for key in from_env}
    return _tokens(merged, source=str(registration_path))


def _tokens(values: Mapping[str, Any], *, source: str) -> AppserviceTokens:
    for key, value in values.items():
        if not isinstance(value, str) or len(value) < 16:
            raise ConfigError(
                f"{source}: {key} is missing or shorter than 16 characters; generate new tokens "
                "with: bridgekit generate-registration --new-tokens (then reinstall the "
                "registration on the homeserver)"
            )
    return AppserviceTokens(as_token=values["as_token"], hs_token=values["hs_token"])


# --- reading ----------------------------------------------------------------------------------


def _read_mapping(path: Path, *, what: str, missing_hint: str) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found; {missing_hint}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{what} {path} cannot be read: {error}") from None
    try:
        stream = io.StringIO(text)
        stream.name = str(path)  # so YAML errors name the file, not "<unicode string>"
        data = yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{what} {path} is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} {path}: expected a mapping of keys at the top level, got {_kind(data)}"
        )
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader refusing a key given twice in one mapping (YAML would keep only the last,
    silently dropping the first: a second ``appservice:`` section would erase the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        first_seen: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue
            if key in first_seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first on line {first_seen[key] + 1}); "
                    "merge the two", key_node.start_mark,
                )
            first_seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _empty_sections_to_mappings(data: dict[str, Any]) -> None:
    # "connectors:" or "irc:" with nothing under it reads as null: it means defaults, not an error.
    for name, field in BridgeConfig.model_fields.items():
        is_section = section_model(field.annotation) or get_origin(field.annotation) is dict
        if is_section and name in data and data[name] is None:
            data[name] = {}
    connectors = data.get("connectors")
    if isinstance(connectors, dict):
        for name, section in connectors.items():
            if section is None:
                connectors[name] = {}


# --- environment overrides --------------------------------------------------------------------


def _apply_environment(
    data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Set ``BRIDGEKIT_A__B__C`` as key a.b.c; returns {key path: variable} and any problems."""
    sources: dict[str, str] = {}
    problems: list[str] = []
    for variable in sorted(environ):
        # BRIDGEKIT_AS_TOKEN and other single-word names are not config keys: "__" marks those.
        if not variable.startswith(ENV_PREFIX) or "__" not in variable:
            continue
        parts = variable[len(ENV_PREFIX):].lower().split("__")
        dotted = ".".join(parts)
        if "" in parts:
            problems.append(f"{variable}: expected BRIDGEKIT_<SECTION>__<KEY>, with no empty part")
            continue
        problem = _set_path(data, parts, _env_value(parts, environ[variable]))
        if problem:
            problems.append(f"{variable}: cannot set {dotted}: {problem}")
            continue
        sources[dotted] = variable
        logger.info("config key %s is set from the environment variable %s", dotted, variable)
    return sources, problems


def _env_value(parts: list[str], raw: str) -> Any:
    # String keys keep the text as typed (a password "1234" must stay a string); other keys are
    # read as YAML scalars, so "8080" is a number and "false" a boolean.
    field = _field_at(parts)
    if field is not None and field.annotation in (str, str | None):
        return None if field.annotation is not str and raw in ("null", "~") else raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return raw if isinstance(value, dict | list) else value


def _set_path(data: dict[str, Any], parts: list[str], value: Any) -> str | None:
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            return f"{'.'.join(parts[:depth + 1])} in the file is {_kind(child)}, not a section"
        node = child
    node[parts[-1]] = value
    return None


def _field_at(parts: list[str] | tuple[str | int, ...]) -> FieldInfo | None:
    """The schema field at a key path, if the schema knows it."""
    model: type[BaseModel] | None = BridgeConfig
    field: FieldInfo | None = None
    skip_name = False
    for part in parts:
        if skip_name:
            skip_name, model = False, ConnectorSection
            continue
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        field = model.model_fields[part]
        skip_name = get_origin(field.annotation) is dict
        model = section_model(field.annotation)
    return field


# --- unknown keys -----------------------------------------------------------------------------


def _unknown_key_warnings(data: Mapping[Any, Any]) -> Iterator[str]:
    all_paths = [path for path, _ in iter_keys()]
    for dotted, known in _unknown_keys(data, BridgeConfig, ""):
        name = dotted.rsplit(".", 1)[-1]
        parent = dotted[: -len(name)]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        # Not close to a sibling? Perhaps the right key in the wrong section.
        elsewhere = [path for path in all_paths if path.rsplit(".", 1)[-1] == name]
        suggestion = f"{parent}{close[0]}" if close else (elsewhere[0] if elsewhere else None)
        hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
        yield f"unknown key '{dotted}'{hint}; it is kept, but bridgekit does not read it"


def _unknown_keys(
    data: Mapping[Any, Any], model: type[BaseModel], prefix: str
) -> Iterator[tuple[str, list[str]]]:
    for key, value in data.items():
        field = model.model_fields.get(str(key))
        if field is None:
            yield f"{prefix}{key}", list(model.model_fields)
            continue
        nested = section_model(field.annotation)
        # Keys inside connectors.<name> other than the shared ones belong to the connector.
        if nested is not None and isinstance(value, Mapping):
            yield from _unknown_keys(value, nested, f"{prefix}{key}.")


# --- problems and warnings --------------------------------------------------------------------


def _describe_error(error: Any, env_sources: Mapping[str, str]) -> str:
    location = tuple(error["loc"])
    dotted = ".".join(str(part) for part in location)
    if error["type"] == "value_error":
        what = str(error["ctx"]["error"])
    else:
        field = _field_at(location)
        what = f"expected {describe_expected(field)}" if field else error["msg"]
    if not location:
        return what
    variable = env_sources.get(dotted)
    got = f"the value of {variable} (not shown)" if variable else _shown(error["input"])
    return f"{dotted}: {what}, got {got}"


def _shown(value: Any) -> str:
    if isinstance(value, dict | list):
        return _kind(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), f"a {type(value).__name__}")


def _problem_report(path: Path, problems: list[str], warnings: list[str]) -> str:
    count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
    lines = [f"{path}: {count}; fix these keys (or the BRIDGEKIT_* variables that set them):"]
    lines += [f"  {problem}" for problem in problems]
    lines += [f"  note: {warning.removeprefix(f'{path}: ')}" for warning in warnings]
    return "\n".join(lines)


def _address_warnings(config: BridgeConfig, path: Path) -> Iterator[str]:
    appservice = config.appservice
    if appservice.address is None and appservice.listens_on_every_interface:
        yield (
            f"{path}: appservice.listen.host is {appservice.listen.host} and appservice.address is "
            f"not set, so the registration would tell the homeserver to call "
            f"{appservice.hs_reachable_url}; set appservice.address to the URL the homeserver "
            "can reach"
        )


# --- the example config -----------------------------------------------------------------------

_HEADER = """\
# bridgekit configuration, generated from the config schema by `bridgekit generate-config`.
# Every key is shown with its default; keep only the ones you change if you like.
# Any key can also be set from the environment: BRIDGEKIT_<SECTION>__<KEY>[__<SUBKEY>], e.g.
# BRIDGEKIT_HOMESERVER__URL or BRIDGEKIT_APPSERVICE__LISTEN__PORT.
# Secrets do not live here: the appservice tokens are in the registration file named by
# appservice.registration (or in BRIDGEKIT_AS_TOKEN and BRIDGEKIT_HS_TOKEN).
# bridgekit never writes to this file.
"""

_WIDTH = 100


def render_example_config() -> str:
    """The example config: every key with its default, its description as a comment."""
    return _HEADER + "\n".join(_render_model(BridgeConfig, indent=0, width=_WIDTH)) + "\n"


def _render_model(model: type[BaseModel], *, indent: int, width: int) -> Iterator[str]:
    pad = " " * indent
    for name, field in model.model_fields.items():
        nested = section_model(field.annotation)
        if nested is not None:
            yield ""
            yield from _comment(pad, (nested.__doc__ or "").strip().splitlines()[0], width)
            yield f"{pad}{name}:"
            yield from _render_model(nested, indent=indent + 2, width=width)
        elif get_origin(field.annotation) is dict and section_model(get_args(field.annotation)[1]) is None:
            # A plain mapping (permissions): an empty one and a commented example.
            yield ""
            yield from _comment(pad, field.description or "", width)
            yield f"{pad}{name}: {{}}"
            yield f"{pad}# {name}:"
            yield f'{pad}#   "*": relay'
            yield f"{pad}#   example.org: user"
            yield f'{pad}#   "@admin:example.org": admin'
        elif get_origin(field.annotation) is dict:
            yield ""
            yield from _comment(pad, field.description or "", width)
            yield f"{pad}{name}:"
            hint = "for example (remove the # to enable a connector):"
            yield from _comment(f"{pad}  ", hint, width)
            yield f"{pad}  # libera:"
            commented = f"{pad}  #   "
            for line in _render_model(ConnectorSection, indent=0, width=width - len(commented)):
                yield f"{commented}{line}".rstrip()
            yield f"{pad}  #   # ...then the connector's own settings. An IRC network (docs/irc.md):"
            yield f"{pad}  #   factory: irc"
            yield f"{pad}  #   server: irc.libera.chat"
            yield f"{pad}  #   port: 6697"
            yield f"{pad}  #   tls: true"
            yield f"{pad}  # webhook: {{}}   # inbound and outbound webhooks (docs/webhook.md)"
        else:
            yield from _comment(pad, field.description or "", width)
            if field.metadata:
                yield from _comment(pad, f"Expected: {describe_expected(field)}.", width)
            yield pad + yaml.safe_dump({name: field.default}, default_flow_style=False).strip()


def _comment(pad: str, text: str, width: int) -> Iterator[str]:
    for line in textwrap.wrap(text, width=width - len(pad) - 2):
        yield f"{pad}# {line}"


__all__ = [
    "AS_TOKEN_ENV",
    "ENV_PREFIX",
    "HS_TOKEN_ENV",
    "LoadedConfig",
    "load_config",
    "load_tokens",
    "read_registration",
    "render_example_config",
]
