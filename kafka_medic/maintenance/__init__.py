"""Pure decisions behind the maintenance flows (no Kafka, no Prefect): which leaders an election
moves, whether a broker may be restarted now, and how a drain is undone exactly."""
