"""The container tests' harness (tests/container/): lifecycle as PID 1 of the built image (examples/image/) run with
podman as Kubernetes runs it through CRI-O (conmon and runc): the container and its podman commands (podman), the
derived images and test classes (image), the executor pod (executor) and what the tests measure (figures)."""
