"""Run one container with runc, hardened like Docker, logged, and supervised by a shim
that outlives the agent.

- ``request``: ContainerRequest / MountRequest, what the agent asks for (fully resolved).
- ``users``: ``user:`` resolved in the image's /etc/passwd and /etc/group (never the host's).
- ``spec``: the pure ContainerRequest -> OCI config.json (Docker's capabilities, masked
  and read-only paths, devices, rlimits, cgroup limits); ``host`` gathers the HostFacts
  it needs (capabilities the agent holds, RLIMIT_NOFILE ceiling, swap accounting, tini).
- ``runc``: async runc CLI wrapper with typed errors.
- ``shim``: ``python -m agent.runtime.shim``, the per-container supervisor (logs, OOM,
  exit record); ``logfile``/``logs``: the json-file log, written and read; ``records``:
  exit record and pid files; ``cgroups``: hierarchies, OOM events, cleanup.
- ``container``: ``Runtime``, the API the agent uses (create_and_start, stop, remove,
  status, exec, list_ids).
"""
