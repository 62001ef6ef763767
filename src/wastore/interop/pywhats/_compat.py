"""The pywhats names the adapter uses, imported once and quietly.

``pywhats.signal.experimental`` warns (``DeprecationWarning``) at import that
its Signal code is unaudited. The warning concerns the application's choice of
pywhats, not anything the store changes, and under ``-W error`` (pytest's
``filterwarnings = error``) the import itself would fail; it is silenced for
this one import, and later imports come from the module cache.

The adapter replaces private seams of ``pywhats.Client``
(``_open_signal_stores``, ``_save_device``, ``_device``), so it is written
against one release and refuses another.
"""

from __future__ import annotations

import warnings

SUPPORTED_VERSION = "0.2.0"

try:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"pywhats\.signal\.experimental", category=DeprecationWarning
        )
        from pywhats.appstate.keys import AppStateSyncKey
        from pywhats.appstate.patches import HashState
        from pywhats.appstate.store import MutationMac
        from pywhats.signal.experimental.keys import OneTimePreKey
        from pywhats.signal.experimental.ratchet import RatchetState
        from pywhats.signal.experimental.sender_key import (
            SenderKeyState,
            deserialize_sender_key_state,
            serialize_sender_key_state,
        )
        from pywhats.signal.experimental.store import deserialize_state, serialize_state
        from pywhats.store import DeviceStore

        import pywhats
        from pywhats import Client
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"wastore.interop.pywhats needs pywhats, which is not installed ({err}): "
        "pip install 'wastore[pywhats]'"
    ) from err

if pywhats.__version__ != SUPPORTED_VERSION:  # pragma: no cover - the extra pins it
    raise ImportError(
        f"wastore.interop.pywhats is written for pywhats {SUPPORTED_VERSION} (it replaces private "
        f"parts of pywhats.Client), but pywhats {pywhats.__version__} is installed: "
        "pip install 'wastore[pywhats]'"
    )

__all__ = [
    "SUPPORTED_VERSION",
    "AppStateSyncKey",
    "Client",
    "DeviceStore",
    "HashState",
    "MutationMac",
    "OneTimePreKey",
    "RatchetState",
    "SenderKeyState",
    "deserialize_sender_key_state",
    "deserialize_state",
    "serialize_sender_key_state",
    "serialize_state",
]
