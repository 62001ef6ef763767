"""JSON with binary values, in the encoding pyaileys (and Baileys) write.

A ``bytes`` value is written as ``{"type": "Buffer", "data": "<base64>"}``
and such an object reads back as ``bytes``. pyaileys' ``MultiFileAuthState``
writes every file of its folder this way; wastore uses the same encoding for
the pyaileys bookkeeping it keeps in ``Device.client_data["pyaileys"]``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"type": "Buffer", "data": base64.b64encode(bytes(obj)).decode("ascii")}
    raise TypeError(f"a {type(obj).__name__} cannot be written as JSON")


def _hook(obj: dict[str, Any]) -> Any:
    if obj.get("type") == "Buffer" and isinstance(obj.get("data"), str) and len(obj) == 2:
        try:
            return base64.b64decode(obj["data"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a Buffer object whose data is not base64") from None
    return obj


def dumps(obj: Any) -> str:
    """Compact JSON, keys sorted (the same value gives the same text).

    Raises:
        TypeError: a value JSON cannot hold.
        ValueError: a float that is not finite.
    """
    return json.dumps(obj, default=_default, sort_keys=True, separators=(",", ":"), allow_nan=False)


def loads(text: str | bytes) -> Any:
    """Parse JSON, turning Buffer objects into ``bytes``.

    Raises:
        ValueError: not JSON, or a Buffer whose data is not base64.
    """
    return json.loads(text, object_hook=_hook)
