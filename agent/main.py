"""The agent process: logging, signals, run until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal

from agent.node_agent import NodeAgent
from agent.settings import AgentSettings


def run(settings: AgentSettings) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await NodeAgent(settings).run(stop)

    asyncio.run(main())
