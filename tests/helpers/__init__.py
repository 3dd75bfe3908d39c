"""The tests' harness, by concern. Test modules import their helpers from here or, for what the tests share with
the demos and the benchmarks, from examples/; never from another test module. Fixtures are in the conftest.py files.

* processes: clean-up by PID, bounded waits, /proc's state and signal masks, a pipe read as lines
* supervised: lifecycle run as PID 1 of a PID namespace or as a subreaper (Supervised, Runs, env_for, no_traceback)
* pods: the `pods` fixture's type and argv builders; the pods themselves are examples/pods.py
* executor: the scheduler's environment for an executor, and decom.java compiled
* spark: what the Spark tests expect; the scenario itself is examples/spark/, which the demo runs
* cgroups, identity, inputs: a limited memory cgroup, the anonymous UID, the environments tests generate
* container/: the built image run under podman (podman: the container; image: derived images and test classes;
  executor: the executor pod; figures)
* print_signals.py, recorder.py, decom.java: the stand-in children and executor the tests start

Shared with examples/ and bench/, and defined there only: examples/proc.py (children, descendants, pidfd waits
and kills, Streams), examples/pods.py (Pod, the preStop command run in it, the stub executor), examples/spark/.
"""
