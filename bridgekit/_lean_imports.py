"""Third-party modules the bridge never uses, kept out of its memory: imported first by
``bridgekit/__init__.py``, before anything that imports them.

httpx imports its command-line client (click, rich and pygments: about 4 MB resident for the life
of the bridge) whenever those packages are installed, and they are (irc -> jaraco.text -> typer ->
rich). No bridge runs httpx's CLI: with its module marked absent before httpx is first imported,
httpx keeps a stub ``httpx.main`` instead (its own fallback when the CLI's packages are missing).
A process that imported httpx before bridgekit keeps whatever httpx loaded.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# FastAPI checks every route's annotations for pydantic v1 models (no longer supported by it) by
# importing ``pydantic.v1`` (1.4 MB resident); with it marked absent the check finds none, which is
# true: nothing in a bridge uses pydantic v1.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
