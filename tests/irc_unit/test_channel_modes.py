"""MODE lines read by the server's own mode classes, and what they mean for the portal."""

from __future__ import annotations

from bridges.irc.channel_modes import ModeChange, PortalAccess, parse_mode_changes, portal_access


def test_parameters_go_to_the_modes_the_server_says_take_them() -> None:
    changes = parse_mode_changes("+ob-k+lXi", ["alice", "*!*@spam", "key", "10", "xparam"],
                                 member_modes="ohv", chanmodes="beI,kX,l,imnst")
    assert changes == [
        ModeChange(True, "o", "alice"), ModeChange(True, "b", "*!*@spam"), ModeChange(False, "k", "key"),
        ModeChange(True, "l", "10"), ModeChange(True, "X", "xparam"), ModeChange(True, "i"),
    ]
    # ``-l`` takes no parameter: the nick after it stays the voice's.
    changes = parse_mode_changes("-l+v", ["bob"], member_modes="ov")
    assert changes == [ModeChange(False, "l"), ModeChange(True, "v", "bob")]
    assert parse_mode_changes("+b", [], member_modes="ov") == [ModeChange(True, "b", None)]  # cut short


def test_invite_only_or_a_key_close_the_portal_and_secret_unlists_it() -> None:
    assert portal_access({}) == PortalAccess("public", True)
    assert portal_access({"i": ""}) == PortalAccess("invite", True)
    assert portal_access({"k": "sesame"}) == PortalAccess("invite", True)
    assert portal_access({"s": "", "n": ""}) == PortalAccess("public", False)
