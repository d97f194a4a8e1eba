"""The stories bench's slow model: an OpenAI-compatible chat completions server that takes
DELAY seconds per call, in a process of its own (`python -m bench.slow_model DELAY`), as the
external model server it stands in for would be: its threads never contend for the bench
process's interpreter lock while the bench times requests and notifications.

It prints its port on the first line of stdout, then serves until terminated:
  POST /v1/chat/completions   sleeps DELAY s, answers one short story
  GET  /stats                 {"in_flight", "peak", "completed"}
  POST /window/start          starts sampling the calls in flight every 20 ms (in this process)
  POST /window/stop           stops it: {"samples", "mean", "min", "max"}
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STORY = json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
    "role": "assistant", "content": "A story from a slow model."}}]}).encode()
SAMPLE_EVERY_S = 0.02


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = self.peak = self.completed = 0
        self.samples: list[int] = []
        self.sampling: threading.Event | None = None

    def start_window(self) -> None:
        self.stop_window()
        done = threading.Event()
        samples: list[int] = []
        self.sampling, self.samples = done, samples

        def sample() -> None:
            while not done.wait(SAMPLE_EVERY_S):
                samples.append(self.in_flight)

        threading.Thread(target=sample, daemon=True).start()

    def stop_window(self) -> dict[str, float]:
        if self.sampling is not None:
            self.sampling.set()
            self.sampling = None
        samples = self.samples
        return {"samples": len(samples), "mean": sum(samples) / max(1, len(samples)),
                "min": min(samples, default=0), "max": max(samples, default=0)}


def serve(delay: float) -> ThreadingHTTPServer:
    state = State()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real model server

        def log_message(self, *_: Any) -> None:
            pass

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with state.lock:
                stats = {"in_flight": state.in_flight, "peak": state.peak,
                         "completed": state.completed}
            self._answer(json.dumps(stats).encode())

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/window/start":
                state.start_window()
                self._answer(b"{}")
                return
            if self.path == "/window/stop":
                self._answer(json.dumps(state.stop_window()).encode())
                return
            with state.lock:
                state.in_flight += 1
                state.peak = max(state.peak, state.in_flight)
            time.sleep(delay)
            with state.lock:
                state.in_flight -= 1
                state.completed += 1
            self._answer(STORY)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def main() -> None:
    server = serve(float(sys.argv[1]))
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
