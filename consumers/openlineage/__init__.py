"""OpenLineage in, the reading side: the worker that keeps each event as it came and the lineage it observed."""

from assetpipe.consumers.openlineage.worker import OpenLineageHandler, OpenLineageWorker

__all__ = ["OpenLineageHandler", "OpenLineageWorker"]
