"""The start-up stage: the first process (`lifecycle …`). Heavy: pydantic-settings validates every setting.

initializing → env-resolved → launching: argv, settings, identity, JAVA_HOME, classpath, the frozen launch
plan; then exec the plan, or spawn it and exec into the lean supervisor (lifecycle.supervise), handing over
everything it needs in one JSON argument. Nothing here is loaded by the supervisor or the preStop command.
"""
