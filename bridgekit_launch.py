"""The ``bridgekit`` command's entry point: ``bridgekit run`` goes on in an interpreter started with
``-OO`` when that interpreter can load precompiled bytecode; every other command, and ``run`` when
it cannot, goes straight to :func:`bridgekit.cli.main`.

Why: a running bridge keeps every module it imported for its whole life, and the docstrings of those
modules are about 4 MB of its resident memory at rest (74 against 78 MB with one IRC network,
``bench/idle.py``; issue 16). ``-OO`` drops docstrings and ``assert`` statements. Nothing the bridge
runs reads a docstring (``generate-config`` does, and keeps them), and its asserts only narrow
types for mypy. The bytecode matters: ``-OO`` loads ``*.opt-2.pyc`` files, which ``pip install``
does not write; without them every module would be compiled from source at each start (slower,
and the compiler's garbage would cost more memory than the docstrings). ``scripts/setup`` writes
them (``python -OO -m compileall``), as docs/admin.md tells an admin to.

This is a top-level module, not part of the ``bridgekit`` package, so that deciding costs nothing:
importing anything under ``bridgekit`` imports the package and its public API first (0.6 s), which
a re-executed interpreter would only import again. Standard library only.

An admin who sets ``PYTHONOPTIMIZE`` (``0`` included) decides instead: the command then runs in the
interpreter it was started in.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence

OPTIMIZE_FLAG = "-OO"
# Modules whose optimised bytecode shows that it was compiled: one of the standard library (its
# opt-2 files are written when Python is installed, by some distributions only) and the largest
# package the bridge loads.
MARKER_MODULES = ("asyncio", "sqlalchemy")


def optimized_argv(
    argv: Sequence[str],
    *,
    optimize: int,
    environ: Mapping[str, str],
    executable: str,
    bytecode_ready: Callable[[], bool],
) -> list[str] | None:
    """The command line to re-execute ``argv`` with under ``-OO``, or None to run it here."""
    if len(argv) < 2 or argv[1] != "run" or optimize >= 2 or "PYTHONOPTIMIZE" in environ:
        return None
    if not argv[0] or not os.path.isfile(argv[0]):  # started as `python -c ...`: no script to run again
        return None
    if not bytecode_ready():
        return None
    return [executable, OPTIMIZE_FLAG, *argv]


def optimized_bytecode_ready(modules: Sequence[str] = MARKER_MODULES) -> bool:
    """Whether each module's ``.opt-2.pyc`` is there, found without importing the module."""
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None or not origin.endswith(".py"):
            return False
        if not os.path.isfile(importlib.util.cache_from_source(origin, optimization=2)):
            return False
    return True


def main() -> int:
    again = optimized_argv(sys.argv, optimize=sys.flags.optimize, environ=os.environ,
                           executable=sys.executable, bytecode_ready=optimized_bytecode_ready)
    if again is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        # The same process (PID, open descriptors), a new interpreter; argv is this command's own.
        os.execv(again[0], again)  # noqa: S606
    from bridgekit.cli import main as cli_main

    return cli_main()
