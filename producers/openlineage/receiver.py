"""``POST /api/v1/lineage`` (OpenLineage's HTTP transport) and ``POST /api/v1/lineage/batch``.

A request goes through the report endpoints' steps: API key (401), content type (415), body size before and
after ``Content-Encoding: gzip`` (413), JSON and its bounds (400), then per event: the OpenLineage schema
(400 naming the field, ``spec``), the translation (``translate``), each resulting event's scope (403), and
publishing. The typed events go to the events topic; the event as it came, with its lineage edges, to the
OpenLineage topic (``RawEnvelope``: the raw table and the edges are written from there). A 2xx comes only
once the broker has acknowledged every one of them. A ``DatasetEvent``'s spec is registered once its raw
event is acknowledged, through the registry the front door gives (``registrar``).

The batch answers in the OpenLineage batch shape: ``status`` (``success`` or ``partial_success``),
``summary`` (received, successful, failed) and ``failed_events`` (index, reason, retriable: whether sending
that event again may succeed). It is a 200 when any event was stored, else the status every failure shares
(400 when they differ, 503 when any may be retried).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from assetpipe.producers.exceptions import PublishError
from assetpipe.producers.http import errors
from assetpipe.producers.http.endpoint import Answer, Incoming
from assetpipe.producers.http.exceptions import BodyTooLargeError, MalformedBodyError, RequestError
from assetpipe.producers.http.payload import body_kind, check_event, read_body
from assetpipe.producers.openlineage.naming import AssetNaming
from assetpipe.producers.openlineage.spec import EventValidator
from assetpipe.producers.openlineage.translate import READ_FACETS, Translation, Translator
from assetpipe.schemas.encoder import Encoded
from assetpipe.schemas.errors import AssetpipeError
from assetpipe.schemas.jsonform import json_type
from assetpipe.schemas.model import SourceKind
from assetpipe.schemas.settings import Settings

if TYPE_CHECKING:
    from assetpipe.producers.http.app import Api
    from assetpipe.producers.http.auth import ApiKey

PATH = "/api/v1/lineage"
BATCH_PATH = "/api/v1/lineage/batch"
SOURCE: SourceKind = "openlineage"
# Registers spec entries (``{"key": [...], <fields>}``) in the asset registry; raises on failure.
Registrar = Callable[[list[dict[str, Any]]], Awaitable[None]]


class UnavailableRegistryError(PublishError):
    """A DatasetEvent's spec cannot be registered: this process reaches no asset registry."""

    code = "registry_unavailable"


def envelope(translation: Translation, raw: bytes, received_us: int) -> Encoded:
    """The OpenLineage topic's message: one line of JSON about the event, then the event as it came."""
    head = {
        "id": translation.identity,
        "kind": translation.kind,
        "event_type": translation.event_type,
        "event_time_us": translation.time_us,
        "received_us": received_us,
        "run_id": translation.run_id,
        "job": translation.job,
        "edges": translation.edges,
        "assets": sorted({"/".join(r["asset_key"]) for _, r in translation.records}),
    }
    key = (translation.run_id or translation.identity).encode()
    return Encoded(translation.identity, key, orjson.dumps(head) + b"\n" + raw)


class OpenLineageRoutes:
    """The two routes, on the report API's keys, limits and delivery (``Api``)."""

    def __init__(self, api: Api, settings: Settings) -> None:
        self.api = api
        self.topic = settings.topics.openlineage
        self.events_topic = settings.topics.events
        self.validator = EventValidator(READ_FACETS)
        self.translator = Translator(AssetNaming.from_file(settings.openlineage_mapping_file), SOURCE)
        self.registrar: Registrar | None = None  # set by the front door, which holds the registry

    async def single(self, request: Incoming) -> Answer:
        key, raw = await self._read(request, self.api.limits.body_bytes, "http_max_body_bytes")
        event = self._loads(raw)
        if not isinstance(event, dict):
            raise MalformedBodyError(
                f"Request body must be a JSON object (an OpenLineage event), got {json_type(event)}"
            )
        translation, typed = self._prepare(event, raw, key)
        failures = await self._publish([(translation, typed, raw)])
        if failures[0] is not None:
            raise failures[0]
        return 200, {"status": "success", "events": len(typed), "edges": len(translation.edges)}, None

    async def batch(self, request: Incoming) -> Answer:
        key, raw = await self._read(request, self.api.limits.batch_bytes, "http_max_batch_bytes")
        events = self._loads(raw)
        if not isinstance(events, list):
            raise MalformedBodyError(
                f"Request body must be a JSON array of OpenLineage events, got {json_type(events)}"
            )
        failed, ready = self.prepare_batch(events, key)
        outcomes = await self._publish([(t, typed, text) for _, t, typed, text in ready])
        failed.update((index, error) for (index, *_), error in zip(ready, outcomes, strict=True) if error is not None)
        return _batch_answer(len(events), failed)

    def prepare_batch(
        self, events: list[Any], key: ApiKey | None
    ) -> tuple[dict[int, BaseException], list[tuple[int, Translation, list[Encoded], bytes]]]:
        """A batch's events checked, translated and encoded, each with its JSON text: -> (why each refused
        event was, by its index; (index, translation, typed events, text) of the others)."""
        failed: dict[int, BaseException] = {}
        ready: list[tuple[int, Translation, list[Encoded], bytes]] = []
        for index, event in enumerate(events):
            try:
                if not isinstance(event, dict):
                    raise MalformedBodyError(f"An OpenLineage event must be a JSON object, got {json_type(event)}")
                text = orjson.dumps(event)
                translation, typed = self._prepare(event, text, key)
            except AssetpipeError as exc:
                failed[index] = exc
                continue
            ready.append((index, translation, typed, text))
        return failed, ready

    async def _read(self, request: Incoming, limit: int, setting: str) -> tuple[ApiKey | None, bytes]:
        api, headers = self.api, request.headers
        key = (
            api.auth.authenticate(headers.get("x-api-key"), headers.get("authorization")) if api.auth.enabled else None
        )
        body_kind(headers.get("content-type"))
        raw = await read_body(request, limit, setting)
        encoding = (headers.get("content-encoding") or "identity").strip().lower()
        if encoding == "gzip":
            raw = _gunzip(raw, limit, setting)
        elif encoding != "identity":
            raise RequestError(f"Unsupported Content-Encoding '{encoding}': send gzip or none")
        return key, raw

    def _loads(self, raw: bytes) -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedBodyError(f"Malformed JSON body: {exc}") from exc

    def _prepare(self, event: dict[str, Any], raw: bytes, key: ApiKey | None) -> tuple[Translation, list[Encoded]]:
        """Check, translate, authorize and encode one event."""
        api = self.api
        check_event(event, api.limits, raw)
        translation = self.translator.translate(event, self.validator.validate(event))
        for event_type, record in translation.records:
            api.auth.authorize(key, event_type, record["asset_key"])  # type: ignore[arg-type]
        for spec in translation.specs:
            api.auth.authorize_define(key, spec["key"])
        if translation.specs and self.registrar is None:
            raise UnavailableRegistryError(
                "DatasetEvent not stored: this HTTP API reaches no asset registry (run it with assetpipe up or serve)"
            )
        encode = api.encoder.encode_record
        return translation, [encode(event_type, record) for event_type, record in translation.records]

    async def _publish(
        self, prepared: Sequence[tuple[Translation, list[Encoded], bytes]]
    ) -> list[BaseException | None]:
        """Publish every event's typed events and envelope; per event, None (all acknowledged) or why not."""
        if not prepared:
            return []
        received = time.time_ns() // 1000
        typed = [e for _, events, _ in prepared for e in events]
        raws = [envelope(t, raw, received) for t, _, raw in prepared]
        # one wait for the broker's acknowledgements of both topics' messages
        topics = [self.events_topic] * len(typed) + [self.topic] * len(raws)
        results = await self.api.delivery.publish(typed + raws, topics=topics)
        typed_results, raw_results = results[: len(typed)], results[len(typed) :]
        outcomes: list[BaseException | None] = []
        position = 0
        for (translation, events, _), raw_error in zip(prepared, raw_results, strict=True):
            mine = typed_results[position : position + len(events)]
            position += len(events)
            error: BaseException | None = next((e for e in mine if e is not None), raw_error)
            if error is None and translation.specs and self.registrar is not None:
                try:
                    await self.registrar(translation.specs)
                except Exception as exc:  # the registry's answer, as the one mapping renders it
                    error = exc
            outcomes.append(error)
        return outcomes


def _gunzip(raw: bytes, limit: int, setting: str) -> bytes:
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise MalformedBodyError(f"Body is not valid gzip (Content-Encoding: gzip): {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLargeError(
            f"Request body is more than {limit} bytes once decompressed, over the limit (ASSETPIPE_{setting.upper()})"
        )
    if not inflater.eof:
        raise MalformedBodyError("Body is not valid gzip (Content-Encoding: gzip): it ends before the gzip stream")
    return out


def _batch_answer(received: int, failed: dict[int, BaseException]) -> Answer:
    details = []
    statuses = set()
    for index in sorted(failed):
        status = errors.status_for(failed[index])
        statuses.add(status)
        details.append(
            {"index": index, "reason": errors.message_for(failed[index], status), "retriable": status >= 500}
        )
    body: dict[str, Any] = {
        "status": "partial_success" if failed else "success",
        "summary": {"received": received, "successful": received - len(failed), "failed": len(failed)},
        "failed_events": details,
    }
    if not failed or len(failed) < received:
        return 200, body, None
    # nothing stored: an error as every endpoint answers one, the batch's details beside it
    status = 503 if 503 in statuses else statuses.pop() if len(statuses) == 1 else 400
    more = f" (and {len(details) - 1} more: see failed_events)" if len(details) > 1 else ""
    error = f"No event was stored: event {details[0]['index']}: {details[0]['reason']}{more}"
    body = {**body, "status": "error", "error": error}
    return status, body, {"Retry-After": errors.RETRY_AFTER_S} if status == 503 else None
