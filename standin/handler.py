"""HTTP handling for the stand-in: routes, the chat endpoint, streams and faults."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .answers import default_answer
from .dialects import HTTPError, fixture, fixture_json, sse_frames
from .script import RecordedRequest, Reply
from .server import scripted_error
from .tokenizer import mistral_tokenizer

if TYPE_CHECKING:
    from .server import LLMServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin/1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def parse_request(self) -> bool:
        self.received = time.time()  # the request line has just been read
        return super().parse_request()

    @property
    def owner(self) -> LLMServer:
        return self.server.owner  # type: ignore[attr-defined]

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _path(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        return path.removeprefix("/api") if path.startswith("/api/v1") else path, parse_qs(
            parts.query
        )

    def _record(self, method: str) -> RecordedRequest:
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = RecordedRequest(method, self.path, headers, received=self.received)
        self.owner.record(rec)
        return rec

    def _authorised(self) -> bool:
        api_key = self.owner.config.api_key
        return api_key is None or self.headers.get("Authorization") == f"Bearer {api_key}"

    def _auth_error(self) -> HTTPError:
        return scripted_error(self.owner.dialect, Reply.error(401))

    # -- routing -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path, query = self._path()
        owner = self.owner
        if path.startswith("/_control"):
            return self._control_get(path, query)
        rec = self._record("GET")
        try:
            if not self._authorised():
                raise self._auth_error()
            if path in ("/v1/models", "/models"):
                body = owner.dialect.models_body(owner.models)
            elif path == "/props" and owner.config.dialect == "llamacpp":
                body = fixture_json("llamacpp/props.json")
                window = next(iter(owner.models.values())).context_window
                body["default_generation_settings"]["n_ctx"] = window
            else:
                raise owner.dialect.error(404, "Not found")
            rec.status = 200
            self._send_json(200, body)
        except HTTPError as err:
            rec.status, rec.error = err.status, str(err)
            self._send_json(err.status, err.body, err.headers)
        rec.completed, rec.finished = True, time.time()

    def _control_get(self, path: str, query: dict[str, list[str]]) -> None:
        owner = self.owner
        if path == "/_control/health":
            return self._send_json(200, {"ok": True})
        if path == "/_control/requests":
            since = int(query.get("since", ["0"])[0])
            bodies = query.get("bodies", ["1"])[0] not in ("0", "false")
            return self._send_json(
                200, {"requests": [r.to_dict(bodies) for r in owner.requests[since:]]}
            )
        if path == "/_control/script":
            return self._send_json(200, {"pending": [r.to_dict() for r in owner.pending]})
        if path == "/_control/config":
            return self._send_json(200, owner.config.to_dict())
        self._send_json(404, {"error": "unknown control endpoint"})

    def do_DELETE(self) -> None:
        path, _ = self._path()
        self._read_body()
        if path == "/_control/requests":
            self.owner.clear_requests()
        elif path == "/_control/script":
            self.owner.clear_script()
        else:
            return self._send_json(404, {"error": "unknown control endpoint"})
        self._send_json(200, {"ok": True})

    def do_POST(self) -> None:
        path, _ = self._path()
        raw = self._read_body()
        if path.startswith("/_control"):
            return self._control_post(path, raw)
        rec = self._record("POST")
        dialect = self.owner.dialect
        try:
            try:
                rec.body = json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise dialect.error(400, f"Invalid JSON body: {exc}", code="3000") from exc
            if path not in ("/v1/chat/completions", "/chat/completions"):
                raise dialect.error(404, "Not found")
            self._chat(rec)
        except HTTPError as err:
            rec.status, rec.error = err.status, str(err)
            self._send_json(err.status, err.body, err.headers)
            rec.completed = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            rec.client_disconnected = True
            self.close_connection = True
        except Exception as exc:  # a bug in the stand-in: make it visible to the test
            rec.error = f"server bug: {exc!r}"
            self.close_connection = True
            if rec.status == 0:
                rec.status = 500
                self._send_json(500, dialect.error_body(500, rec.error))
        finally:
            rec.finished = time.time()

    def _control_post(self, path: str, raw: bytes) -> None:
        owner = self.owner
        try:
            data = json.loads(raw) if raw else {}
            if path == "/_control/script":
                replace = isinstance(data, dict) and "replies" in data and bool(data.get("replace"))
                if isinstance(data, dict) and "replies" in data:
                    data = data["replies"]
                owner.script(*(data if isinstance(data, list) else [data]), replace=replace)
                return self._send_json(200, {"pending": len(owner.pending)})
            if path == "/_control/config":
                owner.config.update(data)
                return self._send_json(200, owner.config.to_dict())
            if path == "/_control/reset":
                owner.reset()
                return self._send_json(200, {"ok": True})
        except (ValueError, TypeError) as exc:
            return self._send_json(400, {"error": str(exc)})
        self._send_json(404, {"error": "unknown control endpoint"})

    # -- chat completions ----------------------------------------------------------------------
    def _chat(self, rec: RecordedRequest) -> None:
        owner = self.owner
        if not self._authorised():
            raise self._auth_error()
        error: HTTPError | None = None
        try:
            _info, max_tokens = owner.validate(rec.body, rec)
        except HTTPError as exc:
            error = exc
        reply = owner.next_reply(errors_only=error is not None)
        if reply is not None:
            rec.reply = reply.to_dict()
            if reply.status != 200:
                raise scripted_error(owner.dialect, reply)
        if error is not None:
            raise error
        reply = reply or Reply()
        body = rec.body
        hang_first = reply.fault == "hang" and not (reply.hang_mid_stream and rec.stream)
        if hang_first and owner._stopping.wait(reply.hang_seconds):
            self.close_connection = True
            return
        if reply.replay:
            return self._replay(rec, reply)
        tokenizer = mistral_tokenizer().instruct_tokenizer.tokenizer
        text = reply.text if reply.text is not None else default_answer(body.get("messages"))
        reasoning = reply.reasoning or ""
        n_reasoning = len(tokenizer.encode(reasoning, bos=False, eos=False))
        content_ids = tokenizer.encode(text, bos=False, eos=False)
        finish = reply.finish_reason or "stop"
        if max_tokens is not None and n_reasoning + len(content_ids) > max_tokens:
            keep = max(0, max_tokens - n_reasoning)
            text, finish = tokenizer.decode(content_ids[:keep]), reply.finish_reason or "length"
            content_ids = content_ids[:keep]
        n_completion = reply.completion_tokens
        if n_completion is None:
            n_completion = n_reasoning + len(content_ids)
        rec.completion_tokens = n_completion
        usage: dict[str, Any] = {
            "prompt_tokens": rec.prompt_tokens,
            "completion_tokens": n_completion,
            "total_tokens": (rec.prompt_tokens or 0) + n_completion,
        }
        if reply.cost is not None:
            usage["cost"] = reply.cost
        meta = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": rec.model,
        }
        headers = {"X-Request-Id": meta["id"], "X-Generation-Id": meta["id"], **reply.headers}
        style = reply.reasoning_field or owner.dialect.reasoning_style
        if rec.stream:
            pieces = [("r", p) for p in re.findall(r"\s*\S+|\s+", reasoning)]
            pieces += [("c", p) for p in re.findall(r"\s*\S+|\s+", text)]
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            if owner.config.dialect == "openai":
                include_usage = True
            frames = list(
                owner.dialect.stream(
                    meta, pieces, finish, usage, include_usage=include_usage, style=style
                )
            )
            rec.response_text = text
            return self._stream(rec, reply, headers, frames, meta)
        if self._json_fault(rec, reply, meta):
            return
        message = owner.dialect.message(text, reply.reasoning, style)
        response = {
            **meta,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
        rec.status, rec.response_text = 200, text
        self._send_json(200, response, headers)
        rec.completed = True

    def _json_fault(self, rec: RecordedRequest, reply: Reply, meta: dict[str, Any]) -> bool:
        if reply.fault == "malformed":
            data = b'{"id": "' + meta["id"].encode() + b'", "choices": [{"message": {"content": "'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            rec.status = 200
            return True
        if reply.fault == "error_event":
            raise HTTPError(
                reply.error_code,
                {"error": {"code": reply.error_code, "message": reply.error_message or ""}},
            )
        if reply.fault == "drop":
            rec.status = 200
            self._abort()
            return True
        return False

    def _replay(self, rec: RecordedRequest, reply: Reply) -> None:
        """Send a recorded fixture as it was recorded."""
        name = reply.replay or ""
        if name.endswith(".sse"):
            frames = sse_frames(fixture(name))
            return self._stream(rec, reply, dict(reply.headers), frames, None)
        status = int(m.group(1)) if (m := re.search(r"error_(\d{3})", name)) else 200
        rec.status = status
        self._send_json(status, fixture_json(name), dict(reply.headers))
        rec.completed = True

    def _abort(self) -> None:
        """Close the TCP connection abruptly (no chunked terminator)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _stream(
        self,
        rec: RecordedRequest,
        reply: Reply,
        headers: dict[str, str],
        frames: list[bytes],
        meta: dict[str, Any] | None,
    ) -> None:
        owner = self.owner
        delay = reply.delay_per_token
        if delay is None:
            delay = owner.config.delay_per_token
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        rec.status = 200
        comments = reply.processing_comments
        if comments is None:
            comments = owner.dialect.processing_comments if meta is not None else 0
        for _ in range(comments):
            self._chunk(b": OPENROUTER PROCESSING\n\n")
        # frames: the opening delta, one per piece, then the closing chunks and [DONE]
        pieces = len(frames) - 1 if meta is None else len(frames) - 2 - self._closing(frames)
        for index, frame in enumerate(frames):
            piece = index - 1  # which streamed piece this frame is (opening: -1)
            at_fault = reply.fault is not None and piece == min(reply.after_tokens, pieces)
            if at_fault and self._fault(rec, reply, meta or {"id": "replay"}):
                return
            if delay and 0 <= piece < pieces and owner._stopping.wait(delay):
                return self._abort()
            self._chunk(frame)
        self._chunk(b"")  # terminating zero-length chunk
        rec.completed = True

    @staticmethod
    def _closing(frames: list[bytes]) -> int:
        """How many frames before [DONE] close the stream (finish and usage chunks)."""
        count = 0
        for frame in reversed(frames[:-1]):
            data = json.loads(frame[6:]) if frame.startswith(b"data: {") else {}
            choices = data.get("choices") or []
            if choices and not choices[0].get("finish_reason"):
                break
            count += 1
        return count

    def _fault(self, rec: RecordedRequest, reply: Reply, meta: dict[str, Any]) -> bool:
        """Fire the in-stream fault; True if the stream is over."""
        if reply.fault == "drop":
            self._abort()
            return True
        if reply.fault == "malformed":
            self._chunk(
                b'data: {"id": "'
                + meta["id"].encode()
                + b'", "choices": [{"delta": {"content": "x\n\n'
            )
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
            return True
        if reply.fault == "error_event":
            payload = {
                **meta,
                "object": "chat.completion.chunk",
                "provider": "Mistral",
                "error": {
                    "code": reply.error_code,
                    "message": reply.error_message or "Provider returned error",
                },
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
            }
            self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self._chunk(b"")
            return True
        mid_hang = reply.fault == "hang" and reply.hang_mid_stream
        if mid_hang and self.owner._stopping.wait(reply.hang_seconds):
            self._abort()
            return True
        return False
