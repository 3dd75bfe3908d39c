"""Container tests: lifecycle as PID 1 of a real OCI container (runc), as Kubernetes runs it."""
