"""Executing partition moves safely: throttles, journal, batching, progress, adoption, cancellation.

``execute_plan`` runs a planner ``Plan``'s moves (the caller holds the cluster's mutate lock);
``adopt`` finishes what a dead orchestrator left in the journal; ``cancel_reassignments`` reverts
running moves unless that would need an unclean election. Pure parts (``throttles``, ``batching``,
``progress``, ``isr``, ``journal`` encoding) are testable without Kafka; ``cluster_ops`` is the
only module that talks to the cluster.
"""

from kafka_medic.executor.adopt import AdoptionResult, AdoptionTimeout, adopt, inspect
from kafka_medic.executor.cancel import CancelResult, UncleanRevertRefused, cancel_reassignments, plan_cancel
from kafka_medic.executor.cluster_ops import ClusterOps, ClusterState
from kafka_medic.executor.journal import (
    Journal,
    JournalStore,
    JournalTooLarge,
    StoreJournal,
    journal_variable,
    memory_journal_store,
)
from kafka_medic.executor.ledger import Ledger, ThrottleError, UnfinishedJournal
from kafka_medic.executor.progress import Progress
from kafka_medic.executor.reassign import (
    ExecutionOptions,
    ExecutionResult,
    ForeignReassignment,
    execute_plan,
    precheck,
)
from kafka_medic.executor.throttles import ThrottleSet
from kafka_medic.executor.transient import TransientKafkaError, is_transient, retry_on_transient

__all__ = [
    "AdoptionResult",
    "AdoptionTimeout",
    "CancelResult",
    "ClusterOps",
    "ClusterState",
    "ExecutionOptions",
    "ExecutionResult",
    "ForeignReassignment",
    "Journal",
    "JournalStore",
    "JournalTooLarge",
    "Ledger",
    "Progress",
    "StoreJournal",
    "ThrottleError",
    "ThrottleSet",
    "TransientKafkaError",
    "UncleanRevertRefused",
    "UnfinishedJournal",
    "adopt",
    "cancel_reassignments",
    "execute_plan",
    "inspect",
    "is_transient",
    "journal_variable",
    "memory_journal_store",
    "plan_cancel",
    "precheck",
    "retry_on_transient",
]
