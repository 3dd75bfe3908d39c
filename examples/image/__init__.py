"""The Spark image users build (examples/Dockerfile) and a local stand-in for its official base: built with
buildah and podman, cached, measured. `python -m examples.image --help`."""
