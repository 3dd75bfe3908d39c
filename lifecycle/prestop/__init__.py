"""The preStop command (`lifecycle-decommission`): the third process, started by the kubelet in the container.

Its start-up counts against the pod's grace period: before it asks the supervisor to decommission, it loads
only what prestop/client.py lists (no pydantic, psutil, re, enum or signal).
"""
