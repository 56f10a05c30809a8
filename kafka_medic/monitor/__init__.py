"""COLLECT: read a cluster's state (Admin API, kafka-python, JMX exporters, listener probes, EC2).

Synchronous clients only (they run in worker threads); every failure becomes a ``CollectionIssue``
on the snapshot, never an exception, because a broker that does not answer is exactly what a health
check exists to report.
"""
