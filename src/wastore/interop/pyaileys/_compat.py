"""The pyaileys names the adapter needs, with a clear error when pyaileys is missing.

Only pyaileys' credential types are imported here (``pyaileys.auth``), which do
not load protobuf: the process stays free to choose protobuf's implementation
(python-axolotl, in the same process, needs the pure-Python one; see
:mod:`wastore.interop.axolotl`).
"""

from __future__ import annotations

try:
    from pyaileys.auth.creds import AuthenticationCreds
    from pyaileys.auth.serde import creds_from_dict
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"wastore.interop.pyaileys needs pyaileys, which is not installed ({err}): "
        "pip install 'wastore[pyaileys]'"
    ) from err

__all__ = ["AuthenticationCreds", "creds_from_dict"]
