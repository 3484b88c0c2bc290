"""tastytrade API details of the drop-in streamers: 10.2-11.1's positional constructor order,
``DXLinkStreamer.session``, ``AlertStreamer.fail()`` and the account host from the session."""

from __future__ import annotations

from typing import Any

import pytest

from fastfeed.account import streamer as _alerts
from fastfeed.errors import ConnectionClosedError, FastFeedError
from fastfeed.tastytrade import AlertStreamer, DXLinkStreamer


class Session:
    dxlink_url = "ws://127.0.0.1:1"
    streamer_token = "qt"
    session_token = "st"
    is_test = False
    proxy = None


async def _on_disconnect(streamer: Any, *args: Any) -> None:
    pass


async def _on_reconnect(streamer: Any, *args: Any) -> None:
    pass


@pytest.mark.parametrize("cls", [DXLinkStreamer, AlertStreamer])
async def test_positional_order_of_tastytrade_11_1(cls: Any) -> None:
    # tastytrade 10.2-11.1: (session, disconnect_args, disconnect_fn, reconnect_args, reconnect_fn)
    s = Session()
    st = cls(s, ("d",), _on_disconnect, ("r",), _on_reconnect)
    assert st.disconnect_args == ("d",) and st.disconnect_fn is _on_disconnect
    assert st.reconnect_args == ("r",) and st.reconnect_fn is _on_reconnect
    assert st.session is s


def test_dxlink_streamer_session_attribute() -> None:
    s = Session()
    assert DXLinkStreamer(s).session is s


async def test_alert_streamer_fail_raises_what_retry_loops_catch() -> None:
    st = AlertStreamer(Session())
    with pytest.raises(ConnectionClosedError) as info:
        st.fail()
    assert isinstance(info.value, FastFeedError)
    sdk_exc = pytest.importorskip("httpx2.websockets").HTTPXWSException
    assert isinstance(info.value, sdk_exc)   # tastytrade 13.x's `except* HTTPXWSException`
    try:
        st.fail()
    except* sdk_exc as group:                # the pattern tastytrade's docs recommend
        assert len(group.exceptions) == 1


async def test_alert_streamer_host_from_session() -> None:
    class PaperSession(Session):
        pass

    class MyPaper(PaperSession):     # a subclass of the SDK's PaperSession counts too
        pass

    class Cert(Session):
        is_test = True

    assert AlertStreamer(Session()).base_url == _alerts.STREAMER_URL
    assert AlertStreamer(Cert()).base_url == _alerts.CERT_STREAMER_URL
    assert AlertStreamer(PaperSession()).base_url == _alerts.PAPER_STREAMER_URL
    assert AlertStreamer(MyPaper()).base_url == _alerts.PAPER_STREAMER_URL
    assert AlertStreamer(Session(), url="ws://127.0.0.1:9").base_url == "ws://127.0.0.1:9"
