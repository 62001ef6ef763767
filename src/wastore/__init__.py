"""wastore: the persistence layer for Python WhatsApp Web (multi-device) clients.

Every public name is importable from here::

    import wastore

    async with await wastore.open_store("sqlite:///wa.db") as container:
        device_id = await container.create_device()
        pm = await wastore.PersistenceManager.open(container.backend(device_id))
"""

from __future__ import annotations

from .backends.memory import MemoryStore
from .commands import (
    ClearServerCertChain,
    DeviceCommand,
    IncrementLoginCounter,
    SetAccount,
    SetAdvSecretKey,
    SetAppVersion,
    SetEdgeRoutingInfo,
    SetId,
    SetLid,
    SetLidMigrated,
    SetNctSalt,
    SetPreKeyWatermarks,
    SetPropsHash,
    SetPushName,
    SetReadReceiptsDisabled,
    SetServerCertChain,
    SetServerHasPrekeys,
    SetSignedPreKey,
    apply_command,
)
from .contract import (
    AppSyncStore,
    Backend,
    Container,
    DeviceStore,
    LeaseStore,
    ProtocolStore,
    SignalStore,
)
from .device import Device
from .errors import (
    AccountInUseError,
    BackendUnavailableError,
    ConfigError,
    CorruptRecordError,
    DeviceNotFoundError,
    SchemaError,
    SchemaTooNewError,
    StoreError,
    ValidationError,
)
from .jid import JID
from .keys import KeyPair
from .manager import PersistenceManager
from .registry import open_store, register_backend
from .values import (
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
    TcToken,
)

__version__ = "0.1.0"

__all__ = [
    "JID",
    "AccountInUseError",
    "AppStateSyncKey",
    "AppSyncStore",
    "Backend",
    "BackendUnavailableError",
    "ClearServerCertChain",
    "ConfigError",
    "Container",
    "CorruptRecordError",
    "Device",
    "DeviceCommand",
    "DeviceInfo",
    "DeviceListRecord",
    "DeviceNotFoundError",
    "DeviceStore",
    "HashState",
    "IncrementLoginCounter",
    "KeyPair",
    "LeaseStore",
    "LidPnMapping",
    "MemoryStore",
    "MsgSecret",
    "MutationMAC",
    "PersistenceManager",
    "ProtocolStore",
    "SchemaError",
    "SchemaTooNewError",
    "SetAccount",
    "SetAdvSecretKey",
    "SetAppVersion",
    "SetEdgeRoutingInfo",
    "SetId",
    "SetLid",
    "SetLidMigrated",
    "SetNctSalt",
    "SetPreKeyWatermarks",
    "SetPropsHash",
    "SetPushName",
    "SetReadReceiptsDisabled",
    "SetServerCertChain",
    "SetServerHasPrekeys",
    "SetSignedPreKey",
    "SignalStore",
    "StoreError",
    "TcToken",
    "ValidationError",
    "__version__",
    "apply_command",
    "open_store",
    "register_backend",
]
