"""The run worker: run requests executed in process (jobs and ops) or launched by webhook; the events a
run emits published before the run is recorded as finished."""
