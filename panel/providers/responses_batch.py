"""OpenAI Batch for Responses models: `endpoint: /v1/responses`, each JSONL line's `body` a
Responses request (the streamed body without `stream`).

Files, submission, polling and error lines are OpenAI Batch's (batchservices.OpenAIBatches);
only a succeeded line's body differs: a Response object, read with the streaming path's rules
(`incomplete` with `max_output_tokens` is a truncation, `content_filter` and refusal parts a
refusal, `failed` classified by its code), then the one verdict check shared with the other
batch services.
"""

from __future__ import annotations

from typing import Any, Literal

from panel.errors import ErrorClass, UpstreamError
from panel.providers.batchservices import ItemResult, OpenAIBatches, _verdict_of
from panel.providers.classify import classify_response_error
from panel.providers.responses import usage_of
from panel.verdict import TOOL_NAME


class ResponsesBatches(OpenAIBatches):
    endpoint: Literal["/v1/responses"] = "/v1/responses"  # type: ignore[assignment]

    def item_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k != "stream"}

    def _item(self, line: dict[str, Any]) -> ItemResult:
        resp = line.get("response")
        if not isinstance(resp, dict) or int(resp.get("status_code") or 0) != 200:
            return super()._item(line)  # canceled, expired and error lines: OpenAI Batch's
        cid = str(line.get("custom_id"))
        body: dict[str, Any] = resp.get("body") or {}
        raw_usage = body.get("usage")
        usage = usage_of(raw_usage)
        request_id = resp.get("request_id")
        status = body.get("status")
        if status == "failed":
            error = body.get("error") or {}
            err = classify_response_error(
                error.get("code"), str(error.get("message") or ""), provider=self.name
            )
            err.usage = usage.model_dump(exclude={"known"}) if usage.known else None
            return ItemResult(cid, error=err)
        output = [i for i in body.get("output") or [] if isinstance(i, dict)]
        call = next(
            (i for i in output if i.get("type") == "function_call" and i.get("name") == TOOL_NAME),
            None,
        )
        parts = [p for i in output if i.get("type") == "message" for p in i.get("content") or []]
        text = "".join(str(p.get("text", "")) for p in parts if p.get("type") == "output_text")
        args = str((call or {}).get("arguments", ""))
        reason = (body.get("incomplete_details") or {}).get("reason")
        stop: str | None = "completed"
        if status == "incomplete":
            stop = "length" if reason == "max_output_tokens" else reason
        if any(p.get("type") == "refusal" for p in parts) or reason == "content_filter":
            stop = "refusal"
        if stop not in ("completed", "length", "refusal"):
            err = UpstreamError(
                ErrorClass.TRUNCATED_EOF, f"{self.name} batch: the response ended {status}"
            )
            err.billed, err.usage = True, usage.model_dump(exclude={"known"})
            return ItemResult(cid, error=err)
        try:
            done = _verdict_of(
                stop,
                args,
                args,
                usage,
                request_id,
                (call or {}).get("call_id"),
                text,
                call is not None,
            )
        except UpstreamError as err:
            return ItemResult(cid, error=err)
        return ItemResult(cid, completed=done)
