"""The container tests' harness (tests/container/): lifecycle as PID 1 of a real OCI container (runc), as Kubernetes
runs it: the image (image), the config.json (spec), runc and its shim (runc, shim), the executor pod (executor)
and what the tests measure (figures)."""
