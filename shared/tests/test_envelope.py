"""Events encoded together (``encode_many``) are byte for byte what ``Envelope.to_bytes`` makes of them."""

from __future__ import annotations

import uuid

from shared.envelope import Envelope, encode_many, new_event
from shared.logs import correlation_id_var


def test_events_encoded_together_are_the_envelopes_new_event_makes_byte_for_byte() -> None:
    datas = [{"initiative_id": f"I-{n}", "title": "Cải tiến khuôn định vị cáp", "seq": n} for n in range(3)]
    token = correlation_id_var.set("corr-17")
    try:
        ids, bodies = encode_many("initiative.reviewed", datas, producer="review")
        single = new_event("initiative.reviewed", datas[0], producer="review")
    finally:
        correlation_id_var.reset(token)
    assert len(set(ids)) == 3 and all(uuid.UUID(i).version == 7 for i in ids)
    for event_id, data, body in zip(ids, datas, bodies, strict=True):
        env = Envelope.from_bytes(body)
        assert (env.id, env.type, env.version, env.producer, env.data) == (
            event_id,
            "initiative.reviewed",
            1,
            "review",
            data,
        )
        assert (env.correlation_id, env.causation_id, env.routing_key) == ("corr-17", None, "initiative.reviewed.v1")
        assert env.to_bytes() == body
        # The same keys in the same order as one made by new_event.
        assert list(Envelope.from_bytes(body).to_dict()) == list(single.to_dict())
    assert Envelope.from_bytes(bodies[0]).occurred_at == Envelope.from_bytes(bodies[2]).occurred_at
    assert encode_many("x.y", [], producer="p") == ([], [])
