"""iceoryx2 shared-memory transport of the hub (layer 7): one publish-subscribe service per
feed, carrying the feed's envelopes (``_wire``) in order.

* Service ``fastfeed/<hub name>/<feed>``, payload ``Slice[c_uint8]`` (variable size, grown by
  powers of two for large batches).
* Overflow maps onto iceoryx2's own settings: ``"drop_oldest"`` = safe overflow (a slow
  subscriber's oldest unread sample is recycled; the consumer sees the jump in sequence numbers
  and counts it) with ``DiscardData``; ``"backpressure"`` = no safe overflow and
  ``RetryUntilDelivered`` (the hub waits for the slowest subscriber).
* A consumer may hold ``loans`` samples at once (its zero-copy batches); past that it
  copies the oldest out (``LoanLimitReached``).
* iceoryx2's Python binding exposes no file descriptor: a consumer polls ``has_samples()``
  while it spins after data and is otherwise woken through the hub's control socket
  (``_control``), which the event loop watches like any socket.

iceoryx2 is an optional dependency (``pip install 'fastfeed[hub]'``); importing this module
without it raises an ``ImportError`` naming the extra.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

try:
    import iceoryx2 as iox
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the fastfeed hub needs iceoryx2: pip install 'fastfeed[hub]'") from exc

from fastfeed.hub._wire import ENVELOPE, ENVELOPE_SIZE

__all__ = ["LoanLimitReached", "ShmPublisher", "ShmSettings", "ShmSubscriber", "service_name"]

iox.set_log_level_from_env_or(iox.LogLevel.Error)
log = logging.getLogger("fastfeed.hub")


def service_name(hub: str, feed: str) -> str:
    return f"fastfeed/{hub}/{feed}"


class LoanLimitReached(Exception):
    """The consumer holds as many samples as the service lets it (``ShmSettings.loans``)."""


class ShmSettings:
    """QoS of a feed's service (the hub and every consumer must agree; the hub decides and
    tells consumers in its hello message)."""

    def __init__(self, overflow: str = "drop_oldest", buffer: int = 256,
                 max_subscribers: int = 16, initial_slice: int = 16384, loans: int = 32) -> None:
        if overflow not in ("drop_oldest", "backpressure"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'backpressure', not {overflow!r}")
        self.overflow = overflow
        self.buffer = int(buffer)
        self.max_subscribers = int(max_subscribers)
        self.initial_slice = int(initial_slice)
        self.loans = int(loans)

    def as_dict(self) -> dict[str, Any]:
        return {"overflow": self.overflow, "buffer": self.buffer,
                "max_subscribers": self.max_subscribers, "initial_slice": self.initial_slice,
                "loans": self.loans}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShmSettings:
        return cls(**{k: d[k] for k in ("overflow", "buffer", "max_subscribers",
                                         "initial_slice", "loans") if k in d})

    def open_service(self, node: Any, name: str) -> Any:
        return (node.service_builder(iox.ServiceName.new(name))
                .publish_subscribe(iox.Slice[ctypes.c_uint8])
                .subscriber_max_buffer_size(self.buffer)
                .subscriber_max_borrowed_samples(self.loans)
                .history_size(0)
                .enable_safe_overflow(self.overflow == "drop_oldest")
                .max_subscribers(self.max_subscribers)
                .max_publishers(1)
                .open_or_create())


def new_node() -> Any:
    node = iox.NodeBuilder.new().create(iox.ServiceType.Ipc)
    try:   # state left in /dev/shm by processes that died (a killed hub or consumer)
        iox.Node.try_cleanup_dead_nodes(iox.ServiceType.Ipc, node.config)
    except Exception as exc:  # noqa: BLE001 - best effort, never fatal
        log.debug("iceoryx2 dead-node cleanup failed: %s", exc)
    return node


class ShmPublisher:
    """The hub's side: ``send(envelope fields, body)`` copies the body once into a loaned
    shared-memory sample; subscribers read it in place."""

    def __init__(self, node: Any, name: str, settings: ShmSettings) -> None:
        self.settings = settings
        self._service = settings.open_service(node, name)
        strategy = (iox.BackpressureStrategy.RetryUntilDelivered
                    if settings.overflow == "backpressure" else iox.BackpressureStrategy.DiscardData)
        self._pub = (self._service.publisher_builder()
                     .initial_max_slice_len(settings.initial_slice)
                     .allocation_strategy(iox.AllocationStrategy.PowerOfTwo)
                     .backpressure_strategy(strategy)
                     .create())
        # the binding's methods themselves: its Python wrappers (loan_slice_uninit,
        # assume_init) only check the payload type (a slice, checked here once) at ~1 us a call
        self._loan = getattr(self._pub, "__loan_slice_uninit")
        self.sent = 0
        self.bytes = 0

    def send(self, fields: tuple[Any, ...], body: Any, nbytes: int) -> None:
        """``fields``: the envelope's values after magic/version, up to the layout hash
        (``_wire.ENVELOPE`` order); ``body``: a bytes-like of ``nbytes`` bytes."""
        total = ENVELOPE_SIZE + nbytes
        sample = self._loan(total)
        dst = memoryview((ctypes.c_char * total).from_address(sample.payload_ptr)).cast("B")
        ENVELOPE.pack_into(dst, 0, *fields)
        if nbytes:
            dst[ENVELOPE_SIZE:] = body
        del dst
        getattr(sample, "__assume_init")().send()
        self.sent += 1
        self.bytes += total

    def close(self) -> None:
        self._pub.delete()


class ShmSubscriber:
    """A consumer's side: ``receive()`` -> ``(sample, memoryview)`` of the next message (the
    view reads shared memory in place and is valid while ``sample`` is referenced), or None."""

    def __init__(self, node: Any, name: str, settings: ShmSettings) -> None:
        self._service = settings.open_service(node, name)
        self._sub = self._service.subscriber_builder().create()
        self.loans = settings.loans

    def has_samples(self) -> bool:
        return bool(self._sub.has_samples())

    def receive(self) -> tuple[Any, memoryview] | None:
        """LoanLimitReached when this consumer already holds ``loans`` samples."""
        try:
            sample = self._sub.receive()
        except iox.ReceiveError as exc:
            if "ExceedsMaxBorrows" in str(exc):
                raise LoanLimitReached(str(exc)) from None
            raise
        if sample is None:
            return None
        size = getattr(sample, "__slice_len")   # what sample.payload().len() reads, 0.7 us less
        return sample, memoryview((ctypes.c_char * size).from_address(sample.payload_ptr)).cast("B")

    def close(self) -> None:
        self._sub.delete()
