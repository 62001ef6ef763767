"""The contract suite class (imported lazily by :mod:`wastore.testing`)."""

from __future__ import annotations

import pytest

# Rewrite the asserts of the test modules, so failures show the compared values.
pytest.register_assert_rewrite(
    "wastore.testing._appsync",
    "wastore.testing._device",
    "wastore.testing._protocol",
    "wastore.testing._signal",
    "wastore.testing._support",
    "wastore.testing._transactions",
    "wastore.testing._validation",
)

from ._appsync import AppSyncStoreContract  # noqa: E402
from ._device import ContainerContract, DeviceStoreContract  # noqa: E402
from ._protocol import ProtocolStoreContract  # noqa: E402
from ._signal import SignalStoreContract  # noqa: E402
from ._support import ContractFixtures  # noqa: E402
from ._transactions import TransactionContract  # noqa: E402
from ._validation import ValidationContract  # noqa: E402

__all__ = ["BackendContractSuite"]


@pytest.mark.asyncio
class BackendContractSuite(
    SignalStoreContract,
    AppSyncStoreContract,
    ProtocolStoreContract,
    DeviceStoreContract,
    ContainerContract,
    TransactionContract,
    ValidationContract,
    ContractFixtures,
):
    """Every contract test of :mod:`wastore.contract`, for one backend.

    Subclass it and define the ``container`` fixture (see the module docstring).
    Fixtures provided: ``backend`` (a fresh account of ``container``) and
    ``other_backend`` (a second one, for isolation tests).
    """
