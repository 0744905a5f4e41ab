"""The Store protocol (revisioned keys, compare-and-set transactions, watches, leases) and its backends.

Open one with ``open_store("memory://")``, ``open_store("sqlite:///path/to/file.db")`` or
``open_store("etcd://h1:2379,h2:2379")``;
everything else speaks to the ``Store`` protocol, never to a backend.
"""

from pallet.store.errors import (
    Compacted,
    InvalidArgument,
    InvalidArgumentType,
    LeaseNotFound,
    StoreClosed,
    StoreError,
    StoreLocked,
    StoreUnavailable,
    TxnAborted,
    WrongCluster,
)
from pallet.store.factory import DEFAULT_EXPIRY_INTERVAL, check_store_url, open_store
from pallet.store.kv import EventType, KeyValue, WatchEvent
from pallet.store.leases import expire_forever
from pallet.store.protocol import Store, WatchStream
from pallet.store.txn import (
    MAX_TXN_BYTES,
    MAX_TXN_OPS,
    Compare,
    CompareOp,
    Delete,
    DeletePrefix,
    DeleteResponse,
    Get,
    GetPrefix,
    GetPrefixResponse,
    GetResponse,
    Op,
    Put,
    PutResponse,
    Response,
    Target,
    TxnResult,
)

__all__ = [
    "DEFAULT_EXPIRY_INTERVAL",
    "MAX_TXN_BYTES",
    "MAX_TXN_OPS",
    "Compacted",
    "Compare",
    "CompareOp",
    "Delete",
    "DeletePrefix",
    "DeleteResponse",
    "EventType",
    "Get",
    "GetPrefix",
    "GetPrefixResponse",
    "GetResponse",
    "InvalidArgument",
    "InvalidArgumentType",
    "KeyValue",
    "LeaseNotFound",
    "Op",
    "Put",
    "PutResponse",
    "Response",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
    "Target",
    "TxnAborted",
    "TxnResult",
    "WatchEvent",
    "WatchStream",
    "WrongCluster",
    "check_store_url",
    "expire_forever",
    "open_store",
]
