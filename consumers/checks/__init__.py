"""Checks evaluated on the event stream: freshness policies and last-update freshness checks at their
deadlines, metadata bounds and volume anomalies on each event (``evaluator``), by the check worker
(``worker``), published as ``AssetCheckEvaluation`` events."""
