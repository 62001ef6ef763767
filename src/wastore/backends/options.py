"""Store URLs and options, parsed the same way for every backend.

A store URL carries options in its query string (``sqlite:///wa.db?busy_timeout=10``)
and :func:`wastore.open_store` takes them as keyword arguments too. Each backend
declares its options as a table of converters; :func:`query_options` and
:func:`check_keywords` apply it with one strictness: an unknown option, or a
value its converter refuses (``migrate=maybe``), is a :class:`ConfigError`.
"""

from __future__ import annotations

import contextlib
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


# A "...password=value" parameter: in a query string (ends at & ; #), or in a libpq
# keyword/value string ("host=h password='a b'"), where it ends at a space.
_SECRET_PARAM: Final = re.compile(
    r"""([A-Za-z_]*password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&;#]*)""", re.I
)
_SCHEME: Final = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*:/{1,3}")


def _user_password(text: str) -> tuple[int, int] | None:
    """Where the password of the user part is in ``text`` (start, end), if it has one."""
    m = _SCHEME.match(text)
    start = m.end() if m else 0
    rest = text[start:]
    if "@" in rest:
        # The user part ends at the last "@": a password may hold "@", "/", "?", "#".
        userinfo = rest.rpartition("@")[0]
        if ":" in userinfo:
            begin = start + userinfo.index(":") + 1
            return begin, start + len(userinfo)
        return None
    authority = rest.partition("/")[0]
    user, colon, port = authority.partition(":")
    if m and colon and port and not port.replace(",", "").isdigit():
        begin = start + len(user) + 1  # "scheme://user:pw": pw cannot be a port
        return begin, begin + len(port)
    return None


def redact_url(url: str) -> str:
    """The URL with every password replaced by ``***``, whatever the URL's shape.

    Hidden: the password of the user part (``scheme://user:pw@host``, also when the
    URL is mistyped: ``postgres:/user:pw@host``, ``user:pw@host``, or a password
    holding ``@``, ``/``, ``?`` or ``#``), parameters named ``*password*`` in a query
    string or in a libpq keyword/value string (``host=h password=pw``), and what
    follows ``scheme://user:`` when it cannot be a port (``postgresql://user:pw``).
    """
    text = _SECRET_PARAM.sub(lambda m: m.group(1) + "***", url)
    span = _user_password(text)
    if span is None:
        return text
    return text[: span[0]] + "***" + text[span[1] :]


def url_secrets(url: str) -> set[str]:
    """The passwords a URL holds, as written and percent-decoded (so that a message
    quoting any of them can be scrubbed)."""
    from urllib.parse import unquote

    found = {m.group(2).strip("'") for m in _SECRET_PARAM.finditer(url)}
    span = _user_password(_SECRET_PARAM.sub(lambda m: m.group(1) + "***", url))
    if span is not None:
        hidden = _SECRET_PARAM.sub(lambda m: m.group(1) + "***", url)[span[0] : span[1]]
        found.add(hidden)
    with contextlib.suppress(ValueError):
        found.add(urlsplit(url).password or "")
    # A password holding "?", "#", "/" or "@" is cut there by URL parsers, which may
    # quote a piece of it ("unknown option '<rest of the password>'").
    found |= {p for x in list(found) for p in re.split(r"[/?#@&;]", x) if len(p) >= 4}
    found.discard("")
    found.discard("***")
    return found | {unquote(x) for x in found}


def scrub_secrets(err: BaseException, secrets: Collection[str]) -> BaseException:
    """Replace every one of ``secrets`` by ``***`` in the text of ``err`` and of every
    error it chains (in place: a traceback prints the whole chain): its arguments, its
    text attributes (``OSError``'s file names, a driver's ``detail`` or ``hint``, ...)
    and its notes. Returns ``err``."""
    if not secrets:
        return err
    ordered = sorted(secrets, key=len, reverse=True)

    def clean(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, "***")
        return text

    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(clean(a) if isinstance(a, str) else a for a in current.args)
        names = {"filename", "filename2", *getattr(current, "__dict__", {})}
        for attr in names:
            value = getattr(current, attr, None)
            if isinstance(value, str) and clean(value) != value:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(current, attr, clean(value))
            elif attr == "__notes__" and isinstance(value, list):
                value[:] = [clean(n) if isinstance(n, str) else n for n in value]
        current = current.__cause__ or current.__context__
    return err


def looks_like_libpq_string(text: str) -> bool:
    """``host=h password=pw dbname=d``: a libpq keyword/value string, not a store URL."""
    return bool(_SECRET_PARAM.search(text)) and "://" not in text.partition("password")[0]


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
