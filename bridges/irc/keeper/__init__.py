"""The IRC connection keeper: a process that holds the IRC connections so the bridge can restart
without IRC seeing it (docs/irc.md, "The connection keeper"). ``python -m bridges.irc.keeper -c
config.yaml`` or ``bridgekit-irc-keeper -c config.yaml``; needs the ``keeper`` extra (``redis``).

Nothing is imported here: the bridge without a keeper never loads ``redis``."""
