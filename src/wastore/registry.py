"""Opening a store from a URL: ``open_store`` and the scheme registry.

Backends register an opener per URL scheme. The built-in ones are imported
lazily, so ``import wastore`` never needs a database driver; a missing driver
gives a :class:`~wastore.ConfigError` naming the extra to install.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

from .backends.options import (
    looks_like_libpq_string,
    redact_url,
    scrub_secrets,
    url_options,
    url_secrets,
)
from .contract import Container
from .errors import ConfigError

__all__ = [
    "Opener",
    "known_schemes",
    "open_store",
    "redact_url",
    "register_backend",
    "url_options",
]

Opener = Callable[..., Awaitable[Container]]

# scheme -> (module, attribute, extra to install)
_BUILTIN: dict[str, tuple[str, str, str | None]] = {
    "memory": ("wastore.backends.memory", "open_memory", None),
    "sqlite": ("wastore.backends.sqlite", "open_sqlite", None),
    "postgresql": ("wastore.backends.postgres", "open_postgres", "postgres"),
    "postgres": ("wastore.backends.postgres", "open_postgres", "postgres"),
}
_REGISTERED: dict[str, Opener] = {}


def register_backend(scheme: str, opener: Opener) -> None:
    """Make ``open_store("<scheme>://...")`` call ``await opener(url, **options)``."""
    if not scheme or not scheme.isascii() or not scheme.replace("+", "").isalnum():
        raise ConfigError(f"invalid URL scheme {scheme!r}")
    _REGISTERED[scheme.lower()] = opener


def known_schemes() -> list[str]:
    return sorted({*_BUILTIN, *_REGISTERED})


async def open_store(url: str | os.PathLike[str] | Any, **options: Any) -> Container:
    """Open the store at ``url`` and return its :class:`Container`.

    ``url`` is ``memory://``, ``sqlite:///relative.db``, ``sqlite:////abs/path.db``
    or ``postgresql://user:pass@host:port/db`` (also ``postgres://``), or a
    filesystem path (an SQLite file), or an existing asyncpg pool. Options come
    as query parameters or keyword arguments (keyword arguments win).

    Every password ``url`` holds, whatever its shape (a mistyped URL, a libpq
    keyword string), is replaced by ``***`` in the errors raised and in those they
    chain.

    Raises:
        ConfigError: unknown scheme, bad option, or a driver that is not installed.
        SchemaTooNewError: the database was written by a newer wastore.
        BackendUnavailableError: the database cannot be reached.
    """
    secrets = {s for s in url_secrets(url) if len(s) >= 3} if isinstance(url, str) else set()
    try:
        return await _open_store(url, **options)
    except BaseException as err:
        scrub_secrets(err, secrets)
        raise


async def _open_store(url: str | os.PathLike[str] | Any, **options: Any) -> Container:
    """What :func:`open_store` does, before its errors are scrubbed of passwords."""
    if isinstance(url, os.PathLike):
        return await _builtin("sqlite")(os.fspath(url), **options)
    if not isinstance(url, str):
        if type(url).__module__.startswith("asyncpg"):
            return await _builtin("postgresql")(url, **options)
        raise ConfigError(
            f"open_store() takes a URL, a path or an asyncpg pool, not {type(url).__name__}"
        )
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        if ":" in url:
            # "postgres:/user:pw@host/db", "user:pw@host/db", "sqlite:wa.db": a URL with a
            # typo, not a file name (a file whose name has a colon opens as sqlite:///...).
            raise ConfigError(
                f"{redact_url(url)!r} is not a valid store URL (a scheme needs '://'); use one "
                "of: " + ", ".join(f"{s}://..." for s in known_schemes())
            )
        if not url.strip():
            raise ConfigError("open_store() needs a URL or a path, got an empty string")
        if looks_like_libpq_string(url):
            raise ConfigError(
                f"{redact_url(url)!r} is a libpq connection string, not a store URL: use "
                "postgresql://user:password@host:port/db"
            )
        # A bare path names an SQLite file, as on the command line.
        return await _builtin("sqlite")(url, **options)
    if scheme == "sqlite" and looks_like_libpq_string(url):
        raise ConfigError(
            f"{redact_url(url)!r} holds a libpq connection string, not a file name: use "
            "postgresql://user:password@host:port/db"
        )
    if scheme in _REGISTERED:
        return await _REGISTERED[scheme](url, **options)
    if scheme in _BUILTIN:
        return await _builtin(scheme)(url, **options)
    raise ConfigError(
        f"unknown store URL scheme {scheme!r}; known schemes: {', '.join(known_schemes())} "
        "(third-party backends register theirs with wastore.register_backend)"
    )


def _builtin(scheme: str) -> Opener:
    module, attr, extra = _BUILTIN[scheme]
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        hint = f"pip install 'wastore[{extra}]'" if extra else "reinstall wastore"
        missing = getattr(err, "name", None) or str(err)
        raise ConfigError(
            f"the {scheme}:// backend needs {missing!r}, which is not installed: {hint}"
        ) from err
    opener: Opener = getattr(mod, attr)
    return opener
