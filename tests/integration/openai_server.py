"""A real local HTTP server speaking the OpenAI chat-completions protocol, driven by a script.

``ScriptedOpenAIServer`` listens on 127.0.0.1 (port 0: the OS picks one) in a thread and answers
``GET /v1/models`` and ``POST /v1/chat/completions``.  Each chat request takes the next item of the
script (or, when an item is a callable, the item it returns for the request body):

* ``{"content": "text"}`` -- an assistant message with that content;
* ``{"json": obj}`` -- content ``json.dumps(obj)``;
* ``{"tool_calls": [{"name": "get_tu_evidence", "arguments": {...}}]}`` -- tool calls;
* ``{"status": 500, "body": {...}}`` -- an HTTP error with an OpenAI-style error body;
* ``{"delay": 2.0, ...}`` -- sleep that long before answering (provokes a client time-out);
* ``{"usage": {...}}`` -- overrides the usage numbers (default: chars / 4);
* ``{"finish_reason": "length", ...}`` -- overrides the finish reason.

When the script is exhausted ``default`` is used (None -> HTTP 500 "script exhausted").
``reject_response_format`` (types such as ``{"json_schema"}``) answers 400 to requests that use
them; ``reject_tools`` answers 400 to requests with ``tools``.  Every request is recorded in
``requests`` as ``{"method", "path", "headers" (lower-case names), "body"}``.

Usage::

    with ScriptedOpenAIServer([{"json": {...}}]) as srv:
        settings = {"llm": {"base_url": srv.base_url, "model": "test-model"}}
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def role_of(body: dict) -> str:
    """The agent role of a chat request: the ``ROLE: <name>.`` tag of its system message."""
    for m in body.get("messages", []):
        if m.get("role") == "system" and isinstance(m.get("content"), str) and m["content"].startswith("ROLE: "):
            return m["content"][6:].split(".", 1)[0]
    return ""


def by_role(**scripts):
    """A script item that dispatches on the request's role: ``by_role(analyst=[...],
    planner=[...])``; each role's list is consumed in order, its last item repeats."""
    queues = {k: list(v) for k, v in scripts.items()}

    def pick(body):
        q = queues.get(role_of(body)) or queues.get("default")
        if not q:
            return {"status": 500, "body": {"error": {"message": f"no script for role {role_of(body)!r}"}}}
        return q.pop(0) if len(q) > 1 else q[0]
    return pick


class ScriptedOpenAIServer:
    """See the module docstring.  Attributes: ``base_url`` (``http://127.0.0.1:<port>/v1``),
    ``port``, ``requests`` (list of dicts), ``chat_requests`` (bodies of chat requests)."""

    def __init__(self, script=None, *, models=("test-model",), default=None,
                 reject_response_format=(), reject_tools=False):
        self.script = list(script or [])
        self.models = list(models)
        self.default = default
        self.reject_response_format = set(reject_response_format)
        self.reject_tools = reject_tools
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = None
        self._thread = None
        self.port = None
        self.base_url = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "ScriptedOpenAIServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # one write per response (no delayed-ACK stalls on keep-alive)

            def log_message(self, *args):
                pass

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                server._record("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, None)
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in server.models]})
                else:
                    self._send(404, {"error": {"message": "not found", "type": "not_found"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                server._record("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found", "type": "not_found"}})
                    return
                status, obj = server._answer(body)
                self._send(status, obj)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- script ----------------------------------------------------------------------------
    def push(self, *items) -> None:
        """Append items to the script."""
        with self._lock:
            self.script.extend(items)

    @property
    def chat_requests(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["method"] == "POST" and r["path"].endswith("/chat/completions")]

    def _record(self, method, path, headers, body):
        with self._lock:
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body})

    def _next(self, body):
        with self._lock:
            item = self.script.pop(0) if self.script else self.default
        if callable(item):
            item = item(body)
        return item

    def _answer(self, body: dict):
        rf = body.get("response_format") or {}
        rf_type = rf.get("type")
        if rf_type == "json_object" and "schema" in rf:
            rf_type = "json_object_schema"
        if rf_type in self.reject_response_format:
            return 400, {"error": {"message": f"response_format {rf_type} is not supported",
                                   "type": "invalid_request_error"}}
        if self.reject_tools and body.get("tools"):
            return 400, {"error": {"message": "tools are not supported", "type": "invalid_request_error"}}
        item = self._next(body)
        if item is None:
            return 500, {"error": {"message": "script exhausted", "type": "server_error"}}
        delay = item.get("delay", 0)
        if delay:
            self._closing.wait(delay)
        if "status" in item:
            return item["status"], item.get("body") or {"error": {"message": f"HTTP {item['status']}",
                                                                  "type": "server_error"}}
        message: dict = {"role": "assistant", "content": None}
        finish = "stop"
        if "tool_calls" in item:
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": tc["name"], "arguments": tc["arguments"] if isinstance(tc["arguments"], str)
                              else json.dumps(tc["arguments"])}}
                for i, tc in enumerate(item["tool_calls"])]
            finish = "tool_calls"
        if "json" in item:
            message["content"] = json.dumps(item["json"])
        elif "content" in item:
            message["content"] = item["content"]
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
        completion_chars = len(message["content"] or "") + sum(
            len(tc["function"]["arguments"]) for tc in message.get("tool_calls", []))
        finish = item.get("finish_reason", finish)
        usage = {"prompt_tokens": prompt_chars // 4, "completion_tokens": max(1, completion_chars // 4)}
        usage.update(item.get("usage") or {})
        usage["total_tokens"] = usage.get("total_tokens") or usage["prompt_tokens"] + usage["completion_tokens"]
        return 200, {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
                     "model": body.get("model", "test-model"),
                     "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                     "usage": usage}
