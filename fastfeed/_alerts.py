"""tastytrade account streamer ("AlertStreamer") drop-in: order fills, balances, positions, alerts.

``fastfeed.tastytrade.AlertStreamer`` has tastytrade's API (``AlertStreamer(session, ...)``,
``await AlertStreamer(session)`` / ``async with``, ``subscribe_accounts``,
``subscribe_public_watchlists``, ``subscribe_quote_alerts``, ``subscribe_user_messages``,
``listen(alert_class)``, ``close()``) on top of :class:`fastfeed._connection.ConnectionManager`
(backoff, liveness, callbacks, replay of the desired subscriptions after every reconnect). The
socket is read by the transport every streamer shares (``FeedListener``); its ``MessageCore``
hands each JSON message to this module once per socket read.

Delivery guarantees (order fills travel here):

* every notification received is queued exactly once, in arrival order, in the queue of its
  ``type``; nothing received is discarded on reconnect; batches ``{"results": [...]}`` are
  unpacked in order;
* queues are bounded (``queue_size``) with **back-pressure**: when a queue is full the socket
  is no longer read until its consumers catch up; nothing is ever dropped;
* every ``listen(cls)`` call has its own cursor (fan-out: two loops both see every order);
  notifications that arrive before anyone listens are kept for the first listener;
* a notification that fails validation is delivered anyway as an :class:`InvalidAlert` (raw
  data, same attribute names, ``validation_error`` attached) and logged; it never stops the
  streamer. Unknown types are delivered to ``listen(dict)`` (raw messages) and logged once
  per type.

``listen()`` accepts tastytrade's model classes (``tastytrade.order.PlacedOrder`` …) and yields
instances of them, or fastfeed's own classes below (same field names, no pydantic needed).
The session's token is sent on every message and never logged or shown.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Self, TypeVar, Union, get_args, get_origin, get_type_hints

import orjson

from fastfeed._connection import BackoffConfig, Callback, ConnectionManager, Endpoint
from fastfeed._native.transport import MessageCore
from fastfeed._version import __version__
from fastfeed.errors import (
    ConnectionClosedError,
    ProtocolError,
    StreamerClosedError,
    SubscriptionError,
)

__all__ = [
    "AlertStreamer",
    "AlertData",
    "InvalidAlert",
    "FillInfo",
    "Leg",
    "PlacedOrder",
    "PlacedComplexOrder",
    "AccountBalance",
    "CurrentPosition",
    "TradingStatus",
    "QuoteAlert",
    "Watchlist",
    "ExternalTransaction",
    "UnderlyingYearGainSummary",
    "OrderChain",
    "MAP_ALERTS",
    "STREAMER_URL",
    "CERT_STREAMER_URL",
    "PAPER_STREAMER_URL",
]

log = logging.getLogger("fastfeed.alerts")

STREAMER_URL = "wss://streamer.tastyworks.com"
CERT_STREAMER_URL = "wss://streamer.cert.tastyworks.com"
PAPER_STREAMER_URL = "wss://tastyware.dev/api/notifications"
SOURCE = f"fastfeed/{__version__}"

T = TypeVar("T")

# ---------------------------------------------------------------------------------- models


def _snake(key: str) -> str:
    return key.replace("-", "_")


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Invalid(Exception):
    pass


def _to_decimal(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise _Invalid("bool is not a number")
    if isinstance(v, float):
        return Decimal(repr(v))
    try:
        return Decimal(v if isinstance(v, (int, str)) else str(v))
    except (InvalidOperation, ValueError, TypeError):
        raise _Invalid(f"not a decimal: {v!r}") from None


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise _Invalid("bool is not an int")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    raise _Invalid(f"not an int: {v!r}")


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no"):
        return v.lower() in ("true", "1", "yes")
    raise _Invalid(f"not a bool: {v!r}")


def _to_datetime(v: Any) -> datetime:
    if isinstance(v, (int, float)) and not isinstance(v, bool):

        return datetime.fromtimestamp(v / 1000 if abs(v) > 2e10 else v, tz=UTC)
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v)
        except ValueError:
            pass
    raise _Invalid(f"not a datetime: {v!r}")


def _to_date(v: Any) -> date:
    if isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            pass
    raise _Invalid(f"not a date: {v!r}")


def _to_str(v: Any) -> str:
    if isinstance(v, str):
        return v
    raise _Invalid(f"not a string: {v!r}")


_SCALARS: dict[Any, Any] = {Decimal: _to_decimal, int: _to_int, bool: _to_bool,
                            datetime: _to_datetime, date: _to_date, str: _to_str}


def _converter(tp: Any) -> Any:
    """A function raw -> typed for annotation ``tp`` (``X | None`` handled by the caller)."""
    if tp in _SCALARS:
        return _SCALARS[tp]
    if isinstance(tp, type) and issubclass(tp, AlertData):
        return tp._from_data
    origin = get_origin(tp)
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        conv = _converter(inner)

        def as_list(v: Any) -> list[Any]:
            if not isinstance(v, list):
                raise _Invalid(f"not a list: {v!r}")
            return [conv(x) for x in v]

        return as_list
    if origin is dict:
        def as_dict(v: Any) -> dict[str, Any]:
            if not isinstance(v, dict):
                raise _Invalid(f"not an object: {v!r}")
            return v

        return as_dict
    if origin is Union or str(origin) == "types.UnionType":
        convs = [_converter(a) for a in get_args(tp) if a is not type(None)]

        def first(v: Any) -> Any:
            for c in convs:
                try:
                    return c(v)
                except _Invalid:
                    continue
            raise _Invalid(f"no matching type for {v!r}")

        return first
    return lambda v: v  # Any


class AlertData:
    """Base of fastfeed's own alert classes: kebab-case wire keys → snake_case attributes.

    Fields are declared as annotations; ``X | None = None`` marks optional ones. Values are
    converted (``Decimal``, ``int``, ``bool``, ``datetime``, ``date``, nested classes) as
    tastytrade's pydantic models do; ``*-effect: "Debit"`` makes the listed amounts negative.
    Unknown keys are kept in ``extra``.
    """

    _fields: ClassVar[dict[str, tuple[Any, bool, Any]]] = {}
    _debit_fields: ClassVar[tuple[str, ...]] = ()
    extra: dict[str, Any]

    @classmethod
    def _build_fields(cls) -> dict[str, tuple[Any, bool, Any]]:
        out: dict[str, tuple[Any, bool, Any]] = {}
        hints = get_type_hints(cls)
        for name, tp in hints.items():
            if name.startswith("_") or name == "extra" or get_origin(tp) is ClassVar:
                continue
            args = get_args(tp)
            optional = type(None) in args
            default = getattr(cls, name, None)
            if optional:
                inner = [a for a in args if a is not type(None)]
                tp = inner[0] if len(inner) == 1 else Union[tuple(inner)]  # noqa: UP007 - a typing.Union built at runtime
            required = not optional and name not in cls.__dict__ and not any(
                name in b.__dict__ for b in cls.__mro__[1:])
            out[name] = (_converter(tp), required, default)
        return out

    @classmethod
    def _from_data(cls: type[T], data: Any) -> T:
        if not isinstance(data, dict):
            raise _Invalid(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        klass: Any = cls
        if "_fields" not in klass.__dict__:
            klass._fields = klass._build_fields()
        obj = object.__new__(cls)
        errors: list[str] = []
        seen: set[str] = set()
        for name, (conv, required, default) in klass._fields.items():
            key = _kebab(name)
            seen.add(key)
            if key not in data or data[key] is None:
                if required:
                    errors.append(f"{name}: field required")
                obj.__dict__[name] = copy.copy(default)
                continue
            try:
                obj.__dict__[name] = conv(data[key])
            except _Invalid as exc:
                errors.append(f"{name}: {exc}")
        if errors:
            raise _Invalid(f"{len(errors)} validation error(s) for {cls.__name__}: "
                           + "; ".join(errors[:5]))
        for name in klass._debit_fields:
            if data.get(f"{_kebab(name)}-effect") == "Debit":
                v = obj.__dict__.get(name)
                if isinstance(v, Decimal):
                    obj.__dict__[name] = -abs(v)
        obj.__dict__["extra"] = {k: v for k, v in data.items() if k not in seen}
        return obj

    @classmethod
    def from_data(cls: type[T], data: Any) -> T:
        """Build from a notification's ``data`` (kebab-case keys); raises ``ValueError``."""
        try:
            return cls._from_data(data)  # type: ignore[attr-defined, no-any-return]
        except _Invalid as exc:
            raise ValueError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """The typed fields as a dict (snake_case names)."""
        return {k: v for k, v in self.__dict__.items() if k != "extra"}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        body = " ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if v is not None)
        return f"{type(self).__name__}({body})"


class FillInfo(AlertData):
    fill_id: str
    quantity: Decimal
    fill_price: Decimal
    filled_at: datetime
    destination_venue: str | None = None
    ext_group_fill_id: str | None = None
    ext_exec_id: str | None = None


class Leg(AlertData):
    instrument_type: str
    symbol: str
    action: str
    quantity: Decimal | None = None
    remaining_quantity: Decimal | None = None
    fills: list[FillInfo] | None = None


class PlacedOrder(AlertData):
    """Wire type ``Order`` (tastytrade ``PlacedOrder``)."""

    _debit_fields = ("price", "value")
    id: int
    account_number: str
    time_in_force: str
    order_type: str
    underlying_symbol: str
    underlying_instrument_type: str
    status: str
    cancellable: bool
    editable: bool
    edited: bool
    updated_at: datetime
    legs: list[Leg]
    size: Decimal | None = None
    price: Decimal | None = None
    gtc_date: date | None = None
    value: Decimal | None = None
    stop_trigger: Decimal | None = None
    contingent_status: str | None = None
    confirmation_status: str | None = None
    cancelled_at: datetime | None = None
    cancel_user_id: str | None = None
    cancel_username: str | None = None
    replacing_order_id: int | None = None
    replaces_order_id: int | None = None
    in_flight_at: datetime | None = None
    live_at: datetime | None = None
    received_at: datetime | None = None
    reject_reason: str | None = None
    user_id: str | None = None
    username: str | None = None
    terminal_at: datetime | None = None
    complex_order_id: str | int | None = None
    complex_order_tag: str | None = None
    preflight_id: str | int | None = None
    order_rule: dict[str, Any] | None = None
    source: str | None = None
    external_identifier: str | None = None


class PlacedComplexOrder(AlertData):
    """Wire type ``ComplexOrder``."""

    id: int
    account_number: str
    type: str
    orders: list[PlacedOrder]
    trigger_order: PlacedOrder | None = None
    terminal_at: datetime | None = None
    ratio_price_threshold: Decimal | None = None
    ratio_price_comparator: str | None = None
    ratio_price_is_threshold_based_on_notional: bool | None = None
    related_orders: list[dict[str, Any]] | None = None


class AccountBalance(AlertData):
    _debit_fields = ("pending_cash", "buying_power_adjustment",
                     "unsettled_cryptocurrency_fiat_amount")
    account_number: str
    cash_balance: Decimal
    long_equity_value: Decimal
    short_equity_value: Decimal
    long_derivative_value: Decimal
    short_derivative_value: Decimal
    long_futures_value: Decimal
    short_futures_value: Decimal
    long_futures_derivative_value: Decimal
    short_futures_derivative_value: Decimal
    long_margineable_value: Decimal
    short_margineable_value: Decimal
    margin_equity: Decimal
    equity_buying_power: Decimal
    derivative_buying_power: Decimal
    day_trading_buying_power: Decimal
    futures_margin_requirement: Decimal
    available_trading_funds: Decimal
    maintenance_requirement: Decimal
    maintenance_call_value: Decimal
    reg_t_call_value: Decimal
    day_trading_call_value: Decimal
    day_equity_call_value: Decimal
    net_liquidating_value: Decimal
    cash_available_to_withdraw: Decimal
    day_trade_excess: Decimal
    pending_cash: Decimal
    long_cryptocurrency_value: Decimal
    short_cryptocurrency_value: Decimal
    cryptocurrency_margin_requirement: Decimal
    unsettled_cryptocurrency_fiat_amount: Decimal
    closed_loop_available_balance: Decimal
    equity_offering_margin_requirement: Decimal
    long_bond_value: Decimal
    bond_margin_requirement: Decimal
    used_derivative_buying_power: Decimal
    snapshot_date: date
    reg_t_margin_requirement: Decimal
    futures_overnight_margin_requirement: Decimal
    futures_intraday_margin_requirement: Decimal
    maintenance_excess: Decimal
    pending_margin_interest: Decimal
    effective_cryptocurrency_buying_power: Decimal
    updated_at: datetime
    apex_starting_day_margin_equity: Decimal | None = None
    buying_power_adjustment: Decimal | None = None
    time_of_day: str | None = None


class CurrentPosition(AlertData):
    _debit_fields = ("realized_day_gain", "realized_today")
    account_number: str
    symbol: str
    instrument_type: str
    underlying_symbol: str
    quantity: Decimal
    quantity_direction: str
    close_price: Decimal
    average_open_price: Decimal
    multiplier: Decimal
    cost_effect: str
    is_suppressed: bool
    is_frozen: bool
    realized_day_gain: Decimal
    realized_today: Decimal
    created_at: datetime
    updated_at: datetime
    mark: Decimal | None = None
    mark_price: Decimal | None = None
    restricted_quantity: Decimal | None = None
    expires_at: datetime | None = None
    fixing_price: Decimal | None = None
    deliverable_type: str | None = None
    average_yearly_market_close_price: Decimal | None = None
    average_daily_market_close_price: Decimal | None = None
    realized_day_gain_date: date | None = None
    realized_today_date: date | None = None


class TradingStatus(AlertData):
    account_number: str
    equities_margin_calculation_type: str
    fee_schedule_name: str
    futures_margin_rate_multiplier: Decimal
    has_intraday_equities_margin: bool
    id: int
    is_aggregated_at_clearing: bool
    is_closed: bool
    is_closing_only: bool
    is_cryptocurrency_enabled: bool
    is_frozen: bool
    is_full_equity_margin_required: bool
    is_futures_closing_only: bool
    is_futures_intra_day_enabled: bool
    is_futures_enabled: bool
    is_in_day_trade_equity_maintenance_call: bool
    is_in_margin_call: bool
    is_pattern_day_trader: bool
    is_small_notional_futures_intra_day_enabled: bool
    is_roll_the_day_forward_enabled: bool
    are_far_otm_net_options_restricted: bool
    options_level: str
    short_calls_enabled: bool
    small_notional_futures_margin_rate_multiplier: Decimal
    is_equity_offering_enabled: bool
    is_equity_offering_closing_only: bool
    updated_at: datetime
    is_portfolio_margin_enabled: bool | None = None
    is_risk_reducing_only: bool | None = None
    day_trade_count: int | None = None
    autotrade_account_type: str | None = None
    clearing_account_number: str | None = None
    clearing_aggregation_identifier: str | None = None
    is_cryptocurrency_closing_only: bool | None = None
    pdt_reset_on: date | None = None
    cmta_override: int | None = None
    enhanced_fraud_safeguards_enabled_at: datetime | None = None


class QuoteAlert(AlertData):
    user_external_id: str
    symbol: str
    alert_external_id: str
    expires_at: int
    completed_at: datetime
    created_at: datetime
    triggered_at: datetime
    field: str
    operator: str
    threshold: str
    threshold_numeric: Decimal
    dx_symbol: str


class Watchlist(AlertData):
    """Wire type ``PublicWatchlists``."""

    name: str
    watchlist_entries: list[dict[str, Any]] | None = None
    group_name: str | None = "default"
    order_index: int | None = 9999


class ExternalTransaction(AlertData):
    id: int
    account_number: str
    amount: Decimal
    bank_account_type: str
    banking_date: date
    created_at: datetime
    direction: str
    disbursement_type: str
    ext_transfer_id: str
    funds_available_date: date
    is_cancelable: bool
    is_clearing_accepted: bool
    state: str
    transfer_method: str
    updated_at: datetime


class UnderlyingYearGainSummary(AlertData):
    _debit_fields = ("fees", "commissions", "yearly_realized_gain", "realized_lot_gain")
    year: int
    account_number: str
    symbol: str
    instrument_type: str
    fees: Decimal
    commissions: Decimal
    yearly_realized_gain: Decimal
    realized_lot_gain: Decimal


class OrderChain(AlertData):
    """Wire type ``OrderChain`` (tastytrade 10.x had a model; 11+ drops these, issue #297).

    Only ``id`` is required; every other key is kept (typed where listed, else in ``extra``).
    """

    id: int
    account_number: str | None = None
    description: str | None = None
    underlying_symbol: str | None = None
    computed_data: dict[str, Any] | None = None
    lite_nodes: list[Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


#: wire ``type`` → fastfeed class
MAP_ALERTS: dict[str, type[AlertData]] = {
    "AccountBalance": AccountBalance,
    "ComplexOrder": PlacedComplexOrder,
    "ExternalTransaction": ExternalTransaction,
    "Order": PlacedOrder,
    "CurrentPosition": CurrentPosition,
    "QuoteAlert": QuoteAlert,
    "TradingStatus": TradingStatus,
    "UnderlyingYearGainSummary": UnderlyingYearGainSummary,
    "PublicWatchlists": Watchlist,
    "OrderChain": OrderChain,
}
_FF_TYPE = {cls: t for t, cls in MAP_ALERTS.items()}
_UNKNOWN = "\x00unknown"  # queue key of types without a class (listen(dict))
_tt_map: dict[type, str] | None = None


def _tastytrade_types() -> dict[type, str]:
    """tastytrade's model class → wire type (empty when tastytrade is not installed)."""
    global _tt_map
    if _tt_map is None:
        try:
            from tastytrade.streamer import MAP_ALERTS as TT_MAP
        except Exception:  # noqa: BLE001 - an optional tastytrade that fails to import in any way means no mapping
            _tt_map = {}
        else:
            _tt_map = {}
            for k, v in TT_MAP.items():
                _tt_map.setdefault(v, k)
    return _tt_map


class InvalidAlert:
    """A notification that failed validation for the class asked for — delivered, not dropped.

    ``type`` (wire type), ``data`` (raw kebab-case dict), ``timestamp``, ``target`` (the class
    asked for) and ``validation_error``. Attribute access by field name reads the raw data
    (``alert.status`` → ``data["status"]``), so code written for the model keeps working on
    the fields that are present.
    """

    __slots__ = ("type", "data", "timestamp", "target", "validation_error")

    def __init__(self, type_: str, data: Any, timestamp: Any, target: type,
                 validation_error: BaseException) -> None:
        self.type = type_
        self.data = data
        self.timestamp = timestamp
        self.target = target
        self.validation_error = validation_error

    def __getattr__(self, name: str) -> Any:
        data = object.__getattribute__(self, "data")
        if isinstance(data, dict):
            key = _kebab(name)
            if key in data:
                return data[key]
        raise AttributeError(name)

    def __repr__(self) -> str:
        return (f"InvalidAlert(type={self.type!r}, target={self.target.__name__}, "
                f"error={str(self.validation_error).splitlines()[0]!r})")


# ---------------------------------------------------------------------------------- queues


class _Entry:
    __slots__ = ("msg", "cache")

    def __init__(self, msg: dict[str, Any]) -> None:
        self.msg = msg
        self.cache: dict[Any, Any] | None = None


class _Cursor:
    __slots__ = ("pos",)

    def __init__(self, pos: int) -> None:
        self.pos = pos


class _TypeQueue:
    """Received notifications of one type, kept until every active listener has seen them."""

    __slots__ = ("items", "base", "cursors", "waiters", "warned")

    def __init__(self) -> None:
        self.items: deque[_Entry] = deque()
        self.base = 0  # absolute index of items[0]
        self.cursors: list[_Cursor] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.warned = False

    @property
    def end(self) -> int:
        return self.base + len(self.items)

    def push(self, e: _Entry) -> None:
        self.items.append(e)
        self.wake()

    def wake(self) -> None:
        ws, self.waiters = self.waiters, []
        for w in ws:
            if not w.done():
                w.set_result(None)

    def trim(self) -> None:
        if not self.cursors:
            return
        low = min(c.pos for c in self.cursors)
        while self.base < low and self.items:
            self.items.popleft()
            self.base += 1


# ---------------------------------------------------------------------------------- streamer

#: ``DesiredSubscriptions`` keys of the account protocol: the accounts of ``connect`` (one
#: "symbol" per account number) and one entry per topic action (its value as parameter)
_ACCOUNTS = "connect"
_TOPIC = "*"
_TOPIC_ACTIONS = ("public-watchlists-subscribe", "quote-alerts-subscribe",
                  "user-message-subscribe")
#: words of a refused ``connect`` / subscription that mean the token was refused
_AUTH_WORDS = ("token", "auth", "credential", "expired", "forbidden", "denied", "login",
               "session")


_FAILURE: list[type[ConnectionClosedError]] = []


def _failure_class() -> type[ConnectionClosedError]:
    """ConnectionClosedError, mixed with the SDK transport's HTTPXWSException when installed."""
    if not _FAILURE:
        cls: type[ConnectionClosedError] = ConnectionClosedError
        for mod in ("httpx2.websockets", "httpx_ws"):
            try:
                sdk_exc = __import__(mod, fromlist=["HTTPXWSException"]).HTTPXWSException
            except (ImportError, AttributeError):
                continue
            cls = type("StreamerFailure", (ConnectionClosedError, sdk_exc),
                       {"__module__": __name__})
            break
        _FAILURE.append(cls)
    return _FAILURE[0]


def _is_auth_refusal(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in _AUTH_WORDS)


class AlertStreamer(ConnectionManager):
    """tastytrade-compatible account streamer (see the module docstring).

    ``AlertStreamer(session, disconnect_args=(), disconnect_fn=None, reconnect_args=(),
    reconnect_fn=None, url=None)`` (tastytrade 10.2-11.1's positional order); the host is
    chosen from the session as tastytrade 13.x does (``PaperSession`` -> tastyware.dev,
    ``session.is_test`` -> the cert host); ``url`` overrides it. Keyword-only extras: ``ssl_context`` (``None``: verified default for
    ``wss://``), ``heartbeat_interval`` (s, default 15), ``liveness_timeout`` (s without any
    frame before the connection is replaced; default ``2 * heartbeat_interval + 10``),
    ``ack_timeout`` (s, default 10), ``queue_size`` (notifications per type before reading
    pauses; default 10,000), ``max_message_size`` (bytes, default 64 MiB), ``backoff_config``,
    ``hub`` (``"ipc://NAME"`` / ``"nats://HOST:PORT/NAME"``: read a fastfeed hub's account
    stream instead, ``fastfeed.hub``; the session's token is not used).

    The socket is carried by the same :class:`~fastfeed._native.transport.FeedListener` as the
    market-data streamers, with a :class:`~fastfeed._native.transport.MessageCore` (every JSON
    message is handed to this class once per socket read). A refused token is retried once with
    fresh credentials, then raises :class:`~fastfeed.errors.AuthenticationError` (from the
    pending ``subscribe_*`` call and from ``listen()``); ``subscribe_*`` / ``listen`` after
    :meth:`close` raise :class:`~fastfeed.errors.StreamerClosedError`; use from another event
    loop than the one the streamer was started on raises an error that says so.
    """

    def __new__(cls, *args: Any, hub: str | None = None, **kwargs: Any) -> Self:
        """``hub="ipc://NAME"`` / ``"nats://HOST:PORT/NAME"``: read the account stream a
        fastfeed hub holds (JetStream) instead of tastytrade's, same API
        (``fastfeed.hub._account``; the session's token is not used)."""
        from fastfeed.hub._dropins import new_over_hub

        obj: Self = new_over_hub(cls, hub)
        return obj

    def __init__(
        self,
        session: Any,
        disconnect_args: tuple[Any, ...] = (),   # tastytrade 10.2-11.1's positional order
        disconnect_fn: Callback | None = None,
        reconnect_args: tuple[Any, ...] = (),
        reconnect_fn: Callback | None = None,
        url: str | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        heartbeat_interval: float = 15.0,
        liveness_timeout: float | None = None,
        ack_timeout: float = 10.0,
        queue_size: int = 10_000,
        max_message_size: int | None = None,
        backoff_config: BackoffConfig | None = None,
        hub: str | None = None,
    ) -> None:
        super().__init__(MessageCore(feed_name="account"), reconnect_fn=reconnect_fn,
                         reconnect_args=reconnect_args, disconnect_fn=disconnect_fn,
                         disconnect_args=disconnect_args, backoff_config=backoff_config,
                         logger=log)
        self.session = session
        if url is not None:
            self.base_url = url
        elif any(c.__name__ == "PaperSession" for c in type(session).__mro__):
            self.base_url = PAPER_STREAMER_URL
        else:
            self.base_url = CERT_STREAMER_URL if getattr(session, "is_test", False) else STREAMER_URL
        self.proxy: str | None = getattr(session, "proxy", None)
        self.ssl_context = ssl_context
        if max_message_size is not None:
            self.max_message_size = int(max_message_size)
        self.heartbeat_interval = float(heartbeat_interval)
        self.liveness_timeout = (2.0 * self.heartbeat_interval + 10.0
                                 if liveness_timeout is None else float(liveness_timeout))
        self.ack_timeout = float(ack_timeout)
        self.queue_size = max(1, int(queue_size))
        #: request-id of the last message sent (increases across connections)
        self.request_id = 0
        #: web-socket-session-id of the current connection
        self.session_id: str | None = None
        self._queues: dict[str, _TypeQueue] = {}
        self._requests: dict[int, str] = {}  # request-id -> action, this connection's in flight
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._connect_rid: int | None = None
        self._token_refused = False  # on this connection (a refusal is retried once per connection)
        self._last_heartbeat = 0.0
        self._hb_task: asyncio.Task[None] | None = None
        self._unknown_logged: set[str] = set()
        self.n_notifications = 0
        self.n_malformed = 0
        self.n_invalid = 0

    def __repr__(self) -> str:
        state = "ready" if self.ready else ("closed" if self._closed else "connecting")
        return (f"<fastfeed AlertStreamer {state} accounts={len(self._accounts())} "
                f"topics={list(self._topics())}>")

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: ``notifications`` received, ``malformed`` (invalid JSON, skipped),
        ``invalid`` (delivered as :class:`InvalidAlert`), ``connects``, ``reconnects``."""
        return {"notifications": self.n_notifications, "malformed": self.n_malformed,
                "invalid": self.n_invalid, "connects": self.n_connects,
                "reconnects": self.n_reconnects}

    # ------------------------------------------------------------------ desired subscriptions
    # The manager's DesiredSubscriptions is the one record of what this streamer wants; it is
    # replayed in full on every connection (connect first, then the topics).

    def _accounts(self) -> list[str]:
        return list(self._desired.symbols(_ACCOUNTS))

    def _topics(self) -> dict[str, Any]:
        return {a: self._desired.symbols(a)[_TOPIC] for a in _TOPIC_ACTIONS
                if self._desired.symbols(a)}

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Close for good: no reconnect; pending listen() loops end after what they hold."""
        t = self._hb_task
        if t is not None and not t.done():
            t.cancel()
        await super().close()
        if t is not None:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing: the task's own failure was already reported
                pass
        self._fail_waiters(StreamerClosedError("AlertStreamer closed"))

    def fail(self) -> None:
        """tastytrade 13.x's test hook: raise what a broken connection raises, so that a retry
        loop can be tested. The exception is a :class:`~fastfeed.errors.ConnectionClosedError`
        and, when tastytrade 13.x's transport is installed (``httpx2`` / ``httpx-ws``), also its
        ``HTTPXWSException``: ``except* HTTPXWSException`` loops written for the SDK catch it."""
        raise _failure_class()(None, "Something happened and the fake streamer broke, oh no!")

    def _check_open(self) -> None:
        """Misuse: after close(), or from another event loop; a fatal error is raised again."""
        self._check_usable()
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------------ token / sending

    async def _refresh(self) -> None:
        refresh = getattr(self.session, "refresh", None)
        if refresh is not None:
            res = refresh()
            if asyncio.iscoroutine(res) or isinstance(res, asyncio.Future):
                await res

    def _message(self, action: str, value: Any = None) -> tuple[int, bytes]:
        self.request_id += 1
        msg: dict[str, Any] = {
            "auth-token": f"Bearer {self.session.session_token}",
            "action": action,
            "request-id": self.request_id,
            "source": SOURCE,
        }
        if value is not None:
            msg["value"] = value
        return self.request_id, orjson.dumps(msg)

    def _queue_request(self, action: str, value: Any) -> int:
        rid, payload = self._message(action, value)
        self._requests[rid] = action
        self._core.outbox.append(payload)
        return rid

    def _flush(self) -> None:
        if self._core.outbox and self._listener is not None:
            self._listener.flush()

    # ------------------------------------------------------------------ connection hooks

    async def _endpoint(self) -> Endpoint:
        await self._refresh()
        return Endpoint(self.base_url, ssl_context=self.ssl_context, proxy=self.proxy)

    def _on_open(self) -> None:
        self._requests.clear()
        self._core.outbox.clear()
        self.session_id = None
        self._token_refused = False
        self._last_heartbeat = time.monotonic()
        accounts = self._accounts()
        if accounts:
            self._connect_rid = self._queue_request("connect", accounts)
        else:
            self._connect_rid = None
            # the socket itself needs no authorization; the token is judged by the server's
            # first answer (an ok acknowledgement resets the count of refusals, see _ack)
            failures = self._auth_failures
            self._set_ready()
            self._auth_failures = failures
        if self._under_pressure() and self._listener is not None:
            self._listener.pause()

    def _on_ready(self, reconnected: bool) -> None:
        for action, value in self._topics().items():
            self._queue_request(action, value)

    def _silence_timeout(self) -> float | None:
        return self.liveness_timeout

    def _tick_interval(self) -> float:
        return max(0.01, min(1.0, self.heartbeat_interval / 4.0, self.liveness_timeout / 4.0))

    def _on_tick(self, now: float) -> None:
        # No heartbeat while reading is paused (back-pressure): a write that fails on a reset
        # socket makes the loop close it with received-but-unread notifications still in the
        # kernel; without writes, the reset is only seen after those bytes have been read.
        if self._listener is not None and self._listener.paused:
            return
        if now - self._last_heartbeat >= self.heartbeat_interval and (
                self._hb_task is None or self._hb_task.done()):
            self._last_heartbeat = now
            self._hb_task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        try:
            await self._refresh()
            if self._listener is not None and self.ready and not self._listener.paused:
                rid, payload = self._message("heartbeat")
                self._requests[rid] = "heartbeat"
                self._listener.send(payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("heartbeat failed")

    def _wake_all(self) -> None:
        for q in self._queues.values():
            q.wake()
        if self._error is not None:  # fatal: the pending subscribe_* calls get it too
            self._fail_waiters(self._error)

    def _fail_waiters(self, exc: BaseException) -> None:
        waiters, self._waiters = self._waiters, {}
        for ws in waiters.values():
            for w in ws:
                if not w.done():
                    w.set_exception(exc)

    # ------------------------------------------------------------------ incoming

    def _on_control(self, events: list[Any]) -> None:
        for raw in events:
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                self.n_malformed += 1
                self._on_protocol_error(ProtocolError("account", f"invalid JSON ({exc})"))
                continue
            self._handle(msg)

    def _handle(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            self._unknown(msg, "<not an object>")
            return
        results = msg.get("results")
        if isinstance(results, list) and "type" not in msg:
            for r in results:
                self._handle(r)
            return
        if "type" in msg:
            self._notification(msg)
        elif "request-id" in msg or "status" in msg:
            self._ack(msg)
        else:
            self._unknown(msg, "<no type>")

    def _refused_token(self, action: str, text: str) -> None:
        """The server refused the token: reconnect with fresh credentials once, then
        AuthenticationError (the pending subscribe_* calls stay pending across the retry: the
        subscriptions are replayed on the new connection)."""
        if self._token_refused:  # already handled for this connection
            return
        self._token_refused = True
        self._auth_failed(f"account streamer refused the token ({action}: {text})")

    def _ack(self, msg: dict[str, Any]) -> None:
        rid = msg.get("request-id")
        sid = msg.get("web-socket-session-id")
        if isinstance(sid, str):
            self.session_id = sid
        req = self._requests.pop(rid, None) if isinstance(rid, int) else None
        action = req if req is not None else str(msg.get("action"))
        ok = msg.get("status") == "ok"
        text = str(msg.get("message") or "")
        if ok:
            self._auth_failures = 0
        elif _is_auth_refusal(text):
            self._refused_token(action, text or "error")
            return
        if action == "heartbeat":
            if not ok:
                log.warning("heartbeat rejected: %s", text or "error")
            return
        if action == "connect" and req is not None and rid == self._connect_rid:
            # the connect that opened this connection
            self._connect_rid = None
            if ok:
                self._set_ready()
                self._resolve(action, None)
            else:
                self._fail(SubscriptionError(f"connect rejected: {text or 'error'}"))
            return
        if ok:
            self._resolve(action, None)
            return
        if text == "connect-not-completed":
            text = "connect-not-completed (call subscribe_accounts() before other subscriptions)"
        if action in _TOPIC_ACTIONS:
            self._desired.clear(action)
        log.warning("%s rejected: %s", action, text or "error")
        self._resolve(action, text or "error")

    def _resolve(self, action: str, error: str | None) -> None:
        for w in self._waiters.pop(action, []):
            if w.done():
                continue
            if error is None:
                w.set_result(None)
            else:
                w.set_exception(SubscriptionError(f"{action} rejected: {error}"))

    def _unknown(self, msg: Any, type_: str) -> None:
        if type_ not in self._unknown_logged:
            self._unknown_logged.add(type_)
            log.warning("account streamer: message of unknown type %r kept for listen(dict) "
                        "(logged once per type)", type_)
        self._queue(_UNKNOWN).push(_Entry(msg if isinstance(msg, dict) else {"raw": msg}))
        self._check_pressure(self._queues[_UNKNOWN], _UNKNOWN)

    def _notification(self, msg: dict[str, Any]) -> None:
        self.n_notifications += 1
        t = msg.get("type")
        if not isinstance(t, str) or t not in MAP_ALERTS:
            self._unknown(msg, str(t))
            return
        q = self._queue(t)
        q.push(_Entry(msg))
        self._check_pressure(q, t)

    def _queue(self, key: str) -> _TypeQueue:
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = _TypeQueue()
        return q

    def _check_pressure(self, q: _TypeQueue, key: str) -> None:
        listener = self._listener
        if len(q.items) >= self.queue_size and listener is not None and not listener.paused:
            listener.pause()
            if not q.cursors and not q.warned:
                q.warned = True
                log.warning("reading paused: %d unread %s notifications and nobody listens "
                            "to them (listen() to that type or raise queue_size)",
                            len(q.items), "unknown-type" if key == _UNKNOWN else key)

    def _under_pressure(self) -> bool:
        return any(len(q.items) >= self.queue_size for q in self._queues.values())

    def _maybe_resume(self) -> None:
        lst = self._listener
        if lst is not None and lst.paused and not any(
                len(q.items) > self.queue_size // 2 for q in self._queues.values()):
            lst.resume()

    # ------------------------------------------------------------------ subscriptions

    async def _request(self, action: str, value: Any) -> None:
        """Send ``action`` now when the connection can take it (``connect`` as soon as a socket
        is open, the topics once it is ready), else it is replayed as soon as it can; then wait
        for its acknowledgement."""
        await self._refresh()
        self._check_open()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(action, []).append(fut)
        if self._listener is not None and (self.ready or action == "connect"):
            self._queue_request(action, value() if callable(value) else value)
            self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.ack_timeout)
        except TimeoutError:
            ws = self._waiters.get(action, [])
            if fut in ws:
                ws.remove(fut)
            raise SubscriptionError(
                f"{action}: no acknowledgement within {self.ack_timeout:g} s") from None

    async def subscribe_accounts(self, accounts: Iterable[Any] | Any) -> None:
        """Order, balance, position … updates of ``accounts`` (Account objects or numbers)."""
        self._check_open()
        if isinstance(accounts, str) or hasattr(accounts, "account_number"):
            accounts = [accounts]
        numbers = []
        for a in accounts:
            n = a if isinstance(a, str) else getattr(a, "account_number", None)
            if not isinstance(n, str):
                raise TypeError(f"not an account or account number: {type(a).__name__}")
            numbers.append(n)
        added = self._desired.add(_ACCOUNTS, numbers)
        try:
            await self._request("connect", self._accounts)  # every account, read at send time
        except SubscriptionError:
            self._desired.remove(_ACCOUNTS, added)
            raise

    async def _subscribe_topic(self, action: str, value: Any) -> None:
        self._check_open()
        self._desired.add(action, [_TOPIC], value)
        await self._request(action, value)

    async def subscribe_public_watchlists(self) -> None:
        """Changes in public watchlists (``listen(Watchlist)``)."""
        await self._subscribe_topic("public-watchlists-subscribe", None)

    async def subscribe_quote_alerts(self) -> None:
        """Quote alerts configured by the user (``listen(QuoteAlert)``)."""
        await self._subscribe_topic("quote-alerts-subscribe", None)

    async def subscribe_user_messages(self, session: Any) -> None:
        """User-level messages (value: the user's external id, when the session has it)."""
        user = getattr(session, "user", None)
        ext = getattr(user, "external_id", None)
        await self._subscribe_topic("user-message-subscribe", ext)

    # ------------------------------------------------------------------ consuming

    def _resolve_class(self, alert_class: Any) -> tuple[str, Any]:
        if alert_class is dict:
            return _UNKNOWN, None
        if isinstance(alert_class, str):
            if alert_class not in MAP_ALERTS:
                raise KeyError(f"unknown alert type {alert_class!r}")
            return alert_class, None
        t = _FF_TYPE.get(alert_class)
        if t is not None:
            return t, alert_class
        t = _tastytrade_types().get(alert_class)
        if t is not None:
            return t, alert_class
        raise KeyError(f"{getattr(alert_class, '__name__', alert_class)!r} is not an alert "
                       f"class (known: {', '.join(c.__name__ for c in _FF_TYPE)})")

    def _convert(self, e: _Entry, cls: Any) -> Any:
        if cls is None:
            return e.msg
        cache = e.cache
        if cache is not None and cls in cache:
            return cache[cls]
        msg = e.msg
        data = msg.get("data")
        try:
            if isinstance(cls, type) and issubclass(cls, AlertData):
                obj: Any = cls.from_data(data)
            else:
                # tastytrade models mutate their input (price effects): give them a copy
                obj = cls(**copy.deepcopy(data)) if isinstance(data, dict) else cls(data)
        except Exception as exc:  # noqa: BLE001 - a model's validation error becomes an InvalidAlert handed to the user
            self.n_invalid += 1
            obj = InvalidAlert(str(msg.get("type")), data, msg.get("timestamp"), cls, exc)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("%s notification failed validation as %s (delivered as "
                        "InvalidAlert): %s", msg.get("type"), cls.__name__, first)
        if cache is None:
            e.cache = cache = {}
        cache[cls] = obj
        return obj

    async def listen(self, alert_class: type[T]) -> AsyncIterator[T | InvalidAlert]:
        """Every notification of ``alert_class``'s type, in arrival order, across reconnects.

        ``alert_class``: a fastfeed class (:class:`PlacedOrder` …), a tastytrade model class,
        or ``dict`` for raw messages of unknown types. Each call has its own cursor and starts
        at the oldest notification still held. Items that fail validation come as
        :class:`InvalidAlert`. Ends after :meth:`close`; raises the fatal error, if any.
        """
        self._check_usable()
        key, cls = self._resolve_class(alert_class)
        q = self._queue(key)
        cur = _Cursor(q.base)
        q.cursors.append(cur)
        loop = asyncio.get_running_loop()
        try:
            while True:
                while cur.pos < q.end:
                    e = q.items[cur.pos - q.base]
                    cur.pos += 1
                    q.trim()
                    self._maybe_resume()
                    yield self._convert(e, cls)
                if self._error is not None:
                    raise self._error
                if self._closed:
                    return
                w: asyncio.Future[None] = loop.create_future()
                q.waiters.append(w)
                await w
        finally:
            if cur in q.cursors:
                q.cursors.remove(cur)
            q.trim()
            self._maybe_resume()
