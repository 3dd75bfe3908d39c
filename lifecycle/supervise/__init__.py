"""The lean supervisor: the second process, PID 1 for the container's life (stdlib and `transitions` only).

Entered by exec from the start-up stage (lifecycle.launch.handover) with the child already running:
running → decommissioning → terminated. It never imports pydantic or anything of lifecycle.launch.
"""
