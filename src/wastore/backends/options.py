"""Store URLs and options, parsed the same way for every backend.

A store URL carries options in its query string (``sqlite:///wa.db?busy_timeout=10``)
and :func:`wastore.open_store` takes them as keyword arguments too. Each backend
declares its options as a table of converters; :func:`query_options` and
:func:`check_keywords` apply it with one strictness: an unknown option, or a
value its converter refuses (``migrate=maybe``), is a :class:`ConfigError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from ..errors import ConfigError

Converter = Callable[[str], Any]
"""Turns the text of a URL option into its value; raises ValueError when it is not one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreOptions:
    """What every SQL store is opened with (each backend adds its own)."""

    prefix: str
    """The table prefix (checked)."""
    migrate: bool
    """Upgrade an older schema on open (else it raises SchemaError)."""


_SECRET_PARAM: Final = re.compile(r"((?:^|[?&;])[^=&;]*password[^=&;]*=)[^&;#]*", re.I)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and messages): the
    password of its user part, and query parameters such as ``password=`` or
    ``sslpassword=``."""
    url = _SECRET_PARAM.sub(r"\1***", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is not None:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()
    # A mistyped URL ("postgresql:/user:pw@host", "user:pw@host") has no parsable
    # password but may still hold one: hide whatever could be a "user:password@".
    head, at, tail = url.rpartition("@")
    if at and ":" in head.split("://", 1)[-1]:
        return head.partition(":")[0] + ":***@" + tail
    return url


def url_options(url: str) -> dict[str, str]:
    """The query parameters of a store URL."""
    return dict(url_pairs(url))


def url_pairs(url: str) -> list[tuple[str, str]]:
    """The query parameters of a store URL, in order (repeated ones included)."""
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def flag(text: str) -> bool:
    """A yes/no option: ``1 true yes on`` or ``0 false no off`` (any case)."""
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def query_options(
    scheme: str,
    pairs: Iterable[tuple[str, str]],
    known: Mapping[str, Converter],
    passthrough: Collection[str] = (),
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The options of a URL's query string, converted, and the parameters passed through.

    Args:
        scheme: the URL scheme, for messages.
        pairs: the query parameters, in order (a later one wins).
        known: the backend's options and their converters.
        passthrough: parameters that are not wastore's but the driver's (kept as they are).

    Returns:
        ``(options, kept)``: the converted options and the passed-through pairs.

    Raises:
        ConfigError: an unknown parameter, or a value its converter refuses.
    """
    options: dict[str, Any] = {}
    kept: list[tuple[str, str]] = []
    for key, raw in pairs:
        conv = known.get(key)
        if conv is not None:
            try:
                options[key] = conv(raw)
            except ValueError:
                raise ConfigError(f"{scheme}:// option {key}={raw!r} is not valid") from None
        elif key in passthrough:
            kept.append((key, raw))
        else:
            also = (
                f"; connection parameters: {', '.join(sorted(passthrough))}" if passthrough else ""
            )
            raise ConfigError(
                f"unknown {scheme}:// option {key!r}; wastore options: "
                f"{', '.join(sorted(known))}{also}"
            )
    return options, kept


def check_keywords(scheme: str, options: Iterable[str], known: Collection[str]) -> None:
    """Raise :class:`ConfigError` for a keyword option the backend does not know."""
    for key in options:
        if key not in known:
            raise ConfigError(f"unknown {scheme} option {key!r}; known: {', '.join(sorted(known))}")


def check_positive(value: object, what: str) -> float:
    """A positive number of seconds."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number of seconds, not {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{what} must be positive, not {value!r}")
    return number


def check_flag(value: object, what: str) -> bool:
    """A keyword option that must be True or False."""
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, not {value!r}")
    return value


def check_int(value: object, what: str, lo: int) -> int:
    """An integer option of at least ``lo``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{what} must be an integer, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{what} must be an integer, not {value!r}") from None
    if number < lo:
        raise ConfigError(f"{what} must be at least {lo}, not {number}")
    return number
