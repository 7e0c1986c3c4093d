"""Build toolchain for retinaface-coreml: fetch, simplify, validate, coverage, package."""
