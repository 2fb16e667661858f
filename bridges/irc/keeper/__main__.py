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


def keeper_targets(config: dict[str, Any], keeper_id: str, group: str | None = None) -> set[str]:
    """The Redis URLs of the config's IRC sections that this keeper serves: those naming its
    ``keeper_id`` (a lone keeper), or, for a keeper of a group, those naming its ``group``."""
    urls = set()
    for section in (config.get("connectors") or {}).values():
        keeper = section.get("keeper") if isinstance(section, dict) else None
        if not isinstance(keeper, dict) or not keeper.get("redis_url"):
            continue
        ours = keeper.get("group") == group if group else not keeper.get("group") and keeper.get(
            "keeper_id", "main") == keeper_id
        if ours:
            urls.add(str(keeper["redis_url"]))
    return urls


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bridgekit-irc-keeper", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, help="the bridge's config file")
    parser.add_argument("--keeper-id", default="main", help="this keeper's ID (keeper.keeper_id in the config)")
    parser.add_argument("--group", help="share the connections of the networks whose keeper.group is this with the "
                        "other keepers of the group (each with its own --keeper-id)")
    parser.add_argument("--lease-seconds", type=float, default=15.0,
                        help="in a group: how long after this keeper's death the others take its connections "
                        "(default 15)")
    parser.add_argument("--redis-url", help="Redis to use instead of the config's keeper.redis_url")
    parser.add_argument("--connects-per-second", type=float, default=5.0,
                        help="how fast connections are made again after a restart (default 5)")
    return parser.parse_args(argv)


async def _serve(url: str, args: argparse.Namespace, configured_key: str | None) -> None:
    from redis.asyncio import Redis

    from bridges.irc.keeper.server import Keeper

    keeper = Keeper(Redis.from_url(url, decode_responses=True), args.keeper_id, cipher=cipher_from(configured_key),
                    connects_per_second=args.connects_per_second, group=args.group, lease_seconds=args.lease_seconds)
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
    if args.keeper_id.startswith("group:"):
        print("bridgekit-irc-keeper: a --keeper-id may not start with 'group:'", file=sys.stderr)
        return 2
    urls = {args.redis_url} if args.redis_url else keeper_targets(config, args.keeper_id, args.group)
    if len(urls) != 1:
        whose = f"group {args.group!r}" if args.group else f"keeper {args.keeper_id!r}"
        print(f"bridgekit-irc-keeper: expected one Redis for {whose}, found {sorted(urls)}: "
              "set connectors.<network>.keeper.redis_url in the config, or --redis-url", file=sys.stderr)
        return 2
    key = (config.get("secrets") or {}).get("credentials_key")
    try:
        asyncio.run(_serve(urls.pop(), args, key))
    except ConfigError as error:
        print(f"bridgekit-irc-keeper: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
