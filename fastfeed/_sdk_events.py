"""tastytrade SDK-faithful events: the SDK's own pydantic classes, converted lazily (layer 6).

``DXLinkStreamer.listen(tastytrade.dxfeed.Quote)`` (the SDK's class), or any class with
``DXLinkStreamer(session, events="sdk")``, yields instances of a subclass of the SDK's class
(``fastfeed._sdk_events.Quote`` etc.): ``isinstance(ev, tastytrade.dxfeed.Quote)`` holds, values
have the SDK's types (``Decimal`` where the SDK has ``Decimal``, ``int`` where it has ``int``),
``model_dump()`` / ``model_dump_json()`` / ``==`` / ``repr`` / ``copy`` / pickling are pydantic's own,
and the SDK's properties (``mid_price``, ``micro_price``, ``pending``, ``snapshot_end`` ...) work.

Nothing is converted when an event arrives: the instance holds the fastfeed record and each
field is converted the first time it is read (``fastfeed._native.lazymodel``); pydantic's
validation never runs. Anything that needs all fields (pydantic reads ``__dict__`` for
``model_dump``, ``==``, ``repr``, ``copy``, pickling, ``vars()``) completes the instance first.

Values, for the same wire values, are the SDK's (tastytrade 13.2.3):

* ``Decimal`` from a double is ``Decimal(repr(value))`` (``576.88`` -> ``Decimal('576.88')``),
  as pydantic builds it from the parsed float;
* NaN / Infinity / -Infinity become the field's default, as the SDK's ``change_nan_to_none``
  does: ``Decimal(0)`` for Quote sizes and Candle open/high/low/close, ``None`` for the optional
  fields;
* doubles the SDK types as ``int`` (``Trade.size``, ``Summary.open_interest``, ``Candle.count``,
  ``TimeAndSale.size``, Underlying volumes ...) are ``int``.

Where the SDK *drops* the whole event (a required field is NaN or null, a fractional value in
an ``int`` field), fastfeed delivers it (no event is silently lost): a required ``Decimal``
field keeps ``Decimal('NaN')`` / ``Decimal('Infinity')``, a required ``int`` field reads
``None``, a fractional value stays a ``float``. A char field the wire sent as ``"\\u0000"``
reads ``""`` (the SDK keeps ``"\\x00"``). Event types the SDK has no class for (TradeETH,
Order, Series ...) are fastfeed's own classes in every mode.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

from fastfeed._native.lazymodel import (
    DECIMAL,
    INT,
    KEEP,
    NO_DEFAULT,
    LazyDict,
    LazyField,
    LazyStream,
    wrap,
)

__all__ = ["EventsMode", "SDKEventsMixin", "check_events_mode", "is_sdk_class", "sdk_class"]

#: ``"auto"``: SDK-faithful events when ``listen`` / ``get_event`` is given the SDK's class,
#: fastfeed's fast float events for fastfeed's classes; ``"sdk"``: SDK-faithful events for every
#: class the SDK has; ``"fast"``: fastfeed's events always
EventsMode = Literal["auto", "sdk", "fast"]
_MODES = ("auto", "sdk", "fast")

_SDK_MODULE = "tastytrade.dxfeed"
_classes: dict[str, type | None] = {}


def check_events_mode(events: str) -> EventsMode:
    """``events`` validated; ``"sdk"`` needs the tastytrade package (ImportError otherwise)."""
    if events not in _MODES:
        raise ValueError(f"events must be one of {_MODES}, not {events!r}")
    if events == "sdk":
        try:
            import tastytrade.dxfeed  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"events='sdk' needs the tastytrade package ({exc})") from exc
    return cast(EventsMode, events)


def is_sdk_class(event_class: Any) -> bool:
    """True for the tastytrade SDK's event classes (and fastfeed's SDK-faithful subclasses)."""
    mod = sys.modules.get(_SDK_MODULE)
    if mod is None or not isinstance(event_class, type):
        return False
    return issubclass(event_class, mod.Event)


def sdk_class(wire_type: str) -> type | None:
    """fastfeed's lazy subclass of ``tastytrade.dxfeed.<wire_type>`` (None: no such SDK class)."""
    try:
        return _classes[wire_type]
    except KeyError:
        pass
    cls: type | None = None
    try:
        import tastytrade.dxfeed as sdk
    except ImportError:
        sdk = None  # type: ignore[assignment]
    base = getattr(sdk, wire_type, None) if sdk is not None else None
    if isinstance(base, type) and issubclass(base, sdk.Event) and base is not sdk.Event:
        cls = _build(wire_type, base)
    _classes[wire_type] = cls
    return cls


def __getattr__(name: str) -> type:
    """``fastfeed._sdk_events.Quote`` etc. (built on first use; pickling finds them here)."""
    cls = sdk_class(name) if name[:1].isupper() else None
    if cls is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return cls


# ------------------------------------------------------------------ building the classes

def _field_conversion(info: Any) -> tuple[int, Any]:
    """(LazyField kind, value for NaN/Inf) of one pydantic FieldInfo."""
    from pydantic_core import PydanticUndefined

    ann = info.annotation
    args = set(getattr(ann, "__args__", ()) or (ann,))
    default = info.default if info.default is not PydanticUndefined else NO_DEFAULT
    if any(getattr(m, "func", None) is not None and getattr(m.func, "__name__", "")
           == "zero_from_none" for m in info.metadata):
        default = Decimal(0)  # Candle OHLC: NaN/invalid -> Decimal(0) (WrapValidator)
    if Decimal in args:
        return DECIMAL, default
    if int in args and bool not in args:
        return INT, default
    return KEEP, default


def _build(name: str, base: type) -> type:
    from pydantic import BaseModel

    all_set = frozenset(base.model_fields)  # type: ignore[attr-defined]
    fields = tuple(LazyField(fname, fname, *_field_conversion(info))
                   for fname, info in base.model_fields.items())  # type: ignore[attr-defined]

    def slot(slot_name: str, default: Any) -> property:
        member = BaseModel.__dict__[slot_name]

        def get(self: Any) -> Any:
            try:
                return member.__get__(self, type(self))
            except AttributeError:
                value = default()
                member.__set__(self, value)
                return value

        def put(self: Any, value: Any) -> None:
            member.__set__(self, value)

        return property(get, put)

    ns: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": (f"tastytrade's ``{name}`` with fastfeed's lazily converted values "
                    f"(see :mod:`fastfeed._sdk_events`)."),
        "__slots__": ("_ff",),
        "__dict__": LazyDict(fields),
        # every field was given (as the SDK's from_stream gives every field)
        "__pydantic_fields_set__": slot("__pydantic_fields_set__", lambda: set(all_set)),
        "__pydantic_extra__": slot("__pydantic_extra__", lambda: None),
        "__pydantic_private__": slot("__pydantic_private__", lambda: None),
    }
    cls = type(base)(name, (base,), ns)
    for field in fields:
        type.__setattr__(cls, field.name, field)
    return cls


# ------------------------------------------------------------------ streamer side


class SDKEventsMixin:
    """``listen`` / ``get_event`` / ``get_event_nowait`` / ``latest`` giving SDK-faithful events
    where asked for (``events`` mode, see :data:`EventsMode`). Mix in before ``Streamer``."""

    _events_mode: EventsMode = "auto"

    if TYPE_CHECKING:
        def _wire_type(self, event_class: Any) -> str: ...  # provided by Streamer

        def _ring(self, event_class: Any) -> Any: ...  # provided by Streamer

        def _check_usable(self) -> None: ...  # provided by ConnectionManager

    def _sdk_model(self, event_class: Any) -> type | None:
        mode = self._events_mode
        if mode == "fast" or (mode == "auto" and not is_sdk_class(event_class)):
            return None
        return sdk_class(self._wire_type(event_class))

    def listen(self, event_class: Any) -> AsyncIterator[Any]:
        model = self._sdk_model(event_class)
        if model is None:
            return cast(AsyncIterator[Any], super().listen(event_class))  # type: ignore[misc]
        self._check_usable()
        return cast(AsyncIterator[Any], LazyStream(self, self._ring(event_class).consumer(), model))

    def _model_of(self, event_class: Any) -> type | None:
        return self._sdk_model(event_class)

    def latest(self, event_class: Any, symbol: str) -> Any:
        event = super().latest(event_class, symbol)  # type: ignore[misc]
        model = self._sdk_model(event_class)
        return event if model is None or event is None else wrap(model, event)
