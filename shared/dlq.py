"""Dead letters: see what a service parked, and send it back when the cause is fixed.

    python -m shared.dlq goals list [--limit 20]
    python -m shared.dlq goals replay [--limit N]

A raw AMQP client (pika) is the clearer tool here: one message at a time, taken, republished
with a confirm, and only then acked, so a replay interrupted half-way loses nothing. Replayed
messages start their retry count afresh; the inbox makes replaying an applied event harmless.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pika

from shared.bus import Names
from shared.config import SERVICES, Settings, load_env_file


def pika_parameters(url: str) -> pika.URLParameters:
    """kombu spells the default vhost `//`; pika needs it percent-encoded."""
    parts = urlsplit(url)
    vhost = parts.path[1:] if parts.path.startswith("/") else parts.path
    vhost = "/" if vhost in ("", "/") else vhost
    return pika.URLParameters(urlunsplit(parts._replace(path="/" + quote(vhost, safe=""))))


def _describe(body: bytes, properties: Any) -> dict[str, Any]:
    headers = properties.headers or {}
    try:
        envelope = json.loads(body)
        summary = {"id": envelope.get("id"), "type": envelope.get("type"),
                   "subject": envelope.get("subject")}
    except ValueError:
        summary = {"body": body[:120].decode(errors="replace")}
    return {**summary, "attempts": headers.get("x-attempts"),
            "error": headers.get("x-last-error")}


def list_dead(settings: Settings, limit: int) -> list[dict[str, Any]]:
    """Peek without consuming: messages are taken and put back (nack with requeue)."""
    names = Names(settings.namespace)
    connection = pika.BlockingConnection(pika_parameters(settings.amqp_url))
    try:
        channel = connection.channel()
        seen: list[dict[str, Any]] = []
        tags = []
        for _ in range(limit):
            method, properties, body = channel.basic_get(names.dead_queue(settings.service))
            if method is None:
                break
            tags.append(method.delivery_tag)
            seen.append(_describe(body, properties))
        if tags:
            channel.basic_nack(tags[-1], multiple=True, requeue=True)
        return seen
    finally:
        connection.close()


def replay(settings: Settings, limit: int | None) -> int:
    names = Names(settings.namespace)
    connection = pika.BlockingConnection(pika_parameters(settings.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        moved = 0
        while limit is None or moved < limit:
            method, properties, body = channel.basic_get(names.dead_queue(settings.service))
            if method is None:
                break
            headers = {k: v for k, v in (properties.headers or {}).items()
                       if not k.startswith("x-")}
            headers["x-replayed-from"] = names.dead_queue(settings.service)
            properties.headers = headers
            channel.basic_publish(names.requeue, settings.service, body, properties,
                                  mandatory=True)
            channel.basic_ack(method.delivery_tag)
            moved += 1
        return moved
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    load_env_file()
    parser = argparse.ArgumentParser(prog="python -m shared.dlq", description=__doc__)
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    settings = Settings.from_env(args.service)
    try:
        return _run(args.command, settings, args.limit)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 404:
            raise
        print(f"{Names(settings.namespace).dead_queue(settings.service)} does not exist yet "
              f"(the {settings.service} worker has not run): nothing is parked")
        return 0


def _run(command: str, settings: Settings, limit: int | None) -> int:
    if command == "list":
        for row in list_dead(settings, limit or 20):
            print(json.dumps(row))
    else:
        print(f"replayed {replay(settings, limit)} message(s) to "
              f"{Names(settings.namespace).queue(settings.service)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
