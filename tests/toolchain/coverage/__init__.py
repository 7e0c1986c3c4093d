"""Tests of toolchain/coverage: rules, partitioner, report, CLI, the real RetinaFace graphs."""
