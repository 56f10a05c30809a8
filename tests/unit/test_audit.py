"""kafka_medic.audit: the shape of a new audit topic."""

from __future__ import annotations

import pytest

from kafka_medic.audit import audit_topic_shape


@pytest.mark.parametrize(("brokers", "shape"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (6, (3, 2)), (2000, (3, 2))])
def test_a_new_audit_topic_always_keeps_one_replica_of_headroom(brokers: int, shape: tuple[int, int]) -> None:
    # the "started" record gates every destructive step: losing one broker must never make it unwritable
    rf, min_isr = audit_topic_shape(brokers)
    assert (rf, min_isr) == shape
    assert rf == 1 or min_isr < rf
