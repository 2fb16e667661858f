"""Third-party modules the bridge never uses, kept out of its memory: imported first by
``bridgekit/__init__.py``, before anything that imports them.

httpx imports its command-line client (click, rich and pygments: about 4 MB resident for the life
of the bridge) whenever those packages are installed, and they are (irc -> jaraco.text -> typer ->
rich). No bridge runs httpx's CLI: with its module marked absent before httpx is first imported,
httpx keeps a stub ``httpx.main`` instead (its own fallback when the CLI's packages are missing).
A process that imported httpx before bridgekit keeps whatever httpx loaded.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# FastAPI checks every route's annotations for pydantic v1 models (no longer supported by it) by
# importing ``pydantic.v1`` (1.4 MB resident); with it marked absent the check finds none, which is
# true: nothing in a bridge uses pydantic v1.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]


# Two packages whose ``__init__`` imports far more than the bridge uses of them:
#
# - ``sqlalchemy.ext.asyncio`` imports its ORM session (and with it ``sqlalchemy.orm``: 6.7 MB
#   resident), though a bridge's store runs on the async engine and Core alone;
# - ``uvicorn`` imports its command line (``uvicorn.main``: click, multiprocessing, the reloaders),
#   though a bridge only builds a ``Config`` and a ``Server``.
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
