"""The account streamer's notifications as typed objects (fastfeed's own, no pydantic needed).

:class:`AlertData` and its classes (:class:`PlacedOrder`, :class:`AccountBalance` ...) have the
field names of tastytrade's models; ``MAP_ALERTS`` maps each wire ``type`` to its class, and
:class:`InvalidAlert` is what a notification that fails validation is delivered as. The public
path is ``fastfeed.alerts`` (the same objects); the classes are defined here, so ``__module__``
(pickles, ``inspect``) names ``fastfeed.account.events``.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

__all__ = [
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
    "ALERT_TYPES",
    "tastytrade_types",
]

T = TypeVar("T")


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
#: fastfeed class → wire ``type``
ALERT_TYPES: dict[type[AlertData], str] = {cls: t for t, cls in MAP_ALERTS.items()}
_tt_map: dict[type, str] | None = None


def tastytrade_types() -> dict[type, str]:
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
