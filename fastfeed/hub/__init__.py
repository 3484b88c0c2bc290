"""fastfeed.hub -- one upstream connection, many consumer processes.

``python -m fastfeed.hub`` holds the upstream connections (credentials from the environment
only) and publishes every decoded record batch, unchanged, to consumer processes on the same
machine through iceoryx2 shared memory. A consumer keeps the streamer API::

    async with fastfeed.hub.connect("ipc://main") as streamer:
        await streamer.subscribe(Quote, ["SPY"])
        async for quote in streamer.listen(Quote): ...

Subscriptions of all consumers are merged by the hub, reference-counted, sent upstream once and
removed when the last consumer leaves. Needs the ``hub`` extra (``pip install
'fastfeed[hub]'``: iceoryx2, nats-py).

Feeds: ``dxlink``, the polygon clusters (``connect(url, "stocks")`` gives an
``AsyncStreamClient``) and ``account`` (``connect(url, "account")`` gives an
``AlertStreamer``, over a JetStream stream: ``fastfeed.hub._account``). The drop-ins take
``hub="ipc://NAME"`` / ``"nats://HOST:PORT/NAME"`` to read from a hub instead of the vendor
(``fastfeed.hub._dropins``).
"""

from fastfeed.hub._account import HubAlertStreamer
from fastfeed.hub._client import HubStreamer, connect
from fastfeed.hub._server import Hub

__all__ = ["Hub", "HubAlertStreamer", "HubStreamer", "connect"]
