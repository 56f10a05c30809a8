"""Every way into kafka-medic: the CLI, the main job, serving, deploying, bootstrapping a server.

* :mod:`deployments.catalogue` -- every flow, its parameter model and how it is deployed (one list);
* :mod:`deployments.cli` -- the ``kafka-medic`` command line (``./medic ...``);
* :mod:`deployments.service` -- the main job, ``./medic start``;
* :mod:`deployments.serve` -- every flow as a deployment, health checks on a schedule per cluster;
  ``python -m deployments.serve`` serves them from one process;
* ``deployments/prefect.yaml`` -- the same deployments for ``prefect deploy --all`` (generated from
  the catalogue);
* :mod:`deployments.bootstrap` -- the one idempotent setup step (block types, cluster blocks,
  concurrency limits, optionally deployments);
* :mod:`deployments.local_server` -- a ``prefect server start`` subprocess on loopback.
"""
