"""The deployment examples (examples/) agree with the package: knobs, console scripts, timings and signals."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from lifecycle import knobs, scripts

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
YAML_FILES = sorted((EXAMPLES / "k8s").glob("*.yaml"))
CONF = EXAMPLES / "spark-decommission.conf"
DOCKERFILE = EXAMPLES / "Dockerfile"
SHIMS = {"/opt/entrypoint.sh": EXAMPLES / "entrypoint.sh", "/opt/decom.sh": EXAMPLES / "decom.sh"}
GUIDE = ROOT / "docs" / "operators-guide.md"
KNOBS = {knob.name: knob for knob in knobs.KNOBS}
KUBERNETES_DEFAULT_GRACE = 30  # seconds: terminationGracePeriodSeconds when a pod does not set it
LIFECYCLE_NAME = re.compile(r"\bLIFECYCLE_[A-Z0-9_]*[A-Z0-9]")
SCRIPTS_TABLE = re.compile(r"^\[project\.scripts\][ \t]*\n(.*?)(?=^\[|\Z)", re.MULTILINE | re.DOTALL)


# ---- readers ---------------------------------------------------------------------------------------------
def scripts_by_regex(text: str) -> set[str]:
    """The names in pyproject's [project.scripts] table, read without a TOML parser (Python 3.10)."""
    table = SCRIPTS_TABLE.search(text)
    assert table is not None, "pyproject.toml has no [project.scripts] table"
    return set(re.findall(r"^\s*\"?([A-Za-z0-9_.-]+)\"?\s*=", table.group(1), re.MULTILINE))


def console_scripts() -> set[str]:
    """The console scripts pyproject.toml installs (tomllib when the interpreter has it)."""
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 has no tomllib: the table is simple enough for a regex
        return scripts_by_regex(text)
    return set(tomllib.loads(text)["project"]["scripts"])


def read_conf(path: Path) -> dict[str, str]:
    """A Java-properties / spark-defaults.conf file: `key value`, `key=value` or `key: value` per line."""
    conf = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        match = re.match(r"^([^\s=:]+)\s*[=:\s]\s*(.*)$", line)
        assert match, f"{path.name}: not a property line: {line!r}"
        conf[match.group(1)] = match.group(2).strip()
    return conf


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            word, _, rest = pending.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
        pending = ""
    return instructions


def shim_command(path: Path) -> list[str]:
    """The shim's one line of work (everything that is not its shebang, a comment or blank), as words."""
    work = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(work) == 1, f"{path.name}: expected one line of work, got {work}"
    return work[0].split()


def example_texts() -> Iterator[tuple[Path, str]]:
    """Every text file under examples/ (compiled caches and binary files left out)."""
    for path in sorted(EXAMPLES.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


@dataclass
class Workload:
    """One container's settings from an example: its pod's grace period, its env and the app's Spark conf."""

    label: str
    grace: int | None
    env: dict[str, str]
    spark_conf: dict[str, str] = field(default_factory=dict)


def env_of(entries: list[dict[str, Any]] | None) -> dict[str, str]:
    return {entry["name"]: str(entry["value"]) for entry in entries or [] if "value" in entry}


def workloads() -> list[Workload]:
    """Every container in the YAML examples: Pod (templates) and SparkApplication driver and executor."""
    found = []
    for path in YAML_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "Pod":
                spec = doc["spec"]
                for container in spec["containers"]:
                    found.append(Workload(f"{path.name}:{container['name']}",
                                          spec.get("terminationGracePeriodSeconds"), env_of(container.get("env"))))
            elif doc["kind"] == "SparkApplication":
                spec = doc["spec"]
                for role in ("driver", "executor"):
                    found.append(Workload(f"{path.name}:{role}", spec[role].get("terminationGracePeriodSeconds"),
                                          env_of(spec[role].get("env")), spec.get("sparkConf", {})))
            elif doc["kind"] == "SparkCluster":
                for role, pod in cluster_pods(doc).items():
                    (container,) = [c for c in pod["containers"] if c["name"] == role]
                    found.append(Workload(f"{path.name}:{role}", pod.get("terminationGracePeriodSeconds"),
                                          env_of(container.get("env")), doc["spec"].get("sparkConf", {})))
    return found


def cluster_pods(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A SparkCluster's pod templates: {"master": spec, "worker": spec}."""
    return {role: doc["spec"][f"{role}Spec"]["statefulSetSpec"]["template"]["spec"] for role in ("master", "worker")}


def executor_template() -> Workload:
    """The executor pod template that examples/spark-decommission.conf points at."""
    return next(w for w in workloads() if w.label == "executor-pod-template.yaml:spark-kubernetes-executor")


def knob_value(workload: Workload, name: str) -> Any:
    """A knob's parsed value as the container would see it: its env value, else the default."""
    knob = KNOBS[name]
    return knob.parse(workload.env.get(name, knob.default))


# ---- YAML and names --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_example_yaml_parses_into_kubernetes_objects(path: Path) -> None:
    """Every YAML example should parse with yaml.safe_load_all into objects with an apiVersion and a kind."""
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), path.name


def test_yaml_examples_cover_the_documented_set() -> None:
    """The pod template, the OpenShift template and the SparkApplication should all be there."""
    names = {path.name for path in YAML_FILES}
    assert {"executor-pod-template.yaml", "openshift-securitycontext.yaml", "spark-application.yaml",
            "spark-cluster.yaml", "spark-cluster-policy.yaml"} <= names


def test_every_lifecycle_variable_in_examples_and_guide_is_a_knob() -> None:
    """Each LIFECYCLE_* name in examples/ or the operator's guide should be a knob lifecycle.knobs defines, or one of
    the variables lifecycle gives its scripts (scripts.SCRIPT_VARIABLES)."""
    used: dict[str, set[str]] = {}
    for path, text in [*example_texts(), (GUIDE, GUIDE.read_text())]:
        for name in LIFECYCLE_NAME.findall(text):
            used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    known = {*KNOBS, *scripts.SCRIPT_VARIABLES}
    unknown = {name: sorted(where) for name, where in used.items() if name not in known}
    assert not unknown, f"not knobs of lifecycle.knobs: {unknown}"
    assert "LIFECYCLE_DECOMMISSION_TIMEOUT" in used


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w.label)
def test_example_lifecycle_env_values_parse(workload: Workload) -> None:
    """Every LIFECYCLE_* value set in a YAML example should pass its knob's own parser."""
    for name, value in workload.env.items():
        if name.startswith("LIFECYCLE_"):
            KNOBS[name].parse(value)


def test_executor_pods_name_the_container_spark_uses() -> None:
    """Pod templates should name their container spark-kubernetes-executor, or Spark ignores its settings."""
    for path in YAML_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "Pod":
                assert [c["name"] for c in doc["spec"]["containers"]] == ["spark-kubernetes-executor"], path.name


# ---- console scripts -------------------------------------------------------------------------------------
def test_scripts_read_by_regex_match_tomllib() -> None:
    """The Python 3.10 fallback reader should find the same console scripts as tomllib."""
    tomllib = pytest.importorskip("tomllib")
    text = (ROOT / "pyproject.toml").read_text()
    assert scripts_by_regex(text) == set(tomllib.loads(text)["project"]["scripts"])


def test_pyproject_installs_both_console_scripts() -> None:
    """pyproject.toml should install lifecycle and lifecycle-decommission, the two commands the examples use."""
    assert {"lifecycle", "lifecycle-decommission"} <= console_scripts()


def named_commands() -> dict[str, str]:
    """Every command an example runs, by where it is named: preStop hooks, the decommission script, shims."""
    commands = {}
    for path in YAML_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "Pod":
                for container in doc["spec"]["containers"]:
                    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec")
                    if pre_stop:
                        commands[f"{path.name} preStop"] = pre_stop["command"][0]
            elif doc["kind"] == "SparkCluster":
                for role, pod in cluster_pods(doc).items():
                    for container in pod["containers"]:
                        commands[f"{path.name} {role} command"] = container["command"][0]
                        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec")
                        if pre_stop:
                            commands[f"{path.name} {role} preStop"] = pre_stop["command"][0]
            elif doc["kind"] == "SparkApplication":
                script = doc["spec"]["sparkConf"].get("spark.kubernetes.decommission.script")
                if script:
                    commands[f"{path.name} sparkConf"] = script
                pre_stop = doc["spec"]["executor"].get("lifecycle", {}).get("preStop", {}).get("exec")
                if pre_stop:
                    commands[f"{path.name} executor preStop"] = pre_stop["command"][0]
    commands[f"{CONF.name} decommission script"] = read_conf(CONF)["spark.kubernetes.decommission.script"]
    for shim in SHIMS.values():
        commands[f"{shim.name} exec"] = shim_command(shim)[1]
    for word, args in dockerfile_instructions(DOCKERFILE):
        if word == "ENTRYPOINT":
            commands["Dockerfile ENTRYPOINT"] = json.loads(args)[0]
        if word == "RUN":
            for target in re.findall(r"ln -s \S+ /usr/local/bin/(\S+?);?(?:\s|$)", args):
                commands[f"Dockerfile link {target}"] = target
    return commands


def test_every_command_the_examples_run_is_a_console_script_or_shim() -> None:
    """Each command an example names should be an installed console script, or a shim the Dockerfile installs."""
    scripts = console_scripts()
    commands = named_commands()
    for where, command in commands.items():
        if command in SHIMS:
            continue
        assert Path(command).name in scripts, f"{where}: {command!r} is not in [project.scripts] {sorted(scripts)}"
    assert "lifecycle-decommission" in {Path(c).name for c in commands.values()}


def test_spark_application_that_sets_executor_lifecycle_keeps_sparks_prestop() -> None:
    """kubeflow's webhook replaces an executor container's whole lifecycle block with spec.executor.lifecycle: a
    SparkApplication that sets it must name the preStop command Spark would add, or decommissioning is lost."""
    for path in YAML_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] != "SparkApplication" or "lifecycle" not in doc["spec"]["executor"]:
                continue
            command = doc["spec"]["executor"]["lifecycle"]["preStop"]["exec"]["command"]
            script = doc["spec"]["sparkConf"].get("spark.kubernetes.decommission.script", "/opt/decom.sh")
            assert command == [script], f"{path.name}: executor.lifecycle's preStop {command} is not {script!r}"


# ---- timings and signals ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "workload", [w for w in workloads() if "LIFECYCLE_DECOMMISSION_TIMEOUT" in w.env], ids=lambda w: w.label
)
def test_decommission_deadline_and_kill_grace_fit_in_the_grace_period(workload: Workload) -> None:
    """LIFECYCLE_DECOMMISSION_TIMEOUT, and with LIFECYCLE_KILL_GRACE added, should end before the kubelet's SIGKILL."""
    timeout = knobs.parse_optional_timeout(workload.env["LIFECYCLE_DECOMMISSION_TIMEOUT"])
    grace = workload.grace if workload.grace is not None else KUBERNETES_DEFAULT_GRACE
    assert timeout is not None, "an example that sets a deadline should not set it empty"
    assert timeout < grace
    assert timeout + knob_value(workload, "LIFECYCLE_KILL_GRACE") < grace


def test_decommission_examples_set_a_deadline() -> None:
    """The executor template and the SparkApplication's executor should both set LIFECYCLE_DECOMMISSION_TIMEOUT."""
    labels = {w.label for w in workloads() if "LIFECYCLE_DECOMMISSION_TIMEOUT" in w.env}
    assert {"executor-pod-template.yaml:spark-kubernetes-executor", "spark-application.yaml:executor"} <= labels


def test_conf_signal_matches_the_lifecycle_default() -> None:
    """The conf's spark.executor.decommission.signal should be the template's LIFECYCLE_DECOMMISSION_SIGNAL."""
    spark_signal = knobs.parse_signal(read_conf(CONF)["spark.executor.decommission.signal"])
    assert spark_signal == knob_value(executor_template(), "LIFECYCLE_DECOMMISSION_SIGNAL")
    assert spark_signal == knobs.parse_signal(KNOBS["LIFECYCLE_DECOMMISSION_SIGNAL"].default)


@pytest.mark.parametrize("workload", [w for w in workloads() if w.spark_conf], ids=lambda w: w.label)
def test_spark_application_signal_matches_its_env(workload: Workload) -> None:
    """A SparkApplication's decommission signal should be the LIFECYCLE_DECOMMISSION_SIGNAL its pods get."""
    spark_signal = knobs.parse_signal(workload.spark_conf.get("spark.executor.decommission.signal", "PWR"))
    assert spark_signal == knob_value(workload, "LIFECYCLE_DECOMMISSION_SIGNAL")


def test_conf_force_kill_timeout_comes_before_the_lifecycle_deadline() -> None:
    """The driver's forceKillTimeout should end a stuck drain before lifecycle's deadline in the template."""
    force_kill = knobs.parse_duration(read_conf(CONF)["spark.executor.decommission.forceKillTimeout"])
    assert force_kill < knob_value(executor_template(), "LIFECYCLE_DECOMMISSION_TIMEOUT")


def test_spark_application_force_kill_timeout_comes_before_the_lifecycle_deadline() -> None:
    """The SparkApplication's forceKillTimeout should be below its executors' LIFECYCLE_DECOMMISSION_TIMEOUT."""
    executor = next(w for w in workloads() if w.label == "spark-application.yaml:executor")
    force_kill = knobs.parse_duration(executor.spark_conf["spark.executor.decommission.forceKillTimeout"])
    assert force_kill < knob_value(executor, "LIFECYCLE_DECOMMISSION_TIMEOUT")


def test_spark_grace_period_setting_matches_the_pod() -> None:
    """spark.kubernetes.executor.terminationGracePeriodSeconds (4.1+ overrides the pod) should equal the pod's value."""
    conf = read_conf(CONF)
    assert knobs.parse_duration(conf["spark.kubernetes.executor.terminationGracePeriodSeconds"]) == (
        executor_template().grace
    )
    executor = next(w for w in workloads() if w.label == "spark-application.yaml:executor")
    assert knobs.parse_duration(executor.spark_conf["spark.kubernetes.executor.terminationGracePeriodSeconds"]) == (
        executor.grace
    )


def test_conf_turns_on_decommissioning_and_block_migration() -> None:
    """The conf should enable decommissioning and storage migration and point at the example pod template."""
    conf = read_conf(CONF)
    assert conf["spark.decommission.enabled"] == "true"
    assert conf["spark.storage.decommission.enabled"] == "true"
    assert (ROOT / conf["spark.kubernetes.executor.podTemplateFile"]).is_file()


# ---- Dockerfile and shims --------------------------------------------------------------------------------
def test_dockerfile_entrypoint_is_exactly_lifecycle() -> None:
    """The image's only ENTRYPOINT should be the exec form ["lifecycle"], so lifecycle is PID 1."""
    entrypoints = [args for word, args in dockerfile_instructions(DOCKERFILE) if word == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["lifecycle"]


def test_dockerfile_installs_what_lifecycle_needs_and_runs_as_185() -> None:
    """The image should install python3 and libnss-wrapper, copy both shims, and end as USER 185."""
    instructions = dockerfile_instructions(DOCKERFILE)
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert re.search(r"apt-get install\b.*\bpython3\b", runs)
    assert re.search(r"apt-get install\b.*\blibnss-wrapper\b", runs)
    copies = [args.split() for word, args in instructions if word == "COPY"]
    for installed, shim in SHIMS.items():
        assert [f"examples/{shim.name}", installed] in copies
        assert re.search(rf"chmod 0?755\b[^;]*\s{re.escape(installed)}\b", runs)
    users = [args for word, args in instructions if word == "USER"]
    assert users[-1] == "185"


@pytest.mark.parametrize("shim", SHIMS.values(), ids=lambda p: p.name)
def test_shim_is_executable(shim: Path) -> None:
    """Each shim should have mode 0755, as the kubelet runs /opt/decom.sh directly with no shell."""
    assert stat.S_IMODE(shim.stat().st_mode) == 0o755


@pytest.mark.parametrize("shim", SHIMS.values(), ids=lambda p: p.name)
def test_shim_parses_with_bash(shim: Path) -> None:
    """Each shim should start with a shebang and a comment, and `bash -n` should parse it."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    lines = shim.read_text().splitlines()
    assert lines[0].startswith("#!/")
    assert lines[1].startswith("# ")
    result = subprocess.run([bash, "-n", str(shim)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("shim", "expected"),
    [(SHIMS["/opt/entrypoint.sh"], ["exec", "lifecycle", '"$@"']),
     (SHIMS["/opt/decom.sh"], ["exec", "lifecycle-decommission"])],
    ids=["entrypoint.sh", "decom.sh"],
)
def test_shim_execs_a_console_script(shim: Path, expected: list[str]) -> None:
    """Each shim's one line should exec an installed console script (the entrypoint passing its arguments on)."""
    command = shim_command(shim)
    assert command == expected
    assert command[1] in console_scripts()


# ---- example scripts ---------------------------------------------------------------------------------------
EXAMPLE_SCRIPTS = sorted((EXAMPLES / "scripts").glob("*.d/*"))


def test_the_guide_has_an_example_script_for_each_stage() -> None:
    """examples/scripts/ should hold the pre-launch and post-exit examples the operator's guide walks through."""
    names = {f"{path.parent.name}/{path.name}" for path in EXAMPLE_SCRIPTS}
    assert names == {"pre-launch.d/10-secret-from-file.sh", "pre-launch.d/20-spark-defaults.sh",
                     "post-exit.d/10-upload-stderr-tail.sh"}  # fmt: skip
    guide = GUIDE.read_text()
    assert all(name.split("/")[1] in guide for name in names)


def test_each_worked_example_names_tests_that_exist() -> None:
    """Section 5 of the operator's guide should back each worked example with tests, by name, that exist."""
    section = GUIDE.read_text().split("## 5. Scripts", 1)[1]
    named = re.findall(r"`(test_example_\w+)`", section)
    assert {name.split("_")[2] for name in named} == {"1", "2", "3"}
    defined = set(re.findall(r"^def (test_\w+)\(", (ROOT / "tests/integration/test_script_examples.py").read_text(),
                             re.MULTILINE))  # fmt: skip
    assert set(named) <= defined, set(named) - defined


@pytest.mark.parametrize("script", EXAMPLE_SCRIPTS, ids=lambda p: p.name)
def test_example_scripts_are_executable_posix_sh(script: Path) -> None:
    """Each example script should be mode 0755 (lifecycle runs only executables) and parse with `sh -n`."""
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert script.read_text().startswith("#!/bin/sh\n")
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


# ---- OpenShift -------------------------------------------------------------------------------------------
def test_openshift_template_is_restricted_and_writes_only_to_volumes() -> None:
    """The OpenShift template should run non-root on a read-only root with no capabilities and writable volumes."""
    doc = next(yaml.safe_load_all((EXAMPLES / "k8s" / "openshift-securitycontext.yaml").read_text()))
    pod = doc["spec"]["securityContext"]
    container = doc["spec"]["containers"][0]
    security = container["securityContext"]
    assert pod["runAsUser"] > 0 and pod["runAsGroup"] == 0 and pod["fsGroup"] == 0
    assert pod["runAsNonRoot"] is True and security["runAsNonRoot"] is True
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    empty_dirs = {volume["name"] for volume in doc["spec"]["volumes"] if "emptyDir" in volume}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts.get("/tmp") in empty_dirs
    assert mounts.get("/opt/spark/work-dir") in empty_dirs


def test_dockerfile_puts_scripts_where_lifecycle_looks_for_them() -> None:
    """The Dockerfile's (commented) script directories should be the knobs' defaults."""
    text = DOCKERFILE.read_text()
    for name in ("LIFECYCLE_PRE_LAUNCH_DIR", "LIFECYCLE_POST_EXIT_DIR"):
        assert re.search(rf"^# COPY .* {re.escape(KNOBS[name].default)}/?$", text, re.MULTILINE), name


# ---- the standalone cluster (issue #16) ------------------------------------------------------------------------
SPARK_CLUSTER = EXAMPLES / "k8s" / "spark-cluster.yaml"
CLUSTER_POLICY = EXAMPLES / "k8s" / "spark-cluster-policy.yaml"
MIGRATION_ROUND = 61.0  # seconds an executor needs after its last task with Spark's default 30 s migration interval


def spark_cluster() -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all(SPARK_CLUSTER.read_text()) if d["kind"] == "SparkCluster"]
    return doc


def policies() -> dict[str, dict[str, Any]]:
    """The MutatingAdmissionPolicies by the role their match condition picks."""
    found = {}
    for doc in yaml.safe_load_all(CLUSTER_POLICY.read_text()):
        if doc["kind"] == "MutatingAdmissionPolicy":
            (condition,) = doc["spec"]["matchConditions"]
            role = re.search(r'"spark-role"\]\.orValue\(""\) == "(\w+)"', condition["expression"])
            assert role is not None, condition
            found[role.group(1)] = doc
    return found


def test_spark_cluster_runs_lifecycle_master_and_worker_with_a_prestop_on_workers() -> None:
    """The SparkCluster's containers should run `lifecycle master` and `lifecycle worker spark://<name>-master-svc:7077`
    (the operator's master service), with lifecycle-decommission as the workers' preStop hook, none on the master."""
    doc = spark_cluster()
    pods = cluster_pods(doc)
    (master,) = pods["master"]["containers"]
    (worker,) = pods["worker"]["containers"]
    assert [*master["command"], *master["args"]] == ["lifecycle", "master"]
    name = doc["metadata"]["name"]
    assert [*worker["command"], *worker["args"]] == ["lifecycle", "worker", f"spark://{name}-master-svc:7077"]
    assert worker["lifecycle"]["preStop"]["exec"]["command"] == ["lifecycle-decommission"]
    assert "lifecycle" not in master
    assert doc["spec"]["sparkConf"]["spark.decommission.enabled"] == "true"  # the Worker's SIGPWR handler


def test_spark_cluster_worker_budget_allows_a_default_migration_round() -> None:
    """The worker's LIFECYCLE_DECOMMISSION_TIMEOUT should leave room for Spark's default ~61 s migration round, and
    the deadline plus the kill grace should end before the grace period's SIGKILL."""
    worker = next(w for w in workloads() if w.label == "spark-cluster.yaml:worker")
    timeout = knob_value(worker, "LIFECYCLE_DECOMMISSION_TIMEOUT")
    assert timeout is not None and timeout >= 2 * MIGRATION_ROUND
    assert worker.grace is not None and timeout + knob_value(worker, "LIFECYCLE_KILL_GRACE") < worker.grace


@pytest.mark.parametrize("role", ["master", "worker"])
def test_cluster_policy_gives_the_operators_pods_the_templates_grace_and_command(role: str) -> None:
    """The admission policy should set what the operator overrides: the template's grace period and lifecycle's
    command, on the container of that role, for pods the operator labels with that role."""
    pod = cluster_pods(spark_cluster())[role]
    (container,) = pod["containers"]
    expression = policies()[role]["spec"]["mutations"][0]["applyConfiguration"]["expression"]
    assert f"terminationGracePeriodSeconds: {pod['terminationGracePeriodSeconds']}," in expression
    assert f'name: "{role}"' in expression and 'command: ["lifecycle"]' in expression
    if role == "worker":
        assert ('args: ["worker", "spark://" + object.metadata.labels["spark.operator/spark-cluster-name"] + '
                '"-master-svc:7077"]') in expression
    else:
        assert container["args"] == ["master"] and 'args: ["master"]' in expression


def test_every_cluster_policy_has_a_binding() -> None:
    """Each MutatingAdmissionPolicy should be bound, or it does nothing."""
    docs = list(yaml.safe_load_all(CLUSTER_POLICY.read_text()))
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "MutatingAdmissionPolicy"}
    bound = {d["spec"]["policyName"] for d in docs if d["kind"] == "MutatingAdmissionPolicyBinding"}
    assert names == bound == {"spark-cluster-lifecycle-master", "spark-cluster-lifecycle-worker"}
