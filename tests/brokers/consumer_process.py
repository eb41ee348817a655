"""A consumer in a process of its own, for the test that kills one.

    python -m tests.brokers.consumer_process URL PREFIX STREAM GROUP

It subscribes through ``create_broker``, prints ``ready`` once consuming,
then ``got <message_id> <attempt>`` for each delivery, and never finishes a
handler: whatever it took stays unacknowledged until the process dies.
"""

from __future__ import annotations

import asyncio
import sys

from adapters.brokers import Delivery, create_broker


async def consume(url: str, prefix: str, stream: str, group: str) -> None:
    broker = create_broker(url, prefix=prefix, claim_idle_ms=200)
    hang = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        print("got", delivery.message["message_id"], delivery.attempt, flush=True)
        await hang.wait()

    broker.subscribe(stream, handler, group=group)
    await broker.start()
    print("ready", flush=True)
    await hang.wait()


if __name__ == "__main__":
    asyncio.run(consume(*sys.argv[1:5]))
