"""tests/deployments: one real Prefect server (``prefect server start``) shared by this package's tests."""

from tests.prefect_env import medic_server, sandbox_cluster_name  # noqa: F401  (package-scoped fixtures)
