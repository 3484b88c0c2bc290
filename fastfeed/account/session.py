"""The tastytrade account-streamer client session (sans-I/O, typed Python).

:class:`AccountSession` has the shape of ``websockets``' protocol objects: server messages in
(:meth:`~AccountSession.receive_message`), :meth:`~AccountSession.events_received` and
:meth:`~AccountSession.data_to_send` out; the caller passes its clock (``now``, seconds) where
time matters (heartbeats). No asyncio, no socket, no secret in logs, reprs or errors. It alone
owns:

* the handshake of each connection (:meth:`~AccountSession.connection_made`): the socket
  itself is unauthenticated and every client message carries ``auth-token: "Bearer <token>"``;
  the connection is *ready* once its opening ``connect`` (every desired account) is
  acknowledged, or at once when no account is wanted (the token is then judged by the
  server's first answer);
* request ids (increasing across connections) and the matching of every acknowledgement to
  the request it answers;
* the desired subscriptions -- accounts (``connect``) and the topics
  (``public-watchlists-subscribe``, ``quote-alerts-subscribe``, ``user-message-subscribe``) --
  sent at once when the connection can take them and replayed in full on every ready
  connection (``connect`` first, then the topics);
* heartbeat timing (:meth:`~AccountSession.heartbeat_due`,
  :meth:`~AccountSession.send_heartbeat`);
* the meaning of every server message: a refused token (an error whose text speaks of the
  token, authorization, expiry ...) is :class:`TokenRefused` (once per connection; its
  ``error`` is an :class:`~fastfeed.errors.AuthenticationError`); an error acknowledgement is
  :class:`RequestRejected` matched to its request (``error``: a
  :class:`~fastfeed.errors.SubscriptionError`; a rejected topic is no longer desired); a
  notification of a known ``type`` is a :class:`Notification`, batches ``{"results": [...]}``
  are unpacked in order; anything else is an :class:`UnknownMessage` (counted, logged once per
  type); invalid JSON is a :class:`MalformedMessage` (counted).

Protocol reference: ``tastytrade-api.md`` §6.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from fastfeed._subscriptions import DesiredSubscriptions
from fastfeed._version import __version__
from fastfeed.account.events import MAP_ALERTS
from fastfeed.errors import AuthenticationError, ProtocolError, SubscriptionError

__all__ = [
    "AccountSession",
    "Ready",
    "RequestAcked",
    "RequestRejected",
    "TokenRefused",
    "Notification",
    "UnknownMessage",
    "MalformedMessage",
    "Event",
    "SOURCE",
    "TOPIC_ACTIONS",
    "CLOSED",
    "OPENING",
    "READY",
]

log = logging.getLogger("fastfeed.alerts")

#: the ``source`` of every client message
SOURCE = f"fastfeed/{__version__}"
#: subscriptions other than ``connect`` (one per topic, with an optional value)
TOPIC_ACTIONS = ("public-watchlists-subscribe", "quote-alerts-subscribe",
                 "user-message-subscribe")

# states
CLOSED = "CLOSED"      # no connection
OPENING = "OPENING"    # connected, the opening connect not acknowledged yet
READY = "READY"        # usable

#: ``DesiredSubscriptions`` keys: the accounts of ``connect`` (one "symbol" per account number)
#: and one entry per topic action (its value as the parameter)
_ACCOUNTS = "connect"
_TOPIC = "*"
#: words of a refused request that mean the token was refused
_AUTH_WORDS = ("token", "auth", "credential", "expired", "forbidden", "denied", "login",
               "session")
_CONNECT_NOT_COMPLETED = "connect-not-completed"


def _is_auth_refusal(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in _AUTH_WORDS)


# ---------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Ready:
    """The connection is usable. ``authorized``: its ``connect`` was acknowledged (False: no
    account was wanted, nothing was asked of the server yet)."""

    authorized: bool


@dataclass(frozen=True, slots=True)
class RequestAcked:
    """``{"status": "ok"}`` for request ``request_id`` (``action`` as sent)."""

    action: str
    request_id: int | None


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """An error acknowledgement of request ``request_id``. ``opening``: it refused the
    ``connect`` that opens the connection (nothing can be received on it)."""

    action: str
    request_id: int | None
    message: str
    opening: bool = False

    @property
    def error(self) -> SubscriptionError:
        return SubscriptionError(f"{self.action} rejected: {self.message}")


@dataclass(frozen=True, slots=True)
class TokenRefused:
    """The server refused the token (reported once per connection)."""

    action: str
    message: str

    @property
    def error(self) -> AuthenticationError:
        return AuthenticationError(
            f"account streamer refused the token ({self.action}: {self.message})")


@dataclass(frozen=True, slots=True)
class Notification:
    """``{"type", "data", "timestamp"}`` of a known ``type`` (a key of ``MAP_ALERTS``)."""

    type: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message of an unknown ``type``, without ``type`` or not an object (``{"raw": ...}``)."""

    type: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MalformedMessage:
    """A message that is not JSON (skipped)."""

    error: ProtocolError


Event = (Ready | RequestAcked | RequestRejected | TokenRefused | Notification | UnknownMessage
         | MalformedMessage)


# ---------------------------------------------------------------------------------- session


class AccountSession:
    """Account-streamer client state machine (see the module docstring).

    ``AccountSession(*, heartbeat_interval=15.0, source=SOURCE)``. Per connection:
    :meth:`connection_made`, then :meth:`receive_message` for every message received, and
    :meth:`connection_lost`; after each call, send :meth:`data_to_send` and act on
    :meth:`events_received`. The token is given with :meth:`set_token` (again whenever it was
    refreshed) and is only ever written into outgoing messages.
    """

    def __init__(self, *, heartbeat_interval: float = 15.0, source: str = SOURCE) -> None:
        self.heartbeat_interval = float(heartbeat_interval)
        self.source = source
        #: what the user wants: replayed on every ready connection
        self.desired = DesiredSubscriptions()
        self.state = CLOSED
        #: request-id of the last message sent (increases across connections)
        self.request_id = 0
        #: ``web-socket-session-id`` of the current connection
        self.session_id: str | None = None
        self.n_notifications = 0    # messages with a "type" (known or not)
        self.n_unknown = 0          # messages delivered as UnknownMessage
        self.n_malformed = 0        # messages that were not JSON
        self._token: str | None = None
        self._requests: dict[int, str] = {}    # request-id -> action, this connection's
        self._opening_id: int | None = None    # request-id of the connect opening it
        self._token_refused = False            # reported for this connection
        self._last_heartbeat: float | None = None
        self._unknown_logged: set[str] = set()
        self._events: list[Event] = []
        self._outbox: list[bytes] = []

    def __repr__(self) -> str:
        return (f"<AccountSession {self.state} accounts={len(self.accounts)} "
                f"topics={list(self.topics)} request_id={self.request_id}>")

    # ------------------------------------------------------------------ output

    def events_received(self) -> list[Event]:
        """What happened since the last call, in order."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[bytes]:
        """The messages to send, in order."""
        out, self._outbox = self._outbox, []
        return out

    # ------------------------------------------------------------------ token

    def set_token(self, token: str) -> None:
        """The access token to send (``Bearer`` is added); never logged or shown."""
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, not {type(token).__name__}")
        self._token = token

    def _redact(self, text: str) -> str:
        token = self._token
        return text.replace(token, "***") if token and token in text else text

    # ------------------------------------------------------------------ desired subscriptions

    @property
    def accounts(self) -> list[str]:
        """The desired account numbers (the value of every ``connect``)."""
        return list(self.desired.symbols(_ACCOUNTS))

    @property
    def topics(self) -> dict[str, Any]:
        """The desired topic actions and their values."""
        return {a: self.desired.symbols(a)[_TOPIC] for a in TOPIC_ACTIONS
                if self.desired.symbols(a)}

    def want_accounts(self, numbers: Iterable[str]) -> list[str]:
        """Add account numbers to the desired set; returns the new ones (send with
        ``request("connect")``)."""
        return self.desired.add(_ACCOUNTS, numbers)

    def unwant_accounts(self, numbers: Iterable[str]) -> list[str]:
        """Remove account numbers (e.g. those of a refused ``connect``)."""
        return self.desired.remove(_ACCOUNTS, numbers)

    def want_topic(self, action: str, value: Any = None) -> None:
        """Add a topic (one of ``TOPIC_ACTIONS``) to the desired set (send with
        ``request(action)``)."""
        if action not in TOPIC_ACTIONS:
            raise ValueError(f"not a topic: {action!r} (one of {', '.join(TOPIC_ACTIONS)})")
        self.desired.add(action, [_TOPIC], value)

    def request(self, action: str) -> int | None:
        """Send ``connect`` (every desired account) or a desired topic now, when the
        connection can take it: ``connect`` as soon as one is open, a topic once it is ready.
        Returns the request-id, or None when it will be sent by the replay of the next ready
        connection instead."""
        if action == _ACCOUNTS:
            if self.state == CLOSED:
                return None
            return self._send_request(action, self.accounts)
        if action not in TOPIC_ACTIONS:
            raise ValueError(f"unknown request {action!r}")
        if self.state != READY or action not in self.topics:
            return None
        return self._send_request(action, self.topics[action])

    # ------------------------------------------------------------------ connection

    def connection_made(self, now: float) -> None:
        """A new connection is open: queue its opening ``connect`` (every desired account), or,
        with no account, be ready at once and replay the topics."""
        self.connection_lost()
        self._last_heartbeat = now
        accounts = self.accounts
        if accounts:
            self.state = OPENING
            self._opening_id = self._send_request(_ACCOUNTS, accounts)
        else:
            self._become_ready(authorized=False)

    def connection_lost(self) -> None:
        """Forget the connection (requests in flight, session id; unsent messages are dropped:
        they belong to it). The desired subscriptions stay, for the next connection."""
        self.state = CLOSED
        self.session_id = None
        self._requests.clear()
        self._opening_id = None
        self._token_refused = False
        self._outbox.clear()

    def _become_ready(self, authorized: bool) -> None:
        self.state = READY
        self._events.append(Ready(authorized))
        for action, value in self.topics.items():
            self._send_request(action, value)

    # ------------------------------------------------------------------ heartbeats

    def heartbeat_due(self, now: float) -> bool:
        """True when the connection is ready and no heartbeat went out for
        ``heartbeat_interval`` seconds (counted from the connection's start)."""
        last = self._last_heartbeat
        return self.state == READY and last is not None and now - last >= self.heartbeat_interval

    def send_heartbeat(self, now: float) -> int | None:
        """Queue a ``heartbeat`` (when ready); returns its request-id."""
        if self.state != READY:
            return None
        self._last_heartbeat = now
        return self._send_request("heartbeat", None)

    # ------------------------------------------------------------------ sending

    def _send_request(self, action: str, value: Any) -> int:
        if self._token is None:
            raise RuntimeError("AccountSession: no token (call set_token() first)")
        self.request_id += 1
        msg: dict[str, Any] = {
            "auth-token": f"Bearer {self._token}",
            "action": action,
            "request-id": self.request_id,
            "source": self.source,
        }
        if value is not None:
            msg["value"] = value
        self._requests[self.request_id] = action
        self._outbox.append(orjson.dumps(msg))
        return self.request_id

    # ------------------------------------------------------------------ receiving

    def receive_message(self, message: bytes | str) -> None:
        """One whole message from the server (a websocket TEXT message)."""
        try:
            msg = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            self.n_malformed += 1
            self._events.append(MalformedMessage(ProtocolError("account", f"invalid JSON ({exc})")))
            return
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

    def _notification(self, msg: dict[str, Any]) -> None:
        self.n_notifications += 1
        t = msg.get("type")
        if not isinstance(t, str) or t not in MAP_ALERTS:
            self._unknown(msg, str(t))
            return
        self._events.append(Notification(t, msg))

    def _unknown(self, msg: Any, type_: str) -> None:
        self.n_unknown += 1
        if type_ not in self._unknown_logged:
            self._unknown_logged.add(type_)
            log.warning("account streamer: message of unknown type %r kept for listen(dict) "
                        "(logged once per type)", type_)
        self._events.append(UnknownMessage(type_, msg if isinstance(msg, dict) else {"raw": msg}))

    def _ack(self, msg: dict[str, Any]) -> None:
        rid = msg.get("request-id")
        sid = msg.get("web-socket-session-id")
        if isinstance(sid, str):
            self.session_id = sid
        req = self._requests.pop(rid, None) if isinstance(rid, int) else None
        action = req if req is not None else str(msg.get("action"))
        ok = msg.get("status") == "ok"
        text = self._redact(str(msg.get("message") or ""))
        if not ok and _is_auth_refusal(text):
            if not self._token_refused:   # one report per connection
                self._token_refused = True
                self._events.append(TokenRefused(action, text or "error"))
            return
        opening = req == _ACCOUNTS and rid == self._opening_id
        if opening:
            self._opening_id = None
        if ok:
            if opening:
                self._become_ready(authorized=True)
            self._events.append(RequestAcked(action, rid if req is not None else None))
            return
        text = text or "error"
        if action == "heartbeat":
            log.warning("heartbeat rejected: %s", text)
            return
        if text == _CONNECT_NOT_COMPLETED:
            text += " (call subscribe_accounts() before other subscriptions)"
        if action in TOPIC_ACTIONS:
            self.desired.clear(action)   # refused: not replayed later
        if not opening:
            log.warning("%s rejected: %s", action, text)
        self._events.append(RequestRejected(action, rid if req is not None else None, text,
                                            opening))
