"""``python -m standin [--port 0] [--dialect mistral]``: the stand-in as a process.

Prints the chosen port on the first stdout line, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .providers import DIALECTS
from .server import LLMServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stand-in Ministral 3 OpenAI-compatible server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="0 picks a free port (printed on stdout)"
    )
    parser.add_argument("--delay-per-token", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument(
        "--lenient", action="store_true", help="accept requests without max_tokens/temperature"
    )
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--unknown-models", action="store_true", help="serve any model id")
    parser.add_argument("--dialect", default="openai", choices=sorted(DIALECTS))
    args = parser.parse_args(argv)
    server = LLMServer(
        args.host,
        args.port,
        delay_per_token=args.delay_per_token,
        strict_params=not args.lenient,
        api_key=args.api_key,
        unknown_models=args.unknown_models,
        dialect=args.dialect,
    ).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(server.port, flush=True)
    print(f"llm_server listening on {server.base_url}", file=sys.stderr, flush=True)
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
