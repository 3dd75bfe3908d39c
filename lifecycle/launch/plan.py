"""Pure: settings and resolved facts → an immutable LaunchPlan (argv, environment, working directory).

Parity target: the argv that Spark 3.5+/4.x's in-tree entrypoint.sh builds for the same environment
(upstream-behaviour §1.2, §1.3); every deliberate difference is in the README's compatibility table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from lifecycle.launch.settings import ExecutorEnv, MasterEnv, ModeEnv, SparkEnv, WorkerEnv

EXECUTOR_CLASS = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"  # SPARK-36058, 3.3+
LEGACY_EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"  # 2.3-3.2
PASSTHROUGH = "pass-through"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# start-master.sh and start-worker.sh's defaults, for the variables they fill in when unset or empty
MASTER_PORT, MASTER_WEBUI_PORT, WORKER_WEBUI_PORT = "7077", "8080", "8081"


@dataclass(frozen=True)
class ClasspathEntry:
    """One element of the executor's -cp value and where it came from."""

    value: str
    source: str


@dataclass(frozen=True)
class Facts:
    """What the env-resolved step found out about the machine (effects done before planning)."""

    cwd: str
    java_home: str | None = None
    java_home_source: str = ""
    dist_classpath: str | None = None  # output of `hadoop classpath` when it was run
    env_additions: Mapping[str, str] = field(default_factory=dict)  # identity (nss_wrapper) variables
    host_fqdn: str | None = None  # `hostname -f`'s answer, for the master's SPARK_MASTER_HOST default


@dataclass(frozen=True)
class LaunchPlan:
    """Everything needed to start the child; built once, never changed."""

    mode: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    changed: tuple[str, ...]  # names of variables the plan adds or changes
    cwd: str
    classpath: tuple[ClasspathEntry, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))


def build_classpath(spark: SparkEnv, facts: Facts) -> tuple[ClasspathEntry, ...]:
    """The executor -cp elements in upstream order (§1.2), empty elements kept as upstream keeps them.

    An empty element means the working directory to the JVM; upstream has them whenever SPARK_CLASSPATH
    or SPARK_DIST_CLASSPATH is empty, and parity keeps them.
    """
    entries: list[ClasspathEntry] = []
    if spark.spark_conf_dir is not None:  # ${SPARK_CONF_DIR+x}: set, even empty
        entries.append(ClasspathEntry(spark.spark_conf_dir, "SPARK_CONF_DIR"))
    elif spark.spark_home is not None:
        entries.append(ClasspathEntry(f"{spark.spark_home}/conf", "$SPARK_HOME/conf"))
    if spark.hadoop_conf_dir is not None:  # ${HADOOP_CONF_DIR+x}
        entries.append(ClasspathEntry(spark.hadoop_conf_dir, "HADOOP_CONF_DIR"))
    entries.append(ClasspathEntry(spark.spark_classpath or "", "SPARK_CLASSPATH"))
    entries.append(ClasspathEntry(f"{spark.spark_home or ''}/jars/*", "$SPARK_HOME/jars/*"))
    if spark.spark_extra_classpath:
        entries.append(ClasspathEntry(spark.spark_extra_classpath, "SPARK_EXTRA_CLASSPATH"))
    entries.append(ClasspathEntry(facts.cwd, "$PWD (SPARK-43540)"))
    dist = dist_classpath(spark, facts)
    entries.append(
        ClasspathEntry(dist, "hadoop classpath" if facts.dist_classpath is not None else "SPARK_DIST_CLASSPATH")
    )
    return tuple(entries)


def dist_classpath(spark: SparkEnv, facts: Facts) -> str:
    """SPARK_DIST_CLASSPATH as the child sees it: the environment's, or `hadoop classpath` output."""
    if facts.dist_classpath is not None:
        return facts.dist_classpath
    return spark.spark_dist_classpath or ""


def java_options(spark: SparkEnv) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """SPARK_JAVA_OPT_<n> values in numeric order, empty ones dropped; and a note per dropped one."""
    options, notes = [], []
    for name, value in spark.java_opts:
        if value == "":
            notes.append(f"{name} is empty and was dropped (upstream passes an empty argument; the JVM fails)")
        else:
            options.append(value)
    return tuple(options), tuple(notes)


def _environment(base: Mapping[str, str], spark: SparkEnv, facts: Facts) -> tuple[dict[str, str], list[str]]:
    env = dict(base)
    changed = []
    for name, value in facts.env_additions.items():
        env[name] = value
        changed.append(name)
    if facts.dist_classpath is not None:  # upstream exports the `hadoop classpath` output, even empty
        env["SPARK_DIST_CLASSPATH"] = facts.dist_classpath
        changed.append("SPARK_DIST_CLASSPATH")
    return env, changed


def standalone_plan(
    mode: str, args: tuple[str, ...], env: dict[str, str], changed: list[str], spark: SparkEnv, facts: Facts
) -> LaunchPlan:
    """`master` or `worker`: the JVM in the foreground through spark-class, as start-master.sh and start-worker.sh
    start it through spark-daemon.sh (minus nohup, the log file and the pid file: logs go to stdout and stderr).

    The scripts fill in defaults for unset or empty SPARK_MASTER_HOST (`hostname -f`), SPARK_MASTER_PORT (7077),
    SPARK_MASTER_WEBUI_PORT (8080) and SPARK_WORKER_WEBUI_PORT (8081) *after* sourcing conf/spark-env.sh, and
    pass them as arguments. Here they are filled in as environment defaults instead: spark-class sources
    conf/spark-env.sh (load-spark-env.sh), which can still override them, and the JVM reads them
    (MasterArguments, WorkerArguments) unless an argument says otherwise: the same outcome, also when
    spark-env.sh sets them, which arguments computed before spark-env.sh is sourced would get wrong.
    SPARK_WORKER_PORT, _CORES, _MEMORY, _DIR, SPARK_DAEMON_MEMORY, SPARK_DAEMON_JAVA_OPTS, SPARK_MASTER_OPTS and
    SPARK_WORKER_OPTS are read by the JVM or spark-class themselves: passed on unchanged.
    """
    defaults = {"SPARK_MASTER_HOST": facts.host_fqdn or "", "SPARK_MASTER_PORT": MASTER_PORT,
                "SPARK_MASTER_WEBUI_PORT": MASTER_WEBUI_PORT} if mode == "master" else {
                "SPARK_WORKER_WEBUI_PORT": WORKER_WEBUI_PORT}  # fmt: skip
    for name, value in defaults.items():
        if not env.get(name) and value:
            env[name] = value
            changed.append(name)
    if facts.java_home is not None and not env.get("JAVA_HOME"):
        env["JAVA_HOME"] = facts.java_home  # spark-class's java, as lifecycle resolved it (the JVM it reports)
        changed.append("JAVA_HOME")
    main_class = MASTER_CLASS if mode == "master" else WORKER_CLASS
    argv = (f"{spark.spark_home}/bin/spark-class", main_class, *args)
    return LaunchPlan(mode, argv, env, tuple(changed), facts.cwd)


def build_plan(
    mode: str,
    args: tuple[str, ...],
    base_env: Mapping[str, str],
    spark: SparkEnv,
    executor: ModeEnv | None,
    facts: Facts,
) -> LaunchPlan:
    """The launch plan for `driver`, `executor`, `master`, `worker` or pass-through (mode PASSTHROUGH, args the
    whole argv). `executor` is the mode's own settings (ExecutorEnv, MasterEnv, WorkerEnv) or None."""
    env, changed = _environment(base_env, spark, facts)
    if mode in ("master", "worker"):
        assert isinstance(executor, (MasterEnv, WorkerEnv))
        return standalone_plan(mode, args, env, changed, spark, facts)
    if mode == "driver":
        bind = spark.spark_driver_bind_address or ""
        argv = (
            f"{spark.spark_home}/bin/spark-submit",
            "--conf", f"spark.driver.bindAddress={bind}",
            "--conf", f"spark.executorEnv.SPARK_DRIVER_POD_IP={bind}",  # SPARK-42769, 3.5+
            "--deploy-mode", "client",
            *args,
        )  # fmt: skip
        notes = (
            ()
            if spark.spark_driver_bind_address
            else ("SPARK_DRIVER_BIND_ADDRESS is unset or empty: spark.driver.bindAddress is passed empty, as upstream",)
        )
        return LaunchPlan(mode, argv, env, tuple(changed), facts.cwd, notes=notes)
    if mode == "executor":
        assert isinstance(executor, ExecutorEnv) and facts.java_home is not None
        classpath = build_classpath(spark, facts)
        options, dropped = java_options(spark)
        argv = (
            f"{facts.java_home}/bin/java",
            *options,
            f"-Xms{executor.executor_memory}",
            f"-Xmx{executor.executor_memory}",
            "-cp", ":".join(entry.value for entry in classpath),
            EXECUTOR_CLASS,
            "--driver-url", executor.driver_url,
            "--executor-id", executor.executor_id,
            "--cores", str(executor.cores),
            "--app-id", executor.app_id,
            "--hostname", executor.pod_ip,
            "--resourceProfileId", str(executor.resource_profile_id),
            "--podName", executor.pod_name,
        )  # fmt: skip
        return LaunchPlan(mode, argv, env, tuple(changed), facts.cwd, classpath, dropped)
    return LaunchPlan(PASSTHROUGH, args, env, tuple(changed), facts.cwd)
