"""The account-streamer session alone (sans-I/O): messages in, events and bytes out, no socket."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from fastfeed.account.session import (
    CLOSED,
    OPENING,
    READY,
    SOURCE,
    AccountSession,
    MalformedMessage,
    Notification,
    Ready,
    RequestAcked,
    RequestRejected,
    TokenRefused,
    UnknownMessage,
)
from fastfeed.errors import AuthenticationError, ProtocolError, SubscriptionError

TOKEN = "s3cr3t-access-token"
ACCOUNT = "5WT00000"


def _session(**kw: Any) -> AccountSession:
    s = AccountSession(**kw)
    s.set_token(TOKEN)
    return s


def _sent(s: AccountSession) -> list[dict[str, Any]]:
    return [orjson.loads(b) for b in s.data_to_send()]


def _ack(rid: int, action: str, status: str = "ok", **extra: Any) -> bytes:
    return orjson.dumps({"status": status, "action": action, "request-id": rid, **extra})


def _connected(s: AccountSession, now: float = 0.0) -> None:
    """A new connection whose opening connect is acknowledged; what it sent is drained."""
    if not s.accounts:
        s.want_accounts([ACCOUNT])
    s.connection_made(now)
    connect = _sent(s)[0]
    s.receive_message(_ack(connect["request-id"], "connect", **{"web-socket-session-id": "w1"}))


# ---------------------------------------------------------------------------------- handshake


def test_connect_carries_every_account_and_the_token_then_ready_on_its_ack() -> None:
    s = _session()
    assert s.want_accounts([ACCOUNT, "5WT00001"]) == [ACCOUNT, "5WT00001"]
    s.want_topic("quote-alerts-subscribe")
    s.connection_made(0.0)
    assert s.state == OPENING
    assert _sent(s) == [{"auth-token": f"Bearer {TOKEN}", "action": "connect", "request-id": 1,
                         "source": SOURCE, "value": [ACCOUNT, "5WT00001"]}]
    assert s.events_received() == []        # not ready before the server answers
    s.receive_message(_ack(1, "connect", **{"web-socket-session-id": "w-1", "value": [ACCOUNT]}))
    assert s.state == READY and s.session_id == "w-1"
    assert s.events_received() == [Ready(authorized=True), RequestAcked("connect", 1)]
    # the topics follow the connect, once it is acknowledged
    assert [(m["action"], m["request-id"]) for m in _sent(s)] == [("quote-alerts-subscribe", 2)]


def test_without_accounts_ready_at_once_and_topics_sent() -> None:
    s = _session()
    s.want_topic("public-watchlists-subscribe")
    s.want_topic("user-message-subscribe", "ext-1")
    s.connection_made(0.0)
    assert s.state == READY
    assert s.events_received() == [Ready(authorized=False)]
    sent = _sent(s)
    assert [m["action"] for m in sent] == ["public-watchlists-subscribe", "user-message-subscribe"]
    assert "value" not in sent[0] and sent[1]["value"] == "ext-1"


def test_requests_are_sent_when_the_connection_can_take_them() -> None:
    s = _session()
    s.want_accounts([ACCOUNT])
    assert s.request("connect") is None          # no connection: replayed on the next one
    s.want_topic("quote-alerts-subscribe")
    s.connection_made(0.0)
    _sent(s)
    assert s.request("quote-alerts-subscribe") is None   # connect not acknowledged yet
    assert s.data_to_send() == []
    s.want_accounts(["5WT00001"])
    rid = s.request("connect")                   # connect goes out as soon as a socket is open
    assert rid == 2 and _sent(s)[0]["value"] == [ACCOUNT, "5WT00001"]
    s.receive_message(_ack(1, "connect"))
    assert [m["action"] for m in _sent(s)] == ["quote-alerts-subscribe"]
    assert s.request("quote-alerts-subscribe") == 4
    with pytest.raises(ValueError, match="not a topic"):
        s.want_topic("connect")
    with pytest.raises(ValueError, match="unknown request"):
        s.request("account-subscribe")


def test_no_token_no_message() -> None:
    s = AccountSession()
    s.want_accounts([ACCOUNT])
    with pytest.raises(RuntimeError, match="no token"):
        s.connection_made(0.0)
    with pytest.raises(TypeError):
        s.set_token(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- replay


def test_reconnect_replays_connect_then_topics_with_increasing_request_ids() -> None:
    s = _session()
    s.want_accounts([ACCOUNT])
    s.want_topic("public-watchlists-subscribe")
    s.want_topic("quote-alerts-subscribe")
    _connected(s)
    assert [m["request-id"] for m in _sent(s)] == [2, 3]
    s.events_received()
    s.request("quote-alerts-subscribe")          # queued, never sent: the connection drops
    s.connection_lost()
    assert s.state == CLOSED and s.session_id is None
    assert s.data_to_send() == []                # what the old connection left belongs to it
    s.receive_message(_ack(2, "public-watchlists-subscribe"))  # a late ack: not matched any more
    assert s.events_received() == [RequestAcked("public-watchlists-subscribe", None)]

    s.connection_made(10.0)
    assert [(m["action"], m["request-id"]) for m in _sent(s)] == [("connect", 5)]
    s.receive_message(_ack(5, "connect"))
    assert s.events_received() == [Ready(authorized=True), RequestAcked("connect", 5)]
    assert [(m["action"], m["request-id"]) for m in _sent(s)] == [
        ("public-watchlists-subscribe", 6), ("quote-alerts-subscribe", 7)]
    assert s.accounts == [ACCOUNT]


# ---------------------------------------------------------------------------------- acks


def test_error_acks_are_matched_to_their_request() -> None:
    s = _session()
    s.want_accounts([ACCOUNT])
    s.want_topic("public-watchlists-subscribe")
    s.want_topic("quote-alerts-subscribe")
    _connected(s)
    s.events_received()
    (pw, qa) = _sent(s)
    # the answers arrive out of order; the request-id says which request each one answers
    s.receive_message(_ack(qa["request-id"], "ignored-action", "error",
                           message="quote alerts unavailable"))
    s.receive_message(_ack(pw["request-id"], "public-watchlists-subscribe"))
    rejected, acked = s.events_received()
    assert rejected == RequestRejected("quote-alerts-subscribe", qa["request-id"],
                                       "quote alerts unavailable")
    assert isinstance(rejected, RequestRejected)
    err = rejected.error
    assert isinstance(err, SubscriptionError)
    assert str(err) == "quote-alerts-subscribe rejected: quote alerts unavailable"
    assert acked == RequestAcked("public-watchlists-subscribe", pw["request-id"])
    # a refused topic is no longer desired: not replayed on the next connection
    assert list(s.topics) == ["public-watchlists-subscribe"]


def test_connect_not_completed_gets_a_hint_and_unmatched_acks_use_their_action() -> None:
    s = _session()
    s.connection_made(0.0)
    s.events_received()
    s.want_topic("quote-alerts-subscribe")
    rid = s.request("quote-alerts-subscribe")
    s.receive_message(_ack(999, "public-watchlists-subscribe", "error", message="nope"))
    s.receive_message(orjson.dumps({"status": "error", "action": "quote-alerts-subscribe",
                                    "request-id": rid, "message": "connect-not-completed"}))
    unmatched, hinted = s.events_received()
    assert unmatched == RequestRejected("public-watchlists-subscribe", None, "nope")
    assert isinstance(hinted, RequestRejected) and hinted.request_id == rid
    assert "call subscribe_accounts() before other subscriptions" in hinted.message


def test_a_refused_opening_connect_is_marked_opening() -> None:
    s = _session()
    s.want_accounts([ACCOUNT])
    s.connection_made(0.0)
    s.receive_message(_ack(1, "connect", "error", message="invalid account number"))
    (ev,) = s.events_received()
    assert ev == RequestRejected("connect", 1, "invalid account number", opening=True)
    assert s.state == OPENING
    assert str(ev.error) == "connect rejected: invalid account number"


# ---------------------------------------------------------------------------------- token


def test_refused_token_reported_once_per_connection_without_the_token(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = _session()
    s.want_accounts([ACCOUNT])
    s.connection_made(0.0)
    s.receive_message(_ack(1, "connect", "error", message=f"token expired: {TOKEN}"))
    s.receive_message(_ack(2, "heartbeat", "error", message="invalid token"))
    (ev,) = s.events_received()
    assert isinstance(ev, TokenRefused) and ev.action == "connect"
    err = ev.error
    assert isinstance(err, AuthenticationError)
    assert "token expired" in str(err) and TOKEN not in str(err) and TOKEN not in repr(ev)
    assert s.state == OPENING                    # never ready on a refused token
    s.connection_lost()
    s.set_token("fresh-token")
    s.connection_made(1.0)
    assert _sent(s)[0]["auth-token"] == "Bearer fresh-token"
    s.receive_message(_ack(3, "connect", "error", message="Unauthorized"))
    assert [type(e) for e in s.events_received()] == [TokenRefused]   # again: a new connection
    assert TOKEN not in caplog.text and TOKEN not in repr(s)


# ---------------------------------------------------------------------------------- heartbeats


def test_heartbeats_are_due_by_the_given_clock() -> None:
    s = _session(heartbeat_interval=15.0)
    s.want_accounts([ACCOUNT])
    assert not s.heartbeat_due(100.0)            # no connection
    s.connection_made(100.0)
    _sent(s)
    assert not s.heartbeat_due(200.0)            # not ready yet
    assert s.send_heartbeat(200.0) is None
    s.receive_message(_ack(1, "connect"))
    s.events_received()
    assert not s.heartbeat_due(114.9)
    assert s.heartbeat_due(115.0)                # counted from the connection's start
    rid = s.send_heartbeat(115.0)
    assert _sent(s) == [{"auth-token": f"Bearer {TOKEN}", "action": "heartbeat",
                         "request-id": rid, "source": SOURCE}]
    assert not s.heartbeat_due(129.9) and s.heartbeat_due(130.0)
    assert rid is not None
    s.receive_message(_ack(rid, "heartbeat"))
    assert s.events_received() == [RequestAcked("heartbeat", rid)]


def test_a_rejected_heartbeat_is_logged_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    s = _session(heartbeat_interval=1.0)
    _connected(s)
    s.events_received()
    rid = s.send_heartbeat(5.0)
    assert rid is not None
    s.receive_message(_ack(rid, "heartbeat", "error", message="busy"))
    assert s.events_received() == []
    assert "heartbeat rejected: busy" in caplog.text


# ---------------------------------------------------------------------------------- notifications


def test_notifications_batches_unknown_and_malformed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="fastfeed.alerts")
    s = _session()
    _connected(s)
    s.events_received()
    order = {"type": "Order", "data": {"id": 1}, "timestamp": 1}
    s.receive_message(orjson.dumps(order))
    s.receive_message(orjson.dumps({"results": [
        {"type": "AccountBalance", "data": {}}, {"type": "Mystery", "data": {}},
        {"type": "Order", "data": {"id": 2}}]}))
    s.receive_message(b'{"type": "Mystery", "data": {"n": 2}}')
    s.receive_message(b"[1, 2]")
    s.receive_message(b'{"hello": "world"}')
    s.receive_message('{"type": "Order", "data"')      # text or bytes: both accepted
    events = s.events_received()
    assert [type(e) for e in events] == [Notification, Notification, UnknownMessage,
                                         Notification, UnknownMessage, UnknownMessage,
                                         UnknownMessage, MalformedMessage]
    assert events[0] == Notification("Order", order)
    assert [e.message["data"] for e in events[:4] if isinstance(e, Notification)] == [
        {"id": 1}, {}, {"id": 2}]
    unknown = [e for e in events if isinstance(e, UnknownMessage)]
    assert [u.type for u in unknown] == ["Mystery", "Mystery", "<not an object>", "<no type>"]
    assert unknown[2].message == {"raw": [1, 2]}
    malformed = events[-1]
    assert isinstance(malformed, MalformedMessage) and isinstance(malformed.error, ProtocolError)
    assert (s.n_notifications, s.n_unknown, s.n_malformed) == (5, 4, 1)
    # logged once per type
    assert caplog.text.count("unknown type 'Mystery'") == 1
    assert caplog.text.count("unknown type") == 3


def test_repr_shows_the_state_never_the_token() -> None:
    s = _session()
    s.want_accounts([ACCOUNT])
    s.want_topic("quote-alerts-subscribe")
    assert repr(s) == ("<AccountSession CLOSED accounts=1 topics=['quote-alerts-subscribe'] "
                       "request_id=0>")
