"""Third-party modules the bridge never uses, kept out of its memory: imported first by
``bridgekit/__init__.py``, before anything that imports them.

httpx imports its command-line client (click, rich and pygments: about 4 MB resident for the life
of the bridge) whenever those packages are installed, and they are (irc -> jaraco.text -> typer ->
rich). No bridge runs httpx's CLI: with its module marked absent before httpx is first imported,
httpx keeps a stub ``httpx.main`` instead (its own fallback when the CLI's packages are missing).
A process that imported httpx before bridgekit keeps whatever httpx loaded.

Also here, for the same reason (resident memory at rest, issue 16): pydantic models build their
validators on first use, and what imports leave in ``linecache`` is dropped once the bridge is up.
"""

import importlib
import importlib.abc
import importlib.machinery
import linecache
import sys
import types
from collections.abc import Sequence

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# FastAPI checks every route's annotations for pydantic v1 models (no longer supported by it) by
# importing ``pydantic.v1`` (1.4 MB resident); with it marked absent the check finds none, which is
# true: nothing in a bridge uses pydantic v1.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]


# Packages whose ``__init__`` imports far more than the bridge uses of them:
#
# - ``sqlalchemy.ext.asyncio`` imports its ORM session (and with it ``sqlalchemy.orm``: 6.7 MB
#   resident), though a bridge's store runs on the async engine and Core alone;
# - ``uvicorn`` imports its command line (``uvicorn.main``: click, multiprocessing, the reloaders),
#   though a bridge only builds a ``Config`` and a ``Server``;
# - ``tempora`` imports date parsing (python-dateutil: about 1 MB), though the irc package only
#   uses its ``tempora.schedule`` submodule.
#
# Each is given a lean ``__init__`` instead: the names the bridge uses come from the submodules that
# define them, and any other name (``AsyncSession``, ``uvicorn.run``...) runs the package's real
# ``__init__`` on first use, so code that wants the rest still gets all of it. Submodules import as
# usual (the module keeps the package's real spec and path).
_LEAN_NAMES: dict[str, dict[str, str]] = {
    "sqlalchemy.ext.asyncio": {
        "AsyncConnection": "engine", "AsyncEngine": "engine", "AsyncTransaction": "engine",
        "async_engine_from_config": "engine", "create_async_engine": "engine",
        "create_async_pool_from_url": "engine",
        "AsyncMappingResult": "result", "AsyncResult": "result", "AsyncScalarResult": "result",
        "AsyncTupleResult": "result",
    },
    "uvicorn": {"Config": "config", "Server": "server", "__version__": "_version"},
    "tempora": {},
}


class _LeanInitLoader(importlib.abc.Loader):
    def __init__(self, real: importlib.abc.Loader, names: dict[str, str]) -> None:
        self._real = real
        self._names = names

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        real, names = self._real, self._names

        def whole_package(name: str) -> object:
            if name in names:
                value = getattr(importlib.import_module(f"{module.__name__}.{names[name]}"), name)
                setattr(module, name, value)
                return value
            if name.startswith("__"):  # probes (``__wrapped__``...)
                raise AttributeError(name)
            if importlib.machinery.PathFinder.find_spec(f"{module.__name__}.{name}", module.__path__):
                # ``from . import exc`` in a submodule asks the package for the submodule first.
                return importlib.import_module(f"{module.__name__}.{name}")
            del module.__getattr__
            real.exec_module(module)  # the package's own __init__, once, into this module
            return getattr(module, name)

        module.__getattr__ = whole_package  # type: ignore[method-assign]


class _LeanInitFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        names = _LEAN_NAMES.get(fullname)
        if names is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return None
        spec.loader = _LeanInitLoader(spec.loader, names)
        return spec


sys.meta_path.insert(0, _LeanInitFinder())


def _defer_pydantic_schemas() -> None:
    """Pydantic builds each model's validator when the class is made; FastAPI alone defines over a
    hundred models (the OpenAPI document's) that a bridge, which serves no OpenAPI document, never
    validates: about 1 MB resident. With ``defer_build`` as the default, a model's validator is
    built on its first use instead (same validation, same errors). Pydantic keeps its defaults in a
    private module: if that moves, the models are simply built at once, as before."""
    try:
        from pydantic._internal import _config
    except ImportError:  # pragma: no cover - a pydantic without the private module
        return
    defaults = getattr(_config, "config_defaults", None)
    if isinstance(defaults, dict) and "defer_build" in defaults:
        defaults["defer_build"] = True


_defer_pydantic_schemas()


def drop_import_leftovers() -> None:
    """Called once the bridge is up. Libraries that look at their caller's stack while being
    imported (the irc package's resource lookup runs ``inspect.stack()``) leave the source of every
    file on it in ``linecache``: about 0.5 MB kept for the life of the bridge. A traceback reads
    again what it needs."""
    linecache.clearcache()
