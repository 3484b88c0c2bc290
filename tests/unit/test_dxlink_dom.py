"""DXLink DOM service: DOM_SNAPSHOT -> DomSnapshot records (the dxLink spec's example shapes),
DOM_CONFIG -> a control event."""

from __future__ import annotations

import json
import math

import pytest

import fastfeed
from fastfeed import ProtocolError
from fastfeed._native.dxlink import DomConfig
from fastfeed.dxfeed import DomSnapshot

REQUEST = {"type": "CHANNEL_REQUEST", "channel": 1, "service": "DOM",
           "parameters": {"symbol": "AAPL", "sources": ["ntv"]}}
SNAPSHOT = {"type": "DOM_SNAPSHOT", "channel": 1, "time": 1710262466056,
            "bids": [{"price": 172.33, "size": 376}, {"price": 172.32, "size": 381},
                     {"price": 172.31, "size": 405}, {"price": 172.3, "size": 388},
                     {"price": 172.29, "size": 356}],
            "asks": [{"price": 172.34, "size": 165}, {"price": 172.35, "size": 301},
                     {"price": 172.36, "size": 300}, {"price": 172.37, "size": 490},
                     {"price": 172.38, "size": 608}]}


def test_snapshot_becomes_one_record_equal_to_the_wire():
    dec = fastfeed.DXLinkDecoder()
    dec.feed(json.dumps(REQUEST), sent=True)
    assert dec.feed(json.dumps(SNAPSHOT)) == 1
    (snap,) = list(dec.drain(DomSnapshot))
    assert snap.event_symbol == "AAPL" and snap.time == 1710262466056
    assert snap.bids == [[lv["price"], lv["size"]] for lv in SNAPSHOT["bids"]]
    assert snap.asks == [[lv["price"], lv["size"]] for lv in SNAPSHOT["asks"]]
    assert type(snap.bids[0][1]) is int and type(snap.bids[0][0]) is float   # as sent
    assert snap.ts_recv > 0 and dec.stats["events"] == 1


def test_symbol_from_the_servers_channel_opened_and_jsondouble_strings():
    dec = fastfeed.DXLinkDecoder()
    dec.feed(json.dumps({"type": "CHANNEL_OPENED", "channel": 3, "service": "DOM",
                         "parameters": {"symbol": "MSFT", "sources": ["ntv"]}}))
    snap = dict(SNAPSHOT, channel=3, bids=[{"price": "NaN", "size": "Infinity", "orderId": 7}], asks=[])
    assert dec.feed(json.dumps(snap)) == 1
    s = dec.drain("DomSnapshot")[0]
    assert s.event_symbol == "MSFT" and math.isnan(s.bids[0][0]) and s.bids[0][1] == math.inf
    assert s.asks == []
    assert dec.stats["skipped"] == 1          # the order field fastfeed has no slot for


def test_levels_beyond_the_slot_are_counted():
    dec = fastfeed.DXLinkDecoder()
    snap = dict(SNAPSHOT, bids=[{"price": float(i), "size": 1} for i in range(150)])
    dec.feed(json.dumps(snap))
    batch = dec.drain(DomSnapshot)
    assert len(batch[0].bids) == 100
    import numpy as np
    assert int(np.asarray(batch)["bids_dropped"][0]) == 50


def test_dom_config_is_a_control_event():
    dec = fastfeed.DXLinkDecoder()
    dec.feed(json.dumps({"type": "DOM_CONFIG", "channel": 1, "aggregationPeriod": 10, "depthLimit": 5,
                         "dataFormat": "FULL", "orderFields": ["price", "size"]}))
    assert dec.events_received() == [DomConfig(1, 10, 5, "FULL", ["price", "size"])]


@pytest.mark.parametrize("bad", [{"time": "x"}, {"bids": {}}, {"asks": [1]}, {"bids": [{"price": "p", "size": 1}]}])
def test_malformed_snapshot_is_reported(bad):
    dec = fastfeed.DXLinkDecoder()
    with pytest.raises(ProtocolError, match="DOM_SNAPSHOT"):
        dec.feed(json.dumps(dict(SNAPSHOT, **bad)))
    assert len(dec.drain(DomSnapshot)) == 0
    assert dec.feed(json.dumps(SNAPSHOT)) == 1                # the decoder goes on
