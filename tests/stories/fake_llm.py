"""A local OpenAI-compatible chat completions server for the tests: it answers each call
with the next step of a script (the last step repeats) and records what it was sent."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    status: int = 200
    content: str | None = "Your week went well."  # None: no content field
    body: bytes | None = None  # sent as is instead of a completion
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # answer only once set
    finish_reason: str = "stop"
    choices: bool = True  # False: "choices": []


def completion(content: str | None, finish_reason: str = "stop") -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    if content is not None:
        message["content"] = content
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}]}


def _text(payload: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in payload.get("messages") or [])


class FakeLLM:
    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps) or [Step()]
        # Calls whose messages contain a marker follow that marker's script instead.
        self.scripts: dict[str, list[Step]] = {}
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.calls_started = threading.Semaphore(0)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(payload)
                    fake.headers.append(dict(self.headers))
                    text = _text(payload)
                    script = next((steps for marker, steps in fake.scripts.items()
                                   if marker in text), fake.steps)
                    step = script.pop(0) if len(script) > 1 else script[0]
                fake.calls_started.release()
                if step.hold is not None:
                    step.hold.wait(60)
                if step.delay_s:
                    time.sleep(step.delay_s)
                if step.body is not None:
                    body = step.body
                elif step.status == 200:
                    answer = completion(step.content, step.finish_reason)
                    if not step.choices:
                        answer["choices"] = []
                    body = json.dumps(answer).encode()
                else:
                    body = json.dumps({"error": {"message": "nope"}}).encode()
                try:
                    self.send_response(step.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in step.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (a timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def calls(self) -> int:
        return len(self.requests)

    def script(self, marker: str, *steps: Step) -> None:
        with self._lock:
            self.scripts[marker] = list(steps)

    def calls_for(self, marker: str) -> int:
        with self._lock:
            return sum(marker in _text(r) for r in self.requests)
