"""Rules read from the source: no IRC command is built from text outside ``lines.py`` (an
f-string, a concatenation or a ``format`` that starts with a command word, or that writes the
trailing parameter's `` :``), and the tests of the state and policy modules use only their public
names (no ``._name``); no module of the IRC bridge over 450 lines, the connector included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IRC = ROOT / "bridges" / "irc"
BUILDER = IRC / "lines.py"
COMMANDS = (  # noqa: SIM905 (a list of words reads best as words)
    "PRIVMSG NOTICE JOIN PART NICK TOPIC MODE KICK CAP AUTHENTICATE PING PONG QUIT USER PASS WHO WHOIS "
    "WHOWAS INVITE LIST NAMES AWAY OPER KILL TAGMSG ISON USERHOST MONITOR SETNAME CHGHOST"
).split()
COMMAND_START = re.compile(rf"^(?:{'|'.join(COMMANDS)})(?: |$)")
NEW_MODULE_TESTS = ("test_lines.py", "test_connection_state.py", "test_outgoing.py", "test_link_echo.py",
                    "test_link_pacing.py", "test_link_settling.py", "stand_in.py", "test_inbound.py",
                    "test_session_progress.py", "test_media_downloads_at_once.py", "test_directory.py")


def _leading_text(node: ast.expr) -> str | None:
    """The literal text a string-building expression starts with, if it starts with one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _leading_text(node.values[0])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return _leading_text(node.left)
    return None


def _literal_parts(node: ast.JoinedStr) -> str:
    return "\0".join(
        part.value for part in node.values if isinstance(part, ast.Constant) and isinstance(part.value, str)
    )


def built_commands(source: str) -> list[str]:
    """The string-building expressions in ``source`` that look like an IRC command line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        built: ast.expr | None = None
        if isinstance(node, ast.JoinedStr | ast.BinOp):
            built = node
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            built = node.func.value
        if built is None:
            continue
        leading = _leading_text(built)
        starts_with_command = leading is not None and COMMAND_START.match(leading) is not None
        writes_trailing = isinstance(built, ast.JoinedStr) and " :" in _literal_parts(built)
        if starts_with_command or writes_trailing:
            found.append(ast.unparse(node))
    return found


def test_the_check_finds_the_ways_a_line_was_built_before() -> None:
    assert built_commands('line = f"JOIN {channel}"')
    assert built_commands('line = f"{command} {target} :" + text')
    assert built_commands('line = "PRIVMSG " + target + " :" + text')
    assert built_commands('line = "KICK {} {} :{}".format(channel, nick, reason)')
    assert built_commands('line = "NICK %s" % nick')
    assert not built_commands('said = f"On {network}, the nick {nick} is taken"')
    assert not built_commands('said = f"{nick}: {text}"')
    assert not built_commands('token = f"keepalive-{int(now)}"')


def test_no_irc_command_is_built_outside_the_builder_module() -> None:
    found = {path.name: built_commands(path.read_text(encoding="utf-8")) for path in sorted(IRC.glob("*.py"))
             if path != BUILDER}
    assert {name: built for name, built in found.items() if built} == {}


def test_the_new_modules_tests_use_no_private_names() -> None:
    private = re.compile(r"\.(_[a-z][A-Za-z0-9_]*)\b")
    reached = {
        name: private.findall((Path(__file__).parent / name).read_text(encoding="utf-8"))
        for name in NEW_MODULE_TESTS
    }
    assert {name: names for name, names in reached.items() if names} == {}


MAX_LINES = 450


def test_no_irc_module_is_over_450_lines() -> None:
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in IRC.glob("*.py")}
    assert "connector.py" in sizes  # the rule holds for the connector too (it was the exception)
    assert {name: size for name, size in sizes.items() if size > MAX_LINES} == {}
