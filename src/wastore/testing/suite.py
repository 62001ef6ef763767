"""The contract suite class (imported lazily by :mod:`wastore.testing`)."""

from __future__ import annotations

import pytest

from ._appsync import AppSyncStoreContract
from ._device import ContainerContract, DeviceStoreContract
from ._protocol import ProtocolStoreContract
from ._signal import SignalStoreContract
from ._support import ContractFixtures
from ._transactions import TransactionContract
from ._validation import ValidationContract

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
