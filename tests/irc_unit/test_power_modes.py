"""Matrix power levels as op/voice: the one table, the users an event changed, the MODE line."""

from __future__ import annotations

from bridges.irc.power_modes import levels_changed, mode_for_level, mode_line


def test_a_level_gets_the_tables_highest_mode_at_or_below_it_that_the_server_has() -> None:
    assert [mode_for_level(level, "ohv") for level in (100, 60, 50, 49, 25, 10, 9, 0)] == [
        "o", "o", "o", "h", "h", "v", None, None]
    assert mode_for_level(25, "ov") == "v"  # no halfops on this server


def test_only_the_users_whose_level_the_event_changed() -> None:
    before = {"users": {"@a:x": 100, "@b:x": 50, "@c:x": 10}, "users_default": 0}
    after = {"users": {"@a:x": 100, "@b:x": 25, "@d:x": 0, "@e:x": 50}, "users_default": 0}
    assert levels_changed(after, before) == {"@b:x": 25, "@c:x": 0, "@e:x": 50}
    assert levels_changed({"users": {"@a:x": "50"}}, None) == {"@a:x": 50}  # levels as strings (rooms < v10)


def test_the_mode_line_gives_one_mode_and_takes_the_others() -> None:
    assert mode_line("#chat", "dave[m]", 60, "ohv").text == "MODE #chat +o-hv dave[m] dave[m] dave[m]"
    assert mode_line("#chat", "dave[m]", 10, "ov").text == "MODE #chat +v-o dave[m] dave[m]"
    assert mode_line("#chat", "dave[m]", 0, "ov").text == "MODE #chat -ov dave[m] dave[m]"
