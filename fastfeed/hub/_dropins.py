"""The drop-ins pointed at a hub (layer 7): ``hub="ipc://NAME"`` (or ``"nats://HOST:PORT/NAME"``)
given to a drop-in's constructor makes it read from that hub instead of the vendor, with the
same API::

    DXLinkStreamer(session, hub="ipc://main")               # fastfeed.tastytrade
    AsyncStreamClient(key, "stocks", hub="ipc://main")       # fastfeed.polygon
    WebSocketClient(api_key=key, market="stocks", hub="ipc://main")   # fastfeed.massive
    AlertStreamer(session, hub="nats://host:4222/main")      # fastfeed.tastytrade

The object is an instance of the drop-in's class (a subclass of it made here, which takes its
connection from :class:`~fastfeed.hub.HubStreamer` -- or :class:`HubAlertStreamer` for the
account stream): subscriptions go to the hub, which merges them with every other consumer's;
the session, token or API key given is never sent anywhere (the hub holds its own).

``overflow`` is the consumer's own setting, as for ``fastfeed.hub.connect`` (with
``"backpressure"`` it stops reading the hub's stream while full; a drop-oldest hub then
recycles its oldest samples, counted in ``stats``); ``idle_spin_us`` defaults to the hub
consumers' (``HUB_IDLE_SPIN_US``). Polygon ``status`` messages the hub's upstream receives
while it serves (subscription acknowledgements -- every consumer's --, errors,
``slow_consumer``...) reach every consumer's status handler, as the same objects; the hub's own
handshake (``connected``, ``auth_success``) is not replayed. DXLink Candle history
(``subscribe_candle``'s ``start_time``): the hub subscribes upstream with that ``fromTime``
(again if the symbols were already subscribed, so the history comes again); every consumer of
those candle symbols receives it, as the one connection does. What differs from the vendor
connection: Massive's ``raw=True`` gets the frames the hub's upstream receives (as received,
while such a consumer is connected: the hub keeps them only then), which carry every
consumer's channels, merged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastfeed.hub._client import HubStreamer, parse_hub_url

__all__ = ["hub_variant", "new_over_hub"]

_VARIANTS: dict[tuple[type, bool], type] = {}


def _link_init(self: Any, hub: str, feed: str, kwargs: dict[str, Any]) -> None:
    """The hub link of a drop-in whose own ``__init__`` ran with ``kwargs``: its ``overflow``,
    ``busy_poll`` and ``idle_spin_us`` are the consumer's settings (the idle spin's default is
    the hub consumers' own, ``HUB_IDLE_SPIN_US``)."""
    server, name = parse_hub_url(hub)
    if server is not None:
        self.server_url = server
    self._init_hub(name, feed, busy_poll=bool(kwargs.get("busy_poll", False)),
                   idle_spin_us=kwargs.get("idle_spin_us"),
                   overflow=kwargs.get("overflow", "drop_oldest"))


class _DXLinkOverHub:
    """``fastfeed.tastytrade.DXLinkStreamer`` over a hub."""

    def __init__(self, session: Any = None, *args: Any, hub: str, **kwargs: Any) -> None:
        from fastfeed.dxlink.streamer import DXLinkStreamer

        DXLinkStreamer.__init__(self, session, *args, **kwargs)  # type: ignore[arg-type]
        _link_init(self, hub, "dxlink", kwargs)

    async def subscribe(self, event_class: Any, symbols: Iterable[str] | str,
                        refresh_interval: float = 0.1) -> None:
        await HubStreamer.subscribe(self, event_class, symbols)  # type: ignore[arg-type]

    async def _subscribe(self, etype: str, symbols: list[str], from_time: Any,
                         refresh_interval: float) -> None:
        """``subscribe_candle(..., start_time)`` comes here with ``from_time``: the hub
        subscribes upstream with it and the history reaches this consumer (and any other
        consumer of the same candle symbols: the server sends it on the one connection)."""
        from fastfeed.dxlink.session import _to_ms

        await HubStreamer._hub_subscribe(self, etype, symbols,  # type: ignore[arg-type]
                                         _to_ms(from_time))

    async def unsubscribe_all(self, event_class: Any) -> None:
        st: Any = self
        etype = st._wire_type(event_class)
        await HubStreamer.unsubscribe(st, etype, list(st._desired.symbols(etype)))


class _PolygonOverHub:
    """``fastfeed.polygon.AsyncStreamClient`` over a hub (the API key is not used)."""

    def __init__(self, api_key: str = "hub", cluster: Any = "stocks", *args: Any, hub: str,
                 **kwargs: Any) -> None:
        from fastfeed.polygon import AsyncStreamClient

        AsyncStreamClient.__init__(self, api_key, cluster, *args, **kwargs)  # type: ignore[arg-type]
        st: Any = self
        _link_init(self, hub, st._cluster, kwargs)

    async def _ensure_started(self) -> None:
        st: Any = self
        if st.n_connects == 0:
            await HubStreamer.start(st)
        elif st._error is not None:
            raise st._error

    async def __aenter__(self) -> Any:
        """Connects to the hub at once (a missing hub is an error here, not later)."""
        await self._ensure_started()
        return self

    async def subscribe(self, event_class: Any, symbols: Iterable[str] | str,
                        refresh_interval: float = 0.1) -> None:
        """The streamer API's ``subscribe(type, symbols)`` (``"T"``, ``["AAPL"]``) too."""
        await self._ensure_started()
        await HubStreamer.subscribe(self, event_class, symbols)  # type: ignore[arg-type]

    async def _channels_changed(self, action: str, channels: list[str]) -> None:
        """The channels the session just added / removed, as hub subscriptions per ``ev``."""
        st: Any = self
        await self._ensure_started()
        by_ev: dict[str, list[str]] = {}
        for chan in channels:
            ev, _, sym = chan.partition(".")
            by_ev.setdefault(ev, []).append(sym)
        for ev, syms in by_ev.items():
            if ev not in st._core.rings:
                continue
            if action == "subscribe":
                await HubStreamer.subscribe(st, ev, syms)
            else:
                await HubStreamer.unsubscribe(st, ev, syms)

    async def reconnect(self) -> tuple[bool, str]:
        """The hub link reconnects by itself."""
        return True, "Reconnect Successful"

    def _on_hub_status(self, frame: bytes) -> None:
        """A status the hub's upstream received: to the status handler, as the same object a
        direct client's decoder makes of it (decoded here, not acted upon: the hub holds the
        connection)."""
        from fastfeed._native.polygon import PolygonDecoder

        st: Any = self
        dec = st.__dict__.get("_status_decoder")
        if dec is None:
            dec = st._status_decoder = PolygonDecoder(st._cluster)
        dec.feed(frame)
        events, dec.control = dec.control, []
        if events:
            st._status_q.extend(events)
            st._on_wake_data()


def _account_variant(base: type) -> type:
    from fastfeed.account import AlertStreamer
    from fastfeed.hub._account import HubAlertStreamer

    if base is AlertStreamer or issubclass(base, HubAlertStreamer):
        return HubAlertStreamer if base is AlertStreamer else base
    key = (base, True)
    cls = _VARIANTS.get(key)
    if cls is None:
        cls = _VARIANTS[key] = type(base.__name__, (HubAlertStreamer, base),
                                    {"__module__": base.__module__, "_is_hub_variant": True,
                                     "__qualname__": f"{base.__qualname__}[hub]"})
    return cls


def hub_variant(base: type, hub: str) -> type:
    """The subclass of drop-in ``base`` that reads from hub ``hub`` (made once per base and
    transport)."""
    from fastfeed.account import AlertStreamer

    server, _ = parse_hub_url(hub)
    if issubclass(base, AlertStreamer):
        return _account_variant(base)
    key = (base, server is not None)
    cls = _VARIANTS.get(key)
    if cls is not None:
        return cls
    from fastfeed.dxlink.streamer import DXLinkStreamer
    from fastfeed.polygon import AsyncStreamClient

    link: type = HubStreamer
    if server is not None:
        from fastfeed.hub._nats import NatsHubStreamer

        link = NatsHubStreamer
    if issubclass(base, DXLinkStreamer):
        mixin: type = _DXLinkOverHub
    elif issubclass(base, AsyncStreamClient):
        mixin = _PolygonOverHub
    else:
        raise TypeError(f"{base.__name__} cannot read from a hub")
    cls = type(base.__name__, (mixin, link, base),
               {"__module__": base.__module__, "_is_hub_variant": True,
                "__qualname__": f"{base.__qualname__}[hub]"})
    _VARIANTS[key] = cls
    return cls


def new_over_hub(cls: type, hub: str | None) -> Any:
    """What a drop-in's ``__new__`` returns: an instance of ``cls``, or of its hub variant."""
    if hub is not None and not getattr(cls, "_is_hub_variant", False):
        cls = hub_variant(cls, hub)
    return object.__new__(cls)

