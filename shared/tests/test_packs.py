"""How the RabbitMQ transport cuts events into packs (no broker needed)."""

from __future__ import annotations

import orjson

from shared.bus.base import OutgoingMessage
from shared.bus.rabbitmq import pack
from shared.envelope import Envelope


def _msg(key: str, n: int, text: str = "Cải tiến khuôn định vị") -> OutgoingMessage:
    env = Envelope(type=key.rsplit(".v", 1)[0], data={"n": n, "text": text}, producer="t")
    return OutgoingMessage(env.id, env.routing_key, env.to_bytes())


def test_events_are_grouped_by_routing_key_in_order_and_cut_at_the_pack_size() -> None:
    messages = [_msg("a.x.v1", i) for i in range(250)] + [_msg("b.y.v1", i) for i in range(3)]
    messages.insert(10, _msg("b.y.v1", 99))
    frames = pack(messages, pack_size=100)
    assert [(f.routing_key, f.count) for f in frames] == [
        ("a.x.v1", 100),
        ("a.x.v1", 100),
        ("a.x.v1", 50),
        ("b.y.v1", 4),
    ]
    # The bodies are the stored envelopes joined as they were: decoding gives them back, in order.
    decoded = [Envelope.from_obj(o) for f in frames for o in orjson.loads(f.body)]
    assert [e.data["n"] for e in decoded if e.type == "a.x"] == list(range(250))
    assert [e.data["n"] for e in decoded if e.type == "b.y"] == [99, 0, 1, 2]
    assert decoded[0].data["text"] == "Cải tiến khuôn định vị"


def test_a_lone_event_stays_a_plain_envelope() -> None:
    only = _msg("a.x.v1", 1)
    [frame] = pack([only], pack_size=100)
    assert frame.count == 1 and frame.body == only.body and frame.message_id == only.event_id


def test_pack_size_one_never_packs() -> None:
    frames = pack([_msg("a.x.v1", i) for i in range(5)], pack_size=1)
    assert [f.count for f in frames] == [1] * 5


def test_a_pack_stays_under_its_byte_limit() -> None:
    messages = [_msg("a.x.v1", i, text="đ" * 2000) for i in range(10, 40)]  # bodies of one length
    one = len(messages[0].body)
    frames = pack(messages, pack_size=100, max_bytes=10 * one + 11)
    assert sum(f.count for f in frames) == 30
    assert all(len(f.body) <= 10 * one + 11 for f in frames)
    assert [f.count for f in frames] == [10, 10, 10]
