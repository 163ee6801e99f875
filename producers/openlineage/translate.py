"""One OpenLineage event -> assetpipe's events (the mapping of docs/openlineage.md).

- a ``COMPLETE`` run event: a materialization of each output (each partition of its ``partitioning`` facet,
  else of the run's ``nominalTime``), with the run id, tags naming the job and producer, and metadata from
  its facets (row count, bytes, files, column schema, column lineage, URI; ``version`` is its data version);
- ``FAIL`` / ``ABORT``: a materialization failure of each output, the run's error message as its description;
- in any run event, an input's ``dataQualityAssertions``: a check evaluation each; its ``dataQualityMetrics``:
  an observation with their numbers;
- inputs x outputs (a run's or a job's): lineage edges; a ``DatasetEvent``: the dataset's spec.

Every event's id is derived from the OpenLineage event's identity (its run id, type and time, or its
dataset or job and time) and the asset it is about, so the same event sent again is the same events again,
which ingest keeps once.

A dataset's column schema and column lineage come again with each of its runs, unchanged: each distinct
facet (by its JSON text) is read once, into a ``SharedEntry`` that every materialization carrying it holds
and that the encoder writes once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    datasource_dataset,
    documentation_dataset,
    error_message_run,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_dataset,
    schema_dataset,
    tags_dataset,
)

from assetpipe.producers.openlineage import facets as read
from assetpipe.producers.openlineage.naming import AssetNaming
from assetpipe.schemas.metadata import SharedEntry, WireEntry
from assetpipe.schemas.model import SourceKind, build_record
from assetpipe.schemas.validation import epoch_us

# The facets the mapping reads, by the slot and key they sit under: checked against the package's classes
# whatever ``_schemaURL`` they claim (``spec.EventValidator``).
READ_FACETS: dict[tuple[str, str], type] = {
    ("run", "nominalTime"): nominal_time_run.NominalTimeRunFacet,
    ("run", "errorMessage"): error_message_run.ErrorMessageRunFacet,
    ("facets", "schema"): schema_dataset.SchemaDatasetFacet,
    ("facets", "columnLineage"): column_lineage_dataset.ColumnLineageDatasetFacet,
    ("facets", "dataSource"): datasource_dataset.DatasourceDatasetFacet,
    ("facets", "version"): dataset_version_dataset.DatasetVersionDatasetFacet,
    ("facets", "documentation"): documentation_dataset.DocumentationDatasetFacet,
    ("facets", "ownership"): ownership_dataset.OwnershipDatasetFacet,
    ("facets", "tags"): tags_dataset.TagsDatasetFacet,
    ("outputFacets", "outputStatistics"): output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
    ("inputFacets", "dataQualityAssertions"): data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet,
    ("inputFacets", "dataQualityMetrics"): data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet,
}
JOB_TAG, JOB_NAMESPACE_TAG, PRODUCER_TAG = "openlineage/job", "openlineage/job_namespace", "openlineage/producer"
FAILURE_REASONS = {"FAIL": "FAILED_TO_MATERIALIZE", "ABORT": "RUN_TERMINATED"}
SPEC_LOCATION = "openlineage"  # the code location of the specs DatasetEvents register
SHARED_FACETS_MAX = 1024  # distinct schema and column lineage facets kept read


@dataclass(slots=True)
class Translation:
    """What one OpenLineage event becomes. ``records``: (event type, wire record); ``edges``: (upstream,
    downstream) asset keys (``a/b``); ``specs``: registry entries; ``identity``: the event's, hex."""

    kind: str
    event_type: str
    identity: str
    time_us: int
    run_id: str
    job: str
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    specs: list[dict[str, Any]] = field(default_factory=list)


class Translator:
    def __init__(self, naming: AssetNaming, source: SourceKind, host: str = "") -> None:
        self.naming = naming
        self.source: SourceKind = source
        self.host = host
        self._shared: dict[tuple[str, bytes], SharedEntry] = {}  # (facet key, its JSON text) -> its entry

    def translate(self, event: Mapping[str, Any], kind: str) -> Translation:
        """``event``: checked by ``spec.EventValidator``, which answered ``kind``."""
        time_text = event["eventTime"]
        time_us = epoch_us(read.parse_time(time_text, "eventTime"))
        if kind == "DatasetEvent":
            dataset = event["dataset"]
            identity = _identity("dataset", dataset["namespace"], dataset["name"], time_text)
            out = Translation(kind, "", identity, time_us, "", "")
            out.specs.append(self._spec(dataset))
            return out
        job = event["job"]
        job_name = f"{job['namespace']}/{job['name']}"
        inputs, outputs = event.get("inputs") or [], event.get("outputs") or []
        input_keys = [self._key(d, f"inputs[{i}]") for i, d in enumerate(inputs)]
        output_keys = [self._key(d, f"outputs[{i}]") for i, d in enumerate(outputs)]
        edges = [(up, down) for down in output_keys for up in input_keys if up != down]
        if kind == "JobEvent":
            identity = _identity("job", job["namespace"], job["name"], time_text)
            return Translation(kind, "", identity, time_us, "", job_name, edges=edges)
        run = event["run"]
        run_id, event_type = run["runId"], event.get("eventType") or "OTHER"
        out = Translation(kind, event_type, _identity("run", run_id, event_type, time_text), time_us, run_id,
                          job_name, edges=edges)  # fmt: skip
        tags = {JOB_TAG: read.tag_text(job["name"]), JOB_NAMESPACE_TAG: read.tag_text(job["namespace"])}
        producer = [p for p in event["producer"].split("?")[0].split("/") if p]
        if producer:
            tags[PRODUCER_TAG] = read.tag_text(producer[-1])
        base = {"run_id": run_id, "timestamp_us": time_us, "tags": tags}
        stem = f"{run_id}\x00{event_type}\x00{time_text}"
        run_facets = run.get("facets") or {}
        nominal = run_facets.get("nominalTime")
        run_partition = read.nominal_partition(nominal) if nominal else None
        for i, (dataset, parts) in enumerate(zip(outputs, output_keys, strict=True)):
            where = f"outputs[{i}]"
            if event_type == "COMPLETE":
                self._materializations(out, dataset, parts, where, run_partition, base, stem)
            elif event_type in FAILURE_REASONS:
                error = run_facets.get("errorMessage")
                description = error["message"] if error else f"OpenLineage run {event_type}: {job_name}"
                for partition in self._partitions(dataset, where, run_partition):
                    self._add(out, "materialization_failure", parts, stem, partition, base, description=description,
                              failure_type="FAILED", reason=FAILURE_REASONS[event_type])  # fmt: skip
        for i, (dataset, parts) in enumerate(zip(inputs, input_keys, strict=True)):
            self._quality(out, dataset.get("inputFacets") or {}, parts, f"inputs[{i}]", run_partition, base, stem)
        return out

    def _key(self, dataset: Mapping[str, Any], where: str) -> str:
        return "/".join(self.naming.key(dataset["namespace"], dataset["name"], f"{where}.name"))

    def _partitions(self, dataset: Mapping[str, Any], where: str, run_partition: str | None) -> list[str | None]:
        facet = (dataset.get("facets") or {}).get("partitioning")
        if facet is not None:
            listed = read.partitions(facet, f"{where}.facets.partitioning")
            if listed:
                return list(listed)
        return [run_partition]

    def _materializations(self, out: Translation, dataset: Mapping[str, Any], key: str, where: str,
                          run_partition: str | None, base: dict[str, Any], stem: str) -> None:  # fmt: skip
        facets, output_facets = dataset.get("facets") or {}, dataset.get("outputFacets") or {}
        metadata: dict[str, WireEntry] = {}
        if "outputStatistics" in output_facets:
            read.output_statistics(output_facets["outputStatistics"], metadata)
        if "schema" in facets:
            metadata[read.COLUMN_SCHEMA] = self._read_once("schema", facets["schema"], read.table_schema)
        if "columnLineage" in facets:
            where_lineage = f"{where}.facets.columnLineage"
            metadata[read.COLUMN_LINEAGE] = self._read_once(
                "columnLineage", facets["columnLineage"],
                lambda facet: read.column_lineage(facet, self.naming.key, where_lineage),
            )  # fmt: skip
        source = facets.get("dataSource")
        if source and (source.get("uri") or source.get("name")):
            metadata[read.URI] = {"kind": "url", "value": source.get("uri") or source["name"]}
        version = facets.get("version")
        data_version = version["datasetVersion"] or None if version else None
        for partition in self._partitions(dataset, where, run_partition):
            self._add(out, "materialization", key, stem, partition, base, metadata=metadata,
                      data_version=data_version)  # fmt: skip

    def _read_once(self, name: str, facet: Any, reader: Callable[[Any], WireEntry]) -> WireEntry:
        """``reader(facet)``, read once per distinct facet and shared (a facet that is not JSON data, from
        no JSON text, is read each time)."""
        try:
            key = (name, orjson.dumps(facet))
        except TypeError:
            return reader(facet)
        entry = self._shared.get(key)
        if entry is None:
            entry = SharedEntry(reader(facet))  # raises, naming the field, before anything is kept
            if len(self._shared) >= SHARED_FACETS_MAX:
                self._shared.clear()
            self._shared[key] = entry
        return entry

    def _quality(self, out: Translation, facets: Mapping[str, Any], key: str, where: str,
                 partition: str | None, base: dict[str, Any], stem: str) -> None:  # fmt: skip
        assertions = facets.get("dataQualityAssertions")
        for assertion in assertions["assertions"] if assertions else ():
            severity = "ERROR" if str(assertion.get("severity") or "").lower() == "error" else "WARN"
            name = read.check_name(assertion)
            self._add(out, "check_evaluation", key, stem, partition, base, suffix=name, check_name=name,
                      passed=assertion["success"], severity=severity, description=assertion.get("description"),
                      metadata=read.assertion_metadata(assertion))  # fmt: skip
        metrics = facets.get("dataQualityMetrics")
        if metrics:
            self._add(out, "observation", key, stem, partition, base, metadata=read.quality_metrics(metrics))

    def _add(self, out: Translation, event_type: str, key: str, stem: str, partition: str | None,
             base: dict[str, Any], suffix: str = "", metadata: dict[str, WireEntry] | None = None,
             **fields: Any) -> None:  # fmt: skip
        idempotency = f"openlineage\x00{stem}\x00{partition or ''}\x00{suffix}"
        record = build_record(event_type, key.split("/"), source=self.source, host=self.host, partition=partition,
                              idempotency_key=idempotency, **base, **fields)  # fmt: skip
        if metadata:
            record["metadata"] = metadata  # in its wire form already (``facets``)
        out.records.append((event_type, record))

    def _spec(self, dataset: Mapping[str, Any]) -> dict[str, Any]:
        facets = dataset.get("facets") or {}
        entry: dict[str, Any] = {"key": self.naming.key(dataset["namespace"], dataset["name"], "dataset.name")}
        if "documentation" in facets:
            entry["description"] = facets["documentation"]["description"]
        if "ownership" in facets:
            entry["owners"] = read.owners(facets["ownership"])
        if "tags" in facets:
            entry["tags"] = read.dataset_tags(facets["tags"])
        metadata = {}
        if "schema" in facets:
            metadata[read.COLUMN_SCHEMA] = read.schema_json(facets["schema"])
        source = facets.get("dataSource")
        if source and (source.get("uri") or source.get("name")):
            metadata[read.URI] = {"type": "url", "value": source.get("uri") or source["name"]}
        if metadata:
            entry["metadata"] = metadata
        return entry


def _identity(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode(), usedforsecurity=False).hexdigest()
