"""CoreML EP partition predictor: the graph ORT's CoreML EP sees, its per-node rules per ORT
release, ORT's partitioning walk, and the report (see docs/coverage.md)."""
