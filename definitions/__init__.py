"""The user's language, with Dagster's names: jobs and ops, sensors and their contexts, and the loader of a
definitions file. The sensor and run workers execute it; it imports only the contract (``assetpipe.schemas``).
Users import these names from ``assetpipe``."""
