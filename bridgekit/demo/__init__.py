"""Run bridgekit on a local homeserver and IRC server, in one command (``scripts/demo``): the
demo, and the pieces of it the end-to-end tests share (servers\x27 configs, ports, processes, Matrix
and IRC clients). Nothing here imports a bridge: the bridge runs as ``bridgekit run -c ...``."""
