"""Parity of the launch plan with upstream's entrypoint.sh (upstream-behaviour §1.2, §1.3, §1.5).

Each row of CASES restates, literally and independently of lifecycle's code, the argv that Spark 3.5+/4.x's
in-tree entrypoint.sh builds for one environment. Rows where lifecycle deliberately differs say why in
`differs`; every other row is exactly upstream's argv. Also here: resolve.find_java_home and
resolve.hadoop_classpath, which produce the Facts the plan is built from.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lifecycle.errors import EXIT_NOT_FOUND, LifecycleError
from lifecycle.launch import plan, resolve, settings
from tests.helpers.inputs import SetEnv

WORK_DIR = "/opt/spark/work-dir"
JAVA_HOME = "/opt/java/openjdk"
EXECUTOR_ENV = {
    "SPARK_HOME": "/opt/spark",
    "SPARK_EXECUTOR_MEMORY": "1024m",
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078",
    "SPARK_EXECUTOR_ID": "1",
    "SPARK_EXECUTOR_CORES": "1",
    "SPARK_APPLICATION_ID": "spark-a1b2c3",
    "SPARK_EXECUTOR_POD_IP": "10.244.1.17",
    "SPARK_RESOURCE_PROFILE_ID": "0",
    "SPARK_EXECUTOR_POD_NAME": "pi-exec-1",
}
DRIVER_ENV = {"SPARK_HOME": "/opt/spark", "SPARK_DRIVER_BIND_ADDRESS": "10.244.0.5"}
SPARK_PI = (
    "--properties-file", "/opt/spark/conf/spark.properties",
    "--class", "org.apache.spark.examples.SparkPi",
    "local:///opt/spark/examples/jars/spark-examples.jar", "1000",
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One environment and the argv upstream builds for it."""

    id: str
    mode: str  # "executor", "driver" or "pass-through"
    env: dict[str, str]  # on top of EXECUTOR_ENV / DRIVER_ENV for those modes; alone for pass-through
    argv: list[str]
    args: tuple[str, ...] = ()
    facts: plan.Facts = field(default_factory=lambda: plan.Facts(cwd=WORK_DIR, java_home=JAVA_HOME))
    differs: str = ""  # why lifecycle deliberately differs from upstream here; empty: exact parity


CASES = [
    # --- executor: classpath ----------------------------------------------------------------------------
    Case("executor-no-extras", "executor", {}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("executor-other-working-dir", "executor", {}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/data/work:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ], facts=plan.Facts(cwd="/data/work", java_home=JAVA_HOME)),
    Case("spark-conf-dir-set", "executor", {"SPARK_CONF_DIR": "/etc/spark/conf"}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/etc/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("spark-conf-dir-empty", "executor", {"SPARK_CONF_DIR": ""}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("spark-conf-dir-unset-other-spark-home", "executor", {"SPARK_HOME": "/usr/lib/spark"}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/usr/lib/spark/conf::/usr/lib/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("spark-conf-dir-set-other-spark-home", "executor",
         {"SPARK_HOME": "/usr/lib/spark", "SPARK_CONF_DIR": "/etc/spark"}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/etc/spark::/usr/lib/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("hadoop-conf-dir-set", "executor", {"HADOOP_CONF_DIR": "/etc/hadoop/conf"}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf:/etc/hadoop/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("hadoop-conf-dir-empty", "executor", {"HADOOP_CONF_DIR": ""}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf:::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("both-conf-dirs-empty", "executor", {"SPARK_CONF_DIR": "", "HADOOP_CONF_DIR": ""}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", ":::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("spark-classpath-set", "executor", {"SPARK_CLASSPATH": "/opt/libs/a.jar:/opt/libs/b.jar"}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf:/opt/libs/a.jar:/opt/libs/b.jar:/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("spark-classpath-empty", "executor", {"SPARK_CLASSPATH": ""}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("extra-classpath-set", "executor", {"SPARK_EXTRA_CLASSPATH": "/opt/extra/*"}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/extra/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("extra-classpath-empty", "executor", {"SPARK_EXTRA_CLASSPATH": ""}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("dist-classpath-set", "executor", {"SPARK_DIST_CLASSPATH": "/opt/hadoop/share/hadoop/common/*"}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:/opt/hadoop/share/hadoop/common/*",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("hadoop-classpath-output", "executor", {"HADOOP_HOME": "/opt/hadoop"}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:/opt/hadoop/etc/hadoop:/opt/hadoop/lib/*",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ], facts=plan.Facts(cwd=WORK_DIR, java_home=JAVA_HOME, dist_classpath="/opt/hadoop/etc/hadoop:/opt/hadoop/lib/*")),
    Case("hadoop-classpath-failed", "executor", {"HADOOP_HOME": "/opt/hadoop"}, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ], facts=plan.Facts(cwd=WORK_DIR, java_home=JAVA_HOME, dist_classpath="")),
    Case("every-classpath-part", "executor", {
        "SPARK_CONF_DIR": "/etc/spark/conf", "HADOOP_CONF_DIR": "/etc/hadoop/conf",
        "SPARK_CLASSPATH": "/opt/libs/a.jar", "SPARK_EXTRA_CLASSPATH": "/opt/extra/b.jar",
        "SPARK_DIST_CLASSPATH": "/opt/hadoop/c.jar",
    }, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/etc/spark/conf:/etc/hadoop/conf:/opt/libs/a.jar:/opt/spark/jars/*:/opt/extra/b.jar"
               ":/opt/spark/work-dir:/opt/hadoop/c.jar",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("spark-conf-dir-empty-hadoop-conf-dir-set-extra-set", "executor", {
        "SPARK_CONF_DIR": "", "HADOOP_CONF_DIR": "/etc/hadoop/conf", "SPARK_EXTRA_CLASSPATH": "/x.jar",
    }, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", ":/etc/hadoop/conf::/opt/spark/jars/*:/x.jar:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    # --- executor: java options -------------------------------------------------------------------------
    Case("thirteen-java-opts-out-of-order", "executor", {
        "SPARK_JAVA_OPT_10": "-Dspark.opt.10=j", "SPARK_JAVA_OPT_2": "-Dspark.opt.2=c",
        "SPARK_JAVA_OPT_12": "-Dspark.opt.12=l", "SPARK_JAVA_OPT_0": "-Dspark.driver.port=7078",
        "SPARK_JAVA_OPT_7": "-Dspark.opt.7=g", "SPARK_JAVA_OPT_1": "-Dspark.opt.1=b",
        "SPARK_JAVA_OPT_11": "-Dspark.opt.11=k", "SPARK_JAVA_OPT_3": "-XX:+UseG1GC",
        "SPARK_JAVA_OPT_9": "-Dspark.opt.9=i", "SPARK_JAVA_OPT_5": "-Dspark.opt.5=e",
        "SPARK_JAVA_OPT_4": "-Dspark.opt.4=d", "SPARK_JAVA_OPT_8": "-Dspark.opt.8=h",
        "SPARK_JAVA_OPT_6": "-Dspark.opt.6=f",
    }, [
        "/opt/java/openjdk/bin/java",
        "-Dspark.driver.port=7078", "-Dspark.opt.1=b", "-Dspark.opt.2=c", "-XX:+UseG1GC", "-Dspark.opt.4=d",
        "-Dspark.opt.5=e", "-Dspark.opt.6=f", "-Dspark.opt.7=g", "-Dspark.opt.8=h", "-Dspark.opt.9=i",
        "-Dspark.opt.10=j", "-Dspark.opt.11=k", "-Dspark.opt.12=l",
        "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("java-opts-with-gaps-and-leading-zeros", "executor", {
        "SPARK_JAVA_OPT_20": "-Dd=4", "SPARK_JAVA_OPT_09": "-Db=2", "SPARK_JAVA_OPT_3": "-Da=1",
        "SPARK_JAVA_OPT_10": "-Dc=3",
    }, [
        "/opt/java/openjdk/bin/java", "-Da=1", "-Db=2", "-Dc=3", "-Dd=4", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("java-opts-decoys-ignored", "executor", {
        "SPARK_JAVA_OPT_0": "-Dkept=0", "MY_SPARK_JAVA_OPT_7": "-Dforeign=7", "SPARK_JAVA_OPT_FOO": "-Dfoo=1",
        "NOTE": "see SPARK_JAVA_OPT_3=-Dinjected",
    }, [
        "/opt/java/openjdk/bin/java", "-Dkept=0", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ], differs="upstream's `env | grep` also passes MY_SPARK_JAVA_OPT_7, SPARK_JAVA_OPT_FOO and NOTE's text"),
    Case("java-opts-with-spaces-and-quotes", "executor", {
        "SPARK_JAVA_OPT_0": '-Dspark.app.name=my "quoted" app', "SPARK_JAVA_OPT_1": "-Dx='a b'  c",
    }, [
        "/opt/java/openjdk/bin/java", '-Dspark.app.name=my "quoted" app', "-Dx='a b'  c",
        "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("java-opt-with-newline", "executor", {"SPARK_JAVA_OPT_0": "-Dmulti=line one\nline two"}, [
        "/opt/java/openjdk/bin/java", "-Dmulti=line one\nline two", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ], differs="upstream's readarray cuts the value at the newline and drops the rest"),
    Case("java-opt-empty-dropped", "executor", {
        "SPARK_JAVA_OPT_0": "-Da=1", "SPARK_JAVA_OPT_1": "", "SPARK_JAVA_OPT_2": "-Db=2",
    }, [
        "/opt/java/openjdk/bin/java", "-Da=1", "-Db=2", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ], differs="upstream passes the empty argument and the JVM fails to find main class ''"),
    # --- executor: other inputs -------------------------------------------------------------------------
    Case("java-home-with-spaces", "executor", {}, [
        "/opt/my jdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ], facts=plan.Facts(cwd=WORK_DIR, java_home="/opt/my jdk"),
       differs="upstream's unquoted ${JAVA_HOME}/bin/java splits at the space"),
    Case("executor-other-sizes-and-ids", "executor", {
        "SPARK_EXECUTOR_MEMORY": "4g", "SPARK_EXECUTOR_CORES": "4", "SPARK_EXECUTOR_ID": "12",
        "SPARK_RESOURCE_PROFILE_ID": "3", "SPARK_EXECUTOR_POD_NAME": "etl-exec-12",
    }, [
        "/opt/java/openjdk/bin/java", "-Xms4g", "-Xmx4g",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "12",
        "--cores", "4", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "3", "--podName", "etl-exec-12",
    ]),
    Case("executor-words-with-surrounding-blanks", "executor", {
        "SPARK_EXECUTOR_ID": " 7 ", "SPARK_EXECUTOR_POD_IP": "10.244.1.18\n",
    }, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "7",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.18",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("executor-memory-with-a-leading-blank", "executor", {"SPARK_EXECUTOR_MEMORY": "\t2g"}, [
        "/opt/java/openjdk/bin/java", "-Xms2g", "-Xmx2g",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ], differs="upstream's unquoted -Xms$SPARK_EXECUTOR_MEMORY splits into '-Xms' '2g' and the JVM refuses it"),
    Case("executor-ipv6-and-statefulset-execid", "executor", {
        "SPARK_EXECUTOR_POD_IP": "fd00:10:244::11", "SPARK_EXECUTOR_ID": "EXECID",
        "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@[fd00:10:96::a]:7078",
    }, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@[fd00:10:96::a]:7078", "--executor-id", "EXECID",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "fd00:10:244::11",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ]),
    Case("executor-python-and-identity-leave-argv-alone", "executor", {
        "PYSPARK_PYTHON": "python3", "PYSPARK_DRIVER_PYTHON": "", "SPARK_USER_NAME": "spark",
    }, [
        "/opt/java/openjdk/bin/java", "-Xms1024m", "-Xmx1024m",
        "-cp", "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir:",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@pi-driver-svc.default.svc:7078", "--executor-id", "1",
        "--cores", "1", "--app-id", "spark-a1b2c3", "--hostname", "10.244.1.17",
        "--resourceProfileId", "0", "--podName", "pi-exec-1",
    ], facts=plan.Facts(cwd=WORK_DIR, java_home=JAVA_HOME, env_additions={"NSS_WRAPPER_PASSWD": "/proc/1/fd/3"})),
    # --- driver -------------------------------------------------------------------------------------
    Case("driver-spark-pi", "driver", {}, [
        "/opt/spark/bin/spark-submit",
        "--conf", "spark.driver.bindAddress=10.244.0.5",
        "--conf", "spark.executorEnv.SPARK_DRIVER_POD_IP=10.244.0.5",
        "--deploy-mode", "client",
        "--properties-file", "/opt/spark/conf/spark.properties",
        "--class", "org.apache.spark.examples.SparkPi",
        "local:///opt/spark/examples/jars/spark-examples.jar", "1000",
    ], args=SPARK_PI),
    Case("driver-proxy-user-and-awkward-app-args", "driver", {}, [
        "/opt/spark/bin/spark-submit",
        "--conf", "spark.driver.bindAddress=10.244.0.5",
        "--conf", "spark.executorEnv.SPARK_DRIVER_POD_IP=10.244.0.5",
        "--deploy-mode", "client",
        "--proxy-user", "alice", "--properties-file", "/opt/spark/conf/spark.properties",
        "--class", "com.example.Main", "local:///opt/app.jar", "arg with spaces", "", 'say "hi"', "a\nb",
    ], args=(
        "--proxy-user", "alice", "--properties-file", "/opt/spark/conf/spark.properties",
        "--class", "com.example.Main", "local:///opt/app.jar", "arg with spaces", "", 'say "hi"', "a\nb",
    )),
    Case("driver-empty-bind-address", "driver", {"SPARK_DRIVER_BIND_ADDRESS": ""}, [
        "/opt/spark/bin/spark-submit",
        "--conf", "spark.driver.bindAddress=",
        "--conf", "spark.executorEnv.SPARK_DRIVER_POD_IP=",
        "--deploy-mode", "client",
        "--properties-file", "/opt/spark/conf/spark.properties",
        "--class", "org.apache.spark.examples.SparkPi",
        "local:///opt/spark/examples/jars/spark-examples.jar", "1000",
    ], args=SPARK_PI),
    Case("driver-no-args", "driver", {}, [
        "/opt/spark/bin/spark-submit",
        "--conf", "spark.driver.bindAddress=10.244.0.5",
        "--conf", "spark.executorEnv.SPARK_DRIVER_POD_IP=10.244.0.5",
        "--deploy-mode", "client",
    ]),
    Case("driver-ignores-executor-classpath-and-java-opts", "driver", {
        "SPARK_HOME": "/usr/lib/spark", "SPARK_JAVA_OPT_0": "-Dx=1", "SPARK_CLASSPATH": "/a.jar",
        "SPARK_CONF_DIR": "/etc/spark", "SPARK_DRIVER_BIND_ADDRESS": "fd00:10:244::5",
    }, [
        "/usr/lib/spark/bin/spark-submit",
        "--conf", "spark.driver.bindAddress=fd00:10:244::5",
        "--conf", "spark.executorEnv.SPARK_DRIVER_POD_IP=fd00:10:244::5",
        "--deploy-mode", "client",
        "--properties-file", "/opt/spark/conf/spark.properties",
        "--class", "org.apache.spark.examples.SparkPi",
        "local:///opt/spark/examples/jars/spark-examples.jar", "1000",
    ], args=SPARK_PI),
    # --- pass-through -------------------------------------------------------------------------------
    Case("pass-through-with-args", "pass-through", {}, ["/bin/bash", "-c", "echo hello"],
         args=("/bin/bash", "-c", "echo hello")),
    Case("pass-through-without-args", "pass-through", {}, ["spark-shell"], args=("spark-shell",)),
    Case("pass-through-keeps-a-capitalised-mode-word", "pass-through", {}, ["Driver", "--class", "x"],
         args=("Driver", "--class", "x")),
    Case("pass-through-keeps-driver-py", "pass-through", {}, ["driver-py", "app.py", ""],
         args=("driver-py", "app.py", "")),
    Case("pass-through-ignores-spark-variables", "pass-through", {
        **EXECUTOR_ENV, "SPARK_JAVA_OPT_0": "-Dx=1", "SPARK_CLASSPATH": "/a.jar",
    }, ["/opt/spark/bin/spark-submit", "--version"], args=("/opt/spark/bin/spark-submit", "--version")),
]  # fmt: skip


def build(case: Case) -> plan.LaunchPlan:
    """Load settings from os.environ for the case's mode and build its plan."""
    environment = {**{"executor": EXECUTOR_ENV, "driver": DRIVER_ENV}.get(case.mode, {}), **case.env}
    os.environ.update(environment)
    _, spark, executor = settings.load_all(case.mode)
    mode = plan.PASSTHROUGH if case.mode == "pass-through" else case.mode
    return plan.build_plan(mode, case.args, environment, spark, executor, case.facts)


def test_parity_table_covers_at_least_thirty_environments() -> None:
    """lifecycle's parity table should restate upstream for at least 30 distinct environments."""
    assert len({case.id for case in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_argv_matches_upstream_entrypoint(case: Case) -> None:
    """lifecycle should build, element for element, the argv upstream's entrypoint.sh builds (or the stated variant)."""
    assert list(build(case).argv) == case.argv


# --- what else the plan says ---------------------------------------------------------------------------------


def test_empty_java_opt_is_dropped_with_a_note_naming_it() -> None:
    """lifecycle should note each empty SPARK_JAVA_OPT_<n> it drops, naming the variable."""
    case = next(case for case in CASES if case.id == "java-opt-empty-dropped")
    assert build(case).notes == (
        "SPARK_JAVA_OPT_1 is empty and was dropped (upstream passes an empty argument; the JVM fails)",
    )


def test_executor_plan_without_dropped_options_has_no_notes() -> None:
    """lifecycle should add no note when no java option was dropped."""
    assert build(CASES[0]).notes == ()


@pytest.mark.parametrize("bind", [None, ""])
def test_driver_without_bind_address_is_noted(set_env: SetEnv, bind: str | None) -> None:
    """lifecycle should note that bindAddress is passed empty when SPARK_DRIVER_BIND_ADDRESS is unset or empty."""
    set_env(SPARK_HOME="/opt/spark")
    if bind is not None:
        set_env(SPARK_DRIVER_BIND_ADDRESS=bind)
    _, spark, _ = settings.load_all("driver")
    built = plan.build_plan("driver", (), dict(os.environ), spark, None, plan.Facts(cwd=WORK_DIR))
    assert built.argv[2] == "spark.driver.bindAddress="
    assert built.notes == (
        "SPARK_DRIVER_BIND_ADDRESS is unset or empty: spark.driver.bindAddress is passed empty, as upstream",
    )


def test_classpath_entries_name_their_sources_in_upstream_order() -> None:
    """lifecycle should record where each -cp element came from, in upstream's order."""
    case = next(case for case in CASES if case.id == "every-classpath-part")
    assert [(entry.value, entry.source) for entry in build(case).classpath] == [
        ("/etc/spark/conf", "SPARK_CONF_DIR"),
        ("/etc/hadoop/conf", "HADOOP_CONF_DIR"),
        ("/opt/libs/a.jar", "SPARK_CLASSPATH"),
        ("/opt/spark/jars/*", "$SPARK_HOME/jars/*"),
        ("/opt/extra/b.jar", "SPARK_EXTRA_CLASSPATH"),
        ("/opt/spark/work-dir", "$PWD (SPARK-43540)"),
        ("/opt/hadoop/c.jar", "SPARK_DIST_CLASSPATH"),
    ]


@pytest.mark.parametrize(
    ("case_id", "exported"),
    [("hadoop-classpath-output", "/opt/hadoop/etc/hadoop:/opt/hadoop/lib/*"), ("hadoop-classpath-failed", "")],
)
def test_hadoop_classpath_output_is_exported_to_the_child(case_id: str, exported: str) -> None:
    """lifecycle should export `hadoop classpath` output as SPARK_DIST_CLASSPATH, as upstream does, even empty."""
    built = build(next(case for case in CASES if case.id == case_id))
    assert built.env["SPARK_DIST_CLASSPATH"] == exported
    assert built.changed == ("SPARK_DIST_CLASSPATH",)


def test_dist_classpath_from_the_environment_is_passed_on_unchanged() -> None:
    """lifecycle should not list SPARK_DIST_CLASSPATH as changed when it came from the environment."""
    built = build(next(case for case in CASES if case.id == "dist-classpath-set"))
    assert built.env["SPARK_DIST_CLASSPATH"] == "/opt/hadoop/share/hadoop/common/*"
    assert built.changed == ()


def test_plan_environment_is_the_base_plus_identity_additions() -> None:
    """lifecycle should give the child the base environment plus the identity variables, and list what changed."""
    case = next(case for case in CASES if case.id == "executor-python-and-identity-leave-argv-alone")
    built = build(case)
    assert dict(built.env) == {**EXECUTOR_ENV, **case.env, "NSS_WRAPPER_PASSWD": "/proc/1/fd/3"}
    assert built.changed == ("NSS_WRAPPER_PASSWD",)
    assert built.cwd == WORK_DIR
    with pytest.raises(TypeError):
        built.env["X"] = "y"  # type: ignore[index]


# --- resolve.find_java_home ---------------------------------------------------------------------------------


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    """Write an executable file (parents created) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def test_find_java_home_when_java_home_is_set_uses_it(tmp_path: Path) -> None:
    """lifecycle should take a non-empty JAVA_HOME as it is, even with another java on PATH."""
    executable(tmp_path / "jdk" / "bin" / "java")
    env = {"JAVA_HOME": "/opt/my jdk", "PATH": str(tmp_path / "jdk" / "bin")}
    assert resolve.find_java_home(env) == ("/opt/my jdk", "JAVA_HOME")


@pytest.mark.parametrize("java_home", [None, ""])
def test_find_java_home_follows_the_java_on_path_through_symlinks(tmp_path: Path, java_home: str | None) -> None:
    """lifecycle should find JAVA_HOME as the directory above bin/ of the real java behind PATH's symlink."""
    real = executable(tmp_path / "jdk-21" / "bin" / "java")
    link_dir = tmp_path / "usr-bin"
    link_dir.mkdir()
    (link_dir / "java").symlink_to(real)
    env = {"PATH": f"{tmp_path / 'empty'}:{link_dir}"}
    if java_home is not None:
        env["JAVA_HOME"] = java_home
    home, how = resolve.find_java_home(env)
    assert home == os.path.realpath(tmp_path / "jdk-21")
    assert how == f"java on PATH ({link_dir / 'java'} -> {os.path.realpath(real)})"


def test_find_java_home_asks_a_wrapper_for_java_home(tmp_path: Path) -> None:
    """lifecycle should ask a java that is not <home>/bin/java for java.home (-XshowSettings) and keep it whole."""
    wrapper = executable(
        tmp_path / "wrappers" / "java",
        "#!/bin/sh\n"
        '[ "$1" = -XshowSettings:properties ] && [ "$2" = -version ] || exit 3\n'
        "echo 'Property settings:' >&2\n"
        "echo '    java.class.path = ' >&2\n"
        "echo '    java.home = /opt/my jdk' >&2\n"
        "echo '    java.vendor = Test' >&2\n"
        "echo 'openjdk version \"21\"' >&2\n",
    )
    home, how = resolve.find_java_home({"PATH": str(wrapper.parent)})
    assert home == "/opt/my jdk"
    assert how == f"java.home reported by {wrapper} (-XshowSettings:properties)"


def test_find_java_home_when_the_wrapper_reports_nothing_fails_with_127(tmp_path: Path) -> None:
    """lifecycle should fail with exit code 127 when a java wrapper does not report java.home."""
    wrapper = executable(tmp_path / "wrappers" / "java", "#!/bin/sh\necho 'no properties here' >&2\n")
    with pytest.raises(LifecycleError) as caught:
        resolve.find_java_home({"PATH": str(wrapper.parent)})
    assert caught.value.exit_code == EXIT_NOT_FOUND
    assert str(caught.value) == f"java: {wrapper} did not report java.home (set JAVA_HOME)"


@pytest.mark.parametrize("java_home", [None, ""])
def test_find_java_home_without_any_java_fails_with_127(tmp_path: Path, java_home: str | None) -> None:
    """lifecycle should fail with exit code 127 and say to set JAVA_HOME when there is no java at all."""
    env = {"PATH": str(tmp_path)}
    if java_home is not None:
        env["JAVA_HOME"] = java_home
    with pytest.raises(LifecycleError) as caught:
        resolve.find_java_home(env)
    assert caught.value.exit_code == EXIT_NOT_FOUND == 127
    assert str(caught.value) == (
        "java: not found: JAVA_HOME is unset or empty and there is no java on PATH "
        "(set JAVA_HOME to the JDK or JRE directory)"
    )


def test_find_java_home_skips_a_java_that_is_not_executable(tmp_path: Path) -> None:
    """lifecycle should not take a non-executable file named java on PATH for the launcher."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").write_text("not a program")
    with pytest.raises(LifecycleError) as caught:
        resolve.find_java_home({"PATH": str(tmp_path / "bin")})
    assert caught.value.exit_code == EXIT_NOT_FOUND


# --- resolve.hadoop_classpath -------------------------------------------------------------------------------


def hadoop_home(tmp_path: Path, body: str) -> Path:
    """A HADOOP_HOME whose bin/hadoop is a shell script with this body; it records each run in ran.log."""
    home = tmp_path / "hadoop"
    executable(home / "bin" / "hadoop", f'#!/bin/sh\necho "$@" >> "{tmp_path}/ran.log"\n{body}')
    return home


def test_hadoop_classpath_returns_the_command_output(tmp_path: Path) -> None:
    """lifecycle should run `$HADOOP_HOME/bin/hadoop classpath` and keep its output, trailing newlines stripped."""
    home = hadoop_home(tmp_path, 'printf "/opt/hadoop/etc/hadoop:/opt/hadoop/lib/*\\n\\n"\n')
    warnings: list[str] = []
    assert resolve.hadoop_classpath({"HADOOP_HOME": str(home)}, warnings.append) == (
        "/opt/hadoop/etc/hadoop:/opt/hadoop/lib/*"
    )
    assert warnings == []
    assert (tmp_path / "ran.log").read_text() == "classpath\n"


def test_hadoop_classpath_when_empty_dist_classpath_still_runs(tmp_path: Path) -> None:
    """lifecycle should run hadoop when SPARK_DIST_CLASSPATH is set but empty, as upstream's -z test does."""
    home = hadoop_home(tmp_path, "echo /h.jar\n")
    env = {"HADOOP_HOME": str(home), "SPARK_DIST_CLASSPATH": ""}
    assert resolve.hadoop_classpath(env, pytest.fail) == "/h.jar"


def test_hadoop_classpath_when_the_command_fails_warns_and_gives_empty(tmp_path: Path) -> None:
    """lifecycle should turn a failing `hadoop classpath` into a warning and an empty classpath, as upstream."""
    home = hadoop_home(tmp_path, "echo partial\nexit 3\n")
    warnings: list[str] = []
    assert resolve.hadoop_classpath({"HADOOP_HOME": str(home)}, warnings.append) == ""
    assert warnings == [
        f"HADOOP_HOME: {home}/bin/hadoop classpath exited 3; SPARK_DIST_CLASSPATH is left empty",
    ]


def test_hadoop_classpath_when_hadoop_is_missing_warns_and_gives_empty(tmp_path: Path) -> None:
    """lifecycle should warn and give an empty classpath when $HADOOP_HOME/bin/hadoop does not exist."""
    warnings: list[str] = []
    assert resolve.hadoop_classpath({"HADOOP_HOME": str(tmp_path)}, warnings.append) == ""
    assert warnings == [
        f"HADOOP_HOME: cannot run {tmp_path}/bin/hadoop: No such file or directory; SPARK_DIST_CLASSPATH is left empty",
    ]


def test_hadoop_classpath_when_dist_classpath_is_set_is_not_run(tmp_path: Path) -> None:
    """lifecycle should never override a non-empty SPARK_DIST_CLASSPATH, and not run hadoop at all then."""
    home = hadoop_home(tmp_path, "echo /should/not/appear\n")
    env = {"HADOOP_HOME": str(home), "SPARK_DIST_CLASSPATH": "/given/*"}
    assert resolve.hadoop_classpath(env, pytest.fail) is None
    assert not (tmp_path / "ran.log").exists()


@pytest.mark.parametrize("env", [{}, {"HADOOP_HOME": ""}])
def test_hadoop_classpath_without_hadoop_home_is_not_run(env: dict[str, str]) -> None:
    """lifecycle should not look for hadoop when HADOOP_HOME is unset or empty."""
    assert resolve.hadoop_classpath(env, pytest.fail) is None
