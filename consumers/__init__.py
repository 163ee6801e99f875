"""The reading side: the one consumer loop (``loop``, ``handler``), the warehouse (``warehouse``,
``readonly``, ``migrations``), and the workers that plug into the loop: ``ingest``, ``sensors``, ``runs``."""
