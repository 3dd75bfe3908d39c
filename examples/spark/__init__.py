"""Real Spark on this machine, without Kubernetes: the scenario examples/spark_demo.py shows and the end-to-end
tests (tests/integration/test_spark_e2e.py, tests/container/test_container_spark.py) check.

pyspark in its own venv (install), a standalone master and a client-mode PySpark driver launched by
`lifecycle driver` (driver), a coordinator the driver's tasks report to (coordinator), executors started as
the K8s scheduler starts them, in pods made of namespaces, and the preStop command (executor), every process
and its output (output), and the whole drain of one executor (scenario).

Nothing here sleeps or polls: every wait is a bounded select on a pipe, a socket or a pidfd, every
subprocess has a timeout, and every process started here is killed by PID (pidfd) in `Processes.stop()`.
"""
