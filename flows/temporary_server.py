"""Prefect's temporary server (started when no PREFECT_API_URL is set) stops when the process that started it is
gone (docs/design.md, "House rules").

Prefect stops it at interpreter exit, which a SIGKILLed `grm run` never reaches: the server ran on, orphaned,
holding its port and database. Here Prefect's command for it is run through ``python -m grm.parent_watch PID``,
which stops it once the starting process is gone. Prefect 3.8's ``SubprocessASGIServer._run_uvicorn_command``
is replaced by the same command and environment with that prefix (tests/test_processes.py checks it still
holds after an upgrade).
"""

from __future__ import annotations

import os
import subprocess
import sys

import prefect
from prefect.server.api import server
from prefect.settings import get_current_settings


def _run_uvicorn_command(self) -> subprocess.Popen:
    """Prefect 3.8.8's command and environment, run under grm.parent_watch."""
    return subprocess.Popen(
        args=[sys.executable, "-m", "grm.parent_watch", str(os.getpid()), "-m", "uvicorn",
              "--app-dir", str(prefect.__module_path__.parent), "--factory", "prefect.server.api.server:create_app",
              "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
        env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
             **get_current_settings().to_environment_variables(exclude_unset=True)},
    )


# Prefect's own, kept so that a test can compare the two commands
prefect_command = getattr(server.SubprocessASGIServer, "_prefect_command", server.SubprocessASGIServer._run_uvicorn_command)


def guard_temporary_server() -> None:
    server.SubprocessASGIServer._prefect_command = prefect_command
    server.SubprocessASGIServer._run_uvicorn_command = _run_uvicorn_command


guard_temporary_server()
