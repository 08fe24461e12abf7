"""The demo systems of record: three PostgreSQL databases (crm, core, care), seeded and kept busy.

    from demo import seed_demo, run_workload, export_demo_passwords
    seed_demo(get_settings(), customers=1000, seed=42)      # `scv demo seed`
    stats = run_workload(get_settings(), rate=500, duration_s=30)  # `scv demo workload`

Modules: ``model`` (row types), ``generator`` (deterministic rows, pure), ``loader`` (COPY),
``seed`` (the seed protocol), ``roles``/``secrets`` (CDC users and their passwords),
``operations`` (the workload's changes), ``workload`` (pacing and stats), ``cli``.
"""

from __future__ import annotations

from demo.exceptions import DemoError, PostgresUnavailable, SecretsMissing, SeedConflict, WorkloadFailed
from demo.secrets import export_demo_passwords
from demo.seed import SeedReport, seed_demo
from demo.workload import WorkloadProgress, WorkloadStats, run_workload

__all__ = [
    "DemoError",
    "PostgresUnavailable",
    "SecretsMissing",
    "SeedConflict",
    "SeedReport",
    "WorkloadFailed",
    "WorkloadProgress",
    "WorkloadStats",
    "export_demo_passwords",
    "run_workload",
    "seed_demo",
]
