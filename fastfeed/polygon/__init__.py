"""Drop-in for the ``polygon`` package's ``AsyncStreamClient`` (pssolanki111, v1.2.8), on fastfeed.

::

    from fastfeed.polygon import AsyncStreamClient, StreamCluster

    async def on_trade(msg: dict) -> None:      # or a plain def
        print(msg["sym"], msg["p"])

    async with AsyncStreamClient(KEY, StreamCluster.STOCKS) as client:
        await client.subscribe_stock_trades(["AAPL", "MSFT"], on_trade)
        while True:
            await client.handle_messages()        # or handle_messages(reconnect=True)

Same names, parameters, defaults, enum values, channel prefixes and symbol rules as the
package; handlers get one plain ``dict`` per event with the wire keys and values. Differences
(all deliberate fixes of the package's defects, polygon-api.md §1.7):

* it connects on websockets >= 14 (D1): the transport is picows, frames go straight into C
  records (``fastfeed.PolygonDecoder``) and dicts are built from them in C;
* ``host`` may be a URL with a scheme (``ws://127.0.0.1:8765``): the URL is then
  ``{host}/{cluster}``, else ``wss://{host}/{cluster}``;
* after a reconnect the subscriptions are sent once (D2, D6: the *current* set, not a log of
  every (un)subscribe); ``change_handler`` works for every prefix (D3);
* an exception in a handler is logged and never triggers a reconnect (D4); pass
  ``handler_errors="raise"`` to have ``handle_messages`` re-raise it;
* async handlers are awaited one event at a time, in order (D5: no task per event);
* running out of reconnection attempts raises :class:`fastfeed.ReconnectionExhausted` (never
  ``sys.exit``), ``auth_failed`` raises :class:`fastfeed.AuthenticationError`,
  ``max_connections`` raises :class:`fastfeed.MaxConnectionsError`; the attempt counter resets
  after every connection that became ready; a connection that never authenticates within
  ``open_timeout`` is a failed attempt (counted in ``stats["failed_attempts"]``, it counts
  against ``max_reconnection_attempts``); ``close_stream()`` before connecting is a no-op (D7);
* the first connection raises a typed error within ``open_timeout`` (10 s): HTTP 401/403
  :class:`fastfeed.AuthenticationError`, another 4xx (a wrong ``host``)
  :class:`fastfeed.ConfigurationError`, unreachable / 5xx / 429 (retried inside that budget)
  :class:`fastfeed.ConnectionFailedError`, each naming the URL and the HTTP status -- never a
  raw ``picows`` exception;
* a status ``error`` (e.g. ``invalid channel``) is logged, counted (``stats["server_errors"]``)
  and kept in ``server_errors``; the stream goes on; ``auth_timeout`` / ``force_disconnect``
  replace the connection (with ``reconnect=True``);
* an ``ev`` without a handler is ignored (the package raised ``KeyError``);
* a ``str`` of symbols without a ``.`` is one ticker (``"AAPL"`` -> ``T.AAPL``); a ``str`` with
  a ``.`` is sent verbatim as channels (``"T.AAPL,Q.MSFT"``), as the package does;
* dict and event handlers are called in wire order, across ``ev`` codes too (records carry a
  wire sequence; ``deliver="batch"`` handlers get one batch per type and socket read); wire
  keys fastfeed's records do not know (a field polygon adds in future) are not in the dicts:
  the decoder counts them (``stats``) so the gap is visible.

Beyond the package: ``deliver="event"`` hands handlers fastfeed event objects
(``fastfeed.polygon_events``) and ``deliver="batch"`` whole :class:`fastfeed.EventBatch` es
(zero-copy, the fast path); ``stats``; ``listen`` / ``listen_batches`` / ``latest`` of
:class:`fastfeed.streamer.Streamer`; the fan-out API ``stream_filter`` / ``add_handler`` /
``send`` / ``exit`` / ``present_ws`` (dict events). Status events (``slow_consumer``,
``max_connections``, ...) reach the ``"status"`` handler as dicts (``deliver="event"``: typed
``PolygonStatus`` objects).

Organised by layer: ``fastfeed.polygon.client`` (this API, over the connection manager),
``fastfeed.polygon.session`` (:class:`PolygonSession`, typed Python, sans-I/O, over the C
decoder ``fastfeed.PolygonDecoder``), ``fastfeed.polygon_events`` (event classes),
``fastfeed.sim.PolygonServer`` (simulator).
"""

from __future__ import annotations

from fastfeed.polygon import client
from fastfeed.polygon.client import *  # noqa: F403 - the package's public names are the client's

__all__: list[str] = []
__all__ += client.__all__
