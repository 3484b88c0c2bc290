"""Drop-in replacements for the tastytrade SDK's streamers (layer 5).

``DXLinkStreamer`` matches tastytrade's API (the 10.2–11.1 callback generation, which is a
superset of 13.2.3's): ``await DXLinkStreamer(session)`` or ``async with``, ``close()``,
``subscribe`` / ``unsubscribe`` / ``unsubscribe_all``, ``subscribe_candle`` /
``unsubscribe_candle``, ``listen``, ``get_event``, ``get_event_nowait``; plus fastfeed's
``listen_batches``, ``latest`` and ``stats``.

Differences from tastytrade (deliberate, documented):

* events are ``fastfeed.dxfeed`` objects with ``float`` values (not ``Decimal``); NaN/Inf values
  are delivered, not dropped; ``event_class`` may be fastfeed's class or tastytrade's own class
  of the same name -- given tastytrade's class (or with ``events="sdk"``) the events are
  instances of it, converted lazily (``fastfeed._sdk_events``);
* every ``listen()`` of a type sees every event (tastytrade splits events between consumers);
* it reconnects (websockets backoff, the ``WEBSOCKETS_BACKOFF_*`` variables) and replays the
  subscriptions itself after every reconnect; ``reconnect_fn`` may resubscribe too (harmless);
* a silent connection (nothing for the server's keepaliveTimeout) is replaced;
* a refused token raises :class:`fastfeed.AuthenticationError` after one retry -- from
  ``listen`` / ``get_event``, never a silent stop;
* server ERROR messages are read by their meaning (the dxLink spec calls ERROR informational):
  each is logged, counted (``stats["server_errors"]``) and kept in ``server_errors``
  (:class:`fastfeed._connection.ServerError`: error, message, channel, time) and the stream goes
  on; UNAUTHORIZED raises :class:`fastfeed.AuthenticationError`, UNSUPPORTED_PROTOCOL
  :class:`fastfeed.StreamerError`, TIMEOUT replaces the connection, and an ERROR on the channel
  a ``subscribe()`` is waiting for makes that call raise :class:`fastfeed.SubscriptionError`;
* a channel the server closes on its own (CHANNEL_CLOSED) is reopened and its subscriptions
  replayed (``stats["channel_reopens"]``); when that fails ``max_channel_reopens`` times within
  ``channel_reopen_window`` seconds, ``listen`` / ``get_event`` of its types raise
  :class:`fastfeed.SubscriptionError` (the other types go on);
* the connection is a state machine (``state``, ``on_state_change``; see
  :mod:`fastfeed._connection`): the first connect raises a typed error within ``open_timeout``,
  a failed attempt never counts as a reconnect, ``max_reconnect_attempts`` bounds consecutive
  failed attempts (``None``: unlimited, as tastytrade);
* FEED_SUBSCRIPTION is chunked (no 1009 closes for large symbol lists);
* a single ``str`` passed as ``symbols`` is one symbol.

Sessions: either shape tastytrade has had -- ``dxlink_url`` + ``streamer_token`` (+ ``proxy``),
or ``await session._get("/api-quote-tokens")`` returning ``{"token", "dxlink-url"}`` (fetched
again before every reconnect). The token is never logged or shown in a repr.

``AlertStreamer`` (account events: orders, fills, balances, positions …) is re-exported here,
so both streamers come from one import.

``DXLinkStreamer`` lives in :mod:`fastfeed.dxlink.streamer` (beside the DXLink session), the
account streamer in :mod:`fastfeed.account.streamer` (beside the account session); this module
is the tastytrade-shaped front door.
"""

from __future__ import annotations

from fastfeed.account.streamer import AlertStreamer
from fastfeed.dxlink.streamer import CANDLE_DEFAULT_FROM_TIME, DXLinkStreamer

__all__ = ["DXLinkStreamer", "AlertStreamer", "CANDLE_DEFAULT_FROM_TIME"]
