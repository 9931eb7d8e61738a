"""A fake OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

Real HTTP, so the real ``openai`` client is exercised end to end: routing, JSON bodies,
multipart uploads, status codes, headers, timeouts. Implements:
  POST /v1/chat/completions, POST /v1/completions,
  POST /v1/files (multipart), GET /v1/files/{id}, GET /v1/files/{id}/content,
  POST /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel.

Programmable: ``answer(prompt) -> str`` makes the completions; ``latency`` delays every answer;
``faults(call) -> Fault | None`` injects 429 (with Retry-After), 500, 400, 401, hangs, empty
answers, truncated JSON and cut connections, per call (a ``Call`` knows its prompt and how many
times that prompt was seen). Counters: ``calls``, ``answered`` (successful answers per prompt),
``max_in_flight``. Batches finish when ``complete_batches()`` is called, or by themselves after
``batch_polls_before_done`` retrievals when that is set.

Usage::

    with FakeOpenAI(answer=lambda p: p.upper(), latency=0.2) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import enum
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Fault(enum.Enum):
    RATE_LIMIT = "429"  # 429 with a Retry-After header (server.retry_after seconds)
    SERVER_ERROR = "500"
    BAD_REQUEST = "400"
    UNAUTHORIZED = "401"
    HANG = "hang"  # never answer (until the server stops or release() is called): a client timeout
    EMPTY = "empty"  # 200 with an empty completion
    TRUNCATED = "truncated"  # 200 whose JSON body is cut in half (consistent Content-Length)
    DISCONNECT = "disconnect"  # headers promise a body, the connection closes half way


@dataclass(frozen=True)
class Call:
    """One request the server saw. ``attempt`` counts requests for the same prompt, from 1."""

    index: int
    endpoint: str
    prompt: str
    attempt: int
    model: str
    system: str | None = None
    body: dict = field(default_factory=dict, repr=False)
    at: float = 0.0  # time.monotonic() when the server received it


def echo(prompt: str) -> str:
    return f"answer: {prompt}"


def usage_for(prompt: str, text: str) -> dict[str, int]:
    prompt_tokens, completion_tokens = len(prompt.split()) + 1, len(text.split())
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class FakeOpenAI:
    def __init__(
        self,
        answer: Callable[[str], str] = echo,
        latency: float = 0.0,
        faults: Callable[[Call], Fault | None] | None = None,
        retry_after: float = 0.05,
        api_key: str | None = None,
        batch_polls_before_done: int | None = None,
    ):
        self.answer = answer
        self.latency = latency
        self.faults = faults
        self.retry_after = retry_after
        self.api_key = api_key  # when set, other bearer tokens get 401
        self.batch_polls_before_done = batch_polls_before_done
        self.calls: list[Call] = []
        self.answered: Counter[str] = Counter()
        self.auth_headers: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._batch_polls: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle -----------------------------------------------------------------------------------

    def start(self) -> "FakeOpenAI":
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def release(self) -> None:
        """Let hanging requests go (they close without an answer)."""
        self._release.set()

    # Inspection ----------------------------------------------------------------------------------

    def calls_to(self, endpoint: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.endpoint == endpoint]

    @property
    def completion_calls(self) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.endpoint in ("/v1/chat/completions", "/v1/completions"))

    # Batches -------------------------------------------------------------------------------------

    def complete_batches(self) -> None:
        """Finish every in-progress batch now: run its lines, write output and error files."""
        with self._lock:
            pending = [b for b in self.batches.values() if b["status"] == "in_progress"]
        for batch in pending:
            self._finish_batch(batch)

    def _finish_batch(self, batch: dict[str, Any]) -> None:
        lines = self.files[batch["input_file_id"]]["content"].decode("utf-8").splitlines()
        outputs, errors = [], []
        for line in filter(None, lines):
            item = json.loads(line)
            call = self._record(item["url"], item["body"])
            fault = self.faults(call) if self.faults else None
            if fault in (None, Fault.EMPTY):
                text = "" if fault is Fault.EMPTY else self._make_answer(call)
                body = _completion_body(call, text)
                outputs.append({"id": f"batch_req_{next(self._ids)}", "custom_id": item["custom_id"],
                                "response": {"status_code": 200, "request_id": "req", "body": body}, "error": None})
                if text:
                    with self._lock:
                        self.answered[call.prompt] += 1
            else:
                errors.append({"id": f"batch_req_{next(self._ids)}", "custom_id": item["custom_id"],
                               "response": {"status_code": 500, "request_id": "req",
                                            "body": {"error": {"message": f"injected {fault.value}"}}},
                               "error": None})
        with self._lock:
            batch["output_file_id"] = self._add_file(_jsonl(outputs), "batch_output", "output.jsonl") if outputs else None
            batch["error_file_id"] = self._add_file(_jsonl(errors), "batch_output", "errors.jsonl") if errors else None
            batch["status"] = "completed"
            batch["completed_at"] = int(time.time())
            batch["request_counts"] = {"total": len(outputs) + len(errors), "completed": len(outputs),
                                       "failed": len(errors)}

    # Internals used by the handler ---------------------------------------------------------------

    def _record(self, endpoint: str, body: dict) -> Call:
        if endpoint.endswith("chat/completions"):
            messages = body.get("messages", [])
            prompt = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
            system = next((m["content"] for m in messages if m.get("role") == "system"), None)
        else:
            prompt, system = str(body.get("prompt", "")), None
        with self._lock:
            self._seen[prompt] += 1
            call = Call(len(self.calls), endpoint, prompt, self._seen[prompt], str(body.get("model", "")), system, body,
                        time.monotonic())
            self.calls.append(call)
        return call

    def _make_answer(self, call: Call) -> str:
        return self._answer_and_stop(call)[0]

    def _answer_and_stop(self, call: Call) -> tuple[str, str | None]:
        """The answer cut at the first stop string, and that string (vLLM's ``stop_reason``; None: no stop string)."""
        text, reason = self.answer(call.prompt), None
        for stop in _as_list(call.body.get("stop")):
            if stop in text:
                text, reason = text[: text.index(stop)], stop
        return text, reason

    def _add_file(self, content: bytes, purpose: str, filename: str) -> str:
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                               "filename": filename, "purpose": purpose, "status": "processed", "content": content}
        return file_id


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 refuses connections under concurrency
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes; with Nagle on, the client's delayed ACK adds
    # ~40 ms to every response (real servers such as uvicorn set TCP_NODELAY too)
    disable_nagle_algorithm = True
    server_state: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # Routing -------------------------------------------------------------------------------------

    def do_POST(self) -> None:
        state = self.server_state
        raw = self._body()
        if raw is None:  # the client went away mid-body (a killed run): no request to log or answer
            self.close_connection = True
            return
        if not self._authorised():
            return
        path = self.path.split("?")[0]
        if path in ("/v1/chat/completions", "/v1/completions"):
            self._completion(path, json.loads(raw or b"{}"))
        elif path == "/v1/files":
            self._upload(raw)
        elif path == "/v1/batches":
            body = json.loads(raw or b"{}")
            if body.get("input_file_id") not in state.files:
                return self._error(400, f"no such file: {body.get('input_file_id')}")
            batch_id = f"batch_{next(state._ids)}"
            batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                     "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window", "24h"),
                     "status": "in_progress", "output_file_id": None, "error_file_id": None,
                     "created_at": int(time.time()), "metadata": body.get("metadata"),
                     "request_counts": {"total": 0, "completed": 0, "failed": 0}}
            with state._lock:
                state.batches[batch_id] = batch
            self._json(200, batch)
        elif path.startswith("/v1/batches/") and path.endswith("/cancel"):
            batch = state.batches.get(path.split("/")[3])
            if batch is None:
                return self._error(404, "no such batch")
            batch["status"] = "cancelled"
            self._json(200, batch)
        else:
            self._error(404, f"unknown path {path}")

    def do_GET(self) -> None:
        state = self.server_state
        if not self._authorised():
            return
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:2] == ["v1", "batches"] and len(parts) == 3:
            batch = state.batches.get(parts[2])
            if batch is None:
                return self._error(404, "no such batch")
            state._batch_polls[batch["id"]] += 1
            limit = state.batch_polls_before_done
            if batch["status"] == "in_progress" and limit is not None and state._batch_polls[batch["id"]] > limit:
                state._finish_batch(batch)
            self._json(200, batch)
        elif parts[:2] == ["v1", "files"] and len(parts) in (3, 4):
            entry = state.files.get(parts[2])
            if entry is None:
                return self._error(404, "no such file")
            if len(parts) == 4 and parts[3] == "content":
                self._send(200, entry["content"], "application/octet-stream")
            else:
                self._json(200, {k: v for k, v in entry.items() if k != "content"})
        else:
            self._error(404, f"unknown path {self.path}")

    # Endpoints -----------------------------------------------------------------------------------

    def _completion(self, endpoint: str, body: dict) -> None:
        state = self.server_state
        call = state._record(endpoint, body)
        with state._lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            fault = state.faults(call) if state.faults else None
            if fault is Fault.HANG:
                state._release.wait()
                self.close_connection = True
                return
            if state.latency:
                time.sleep(state.latency)
            if fault is Fault.RATE_LIMIT:
                return self._error(429, "rate limited (injected)", {"Retry-After": f"{state.retry_after:g}"})
            if fault is Fault.SERVER_ERROR:
                return self._error(500, "server error (injected)")
            if fault is Fault.BAD_REQUEST:
                return self._error(400, "bad request (injected)")
            if fault is Fault.UNAUTHORIZED:  # like real providers, echo the key (tests check it is redacted)
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                return self._error(401, f"Incorrect API key provided: {token}")
            text, stop = ("", None) if fault is Fault.EMPTY else state._answer_and_stop(call)
            payload = json.dumps(_completion_body(call, text, stop)).encode("utf-8")
            if fault is Fault.TRUNCATED:
                return self._send(200, payload[: len(payload) // 2], "application/json")
            if fault is Fault.DISCONNECT:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(200, payload, "application/json")
            if text:
                with state._lock:
                    state.answered[call.prompt] += 1
        finally:
            with state._lock:
                state.in_flight -= 1

    def _upload(self, raw: bytes) -> None:
        header = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        if "file" not in fields or "purpose" not in fields:
            return self._error(400, "multipart upload needs 'file' and 'purpose'")
        filename, content = fields["file"]
        purpose = fields["purpose"][1].decode()
        state = self.server_state
        with state._lock:
            file_id = state._add_file(content, purpose, filename or "upload.jsonl")
        self._json(200, {k: v for k, v in state.files[file_id].items() if k != "content"})

    # Plumbing ------------------------------------------------------------------------------------

    def _authorised(self) -> bool:
        state = self.server_state
        auth = self.headers.get("Authorization", "")
        with state._lock:
            state.auth_headers.add(auth)
        if not auth.startswith("Bearer ") or (state.api_key is not None and auth != f"Bearer {state.api_key}"):
            self._error(401, f"Incorrect API key provided: {auth.removeprefix('Bearer ')}")
            return False
        return True

    def _body(self) -> bytes | None:
        """The request body, or None when fewer bytes arrived than ``Content-Length`` says (the client died)."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return raw if len(raw) == length else None

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json", headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": "fake", "code": str(status)}}, headers)

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing to do
            self.close_connection = True


def _completion_body(call: Call, text: str, stop: str | None = None) -> dict[str, Any]:
    """A completion; /v1/completions choices carry vLLM's ``stop_reason`` (the stop string that ended the answer)."""
    created = int(time.time())
    text, finish = _cut(text, call.body.get("max_tokens") or call.body.get("max_completion_tokens"))
    usage = usage_for(call.prompt, text)
    if call.endpoint.endswith("chat/completions"):
        return {"id": f"chatcmpl-{call.index}", "object": "chat.completion", "created": created, "model": call.model,
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": text}}], "usage": usage}
    return {"id": f"cmpl-{call.index}", "object": "text_completion", "created": created, "model": call.model,
            "choices": [{"index": 0, "finish_reason": finish, "text": text, "logprobs": None,
                         "stop_reason": stop if finish == "stop" else None}], "usage": usage}


def _cut(text: str, max_tokens: int | None) -> tuple[str, str]:
    """Honour ``max_tokens`` as a real server does, counting a word as a token: cut, finish ``length``."""
    words = text.split(" ")
    if max_tokens is None or len([w for w in words if w]) <= max_tokens:
        return text, "stop"
    kept, count = [], 0
    for word in words:
        count += bool(word)
        if count > max_tokens:
            break
        kept.append(word)
    return " ".join(kept), "length"


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")


class ServerProcess:
    """``FakeOpenAI`` in a process of its own (for benchmarks: the client's event loop and the server's
    threads must not share a GIL). Use as a context manager; ``stats`` holds the server's counters after exit."""

    def __init__(self, latency: float = 0.0):
        import multiprocessing as mp

        self._parent, child = mp.Pipe()
        self._proc = mp.get_context("spawn").Process(target=_serve_in_process, args=(latency, child), daemon=True)
        self.base_url = ""
        self.stats: dict[str, int] = {}

    def __enter__(self) -> "ServerProcess":
        self._proc.start()
        self.base_url = self._parent.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._parent.send("stop")
            self.stats = self._parent.recv()
        finally:
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.terminate()


def _serve_in_process(latency: float, conn: Any) -> None:
    with FakeOpenAI(latency=latency) as server:
        conn.send(server.base_url)
        conn.recv()  # until the parent says stop
        conn.send({"max_in_flight": server.max_in_flight, "completion_calls": server.completion_calls})
