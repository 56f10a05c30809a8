"""How kafka-medic runs on Prefect: deployments (served or ``prefect deploy``), bootstrap, local server.

* :mod:`deployments.serve` -- every flow as a deployment, health checks on a schedule per cluster;
  ``python -m deployments.serve`` serves them from one process.
* ``deployments/prefect.yaml`` -- the same deployments for ``prefect deploy --all`` + a process
  work pool + ``prefect worker start``.
* :mod:`deployments.bootstrap` -- the one idempotent setup step (block types, cluster blocks,
  concurrency limits).
* :mod:`deployments.local_server` -- a ``prefect server start`` subprocess on loopback (the main job,
  tests).
* :mod:`deployments.entrypoints` -- flow entrypoints that need more than their own module.
"""
