"""``python -m bridges.irc.keeper -c config.yaml`` (or ``bridgekit-irc-keeper``): run a connection
keeper for the IRC networks of a bridge config whose sections have a ``keeper`` part.

It reads the same config file as the bridge, for two things only: where Redis is (each IRC
section's ``keeper.redis_url`` with this keeper's ``keeper_id``) and the credentials key
(``secrets.credentials_key``, or ``BRIDGEKIT_CREDENTIALS_KEY``/``_FILE``), which opens the
secrets the bridge sends sealed. Everything about a connection comes from the bridge."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from bridgekit import ConfigError
from bridges.irc.keeper.sealing import cipher_from


def keeper_targets(config: dict[str, Any], keeper_id: str) -> set[str]:
    """The Redis URLs of the config's IRC sections that this keeper serves."""
    urls = set()
    for section in (config.get("connectors") or {}).values():
        keeper = section.get("keeper") if isinstance(section, dict) else None
        if isinstance(keeper, dict) and keeper.get("redis_url") and keeper.get("keeper_id", "main") == keeper_id:
            urls.add(str(keeper["redis_url"]))
    return urls


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bridgekit-irc-keeper", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, help="the bridge's config file")
    parser.add_argument("--keeper-id", default="main", help="this keeper's ID (keeper.keeper_id in the config)")
    parser.add_argument("--redis-url", help="Redis to use instead of the config's keeper.redis_url")
    parser.add_argument("--connects-per-second", type=float, default=5.0,
                        help="how fast connections are made again after a restart (default 5)")
    return parser.parse_args(argv)


async def _serve(url: str, keeper_id: str, configured_key: str | None, rate: float) -> None:
    from redis.asyncio import Redis

    from bridges.irc.keeper.server import Keeper

    keeper = Keeper(Redis.from_url(url, decode_responses=True), keeper_id, cipher=cipher_from(configured_key),
                    connects_per_second=rate)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    running = asyncio.create_task(keeper.run())
    await asyncio.wait({running, asyncio.create_task(stopping.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()  # a crash says why
    await keeper.stop()
    running.cancel()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config: dict[str, Any] = {}
    if args.config is not None:
        config = yaml.safe_load(args.config.read_text()) or {}
    urls = {args.redis_url} if args.redis_url else keeper_targets(config, args.keeper_id)
    if len(urls) != 1:
        print(f"bridgekit-irc-keeper: expected one Redis for keeper {args.keeper_id!r}, found {sorted(urls)}: "
              "set connectors.<network>.keeper.redis_url in the config, or --redis-url", file=sys.stderr)
        return 2
    key = (config.get("secrets") or {}).get("credentials_key")
    try:
        asyncio.run(_serve(urls.pop(), args.keeper_id, key, args.connects_per_second))
    except ConfigError as error:
        print(f"bridgekit-irc-keeper: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
