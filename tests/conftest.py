"""Shared pytest set-up: the fixture plugins every test module can use."""

pytest_plugins = [
    "tests.db_fixtures",
    "tests.synapse_fixtures",
    "tests.irc_fixtures",
    "tests.chatnet_fixtures",
]
