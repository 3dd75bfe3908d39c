"""Container tests: lifecycle as PID 1 of the built image under podman (conmon and runc), as Kubernetes runs it."""
