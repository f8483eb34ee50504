"""What parsing a payload into its consumer's model costs, per event: every consumer model of every event it reads.

    ENVIRONMENT=development .venv/bin/python bench/events.py [--number 20000]

The payloads are those of docs/events.md's examples, at the sizes the pipeline sends (an initiative's texts of a
few hundred characters, two authors). Each figure is the best of five runs of ``parse_event`` (pydantic-core's
``model_validate`` on the decoded dict, as the dispatcher hands it to a handler), in µs per event.
"""

from __future__ import annotations

import argparse
import sys
import timeit
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The services' packages before this folder (bench/intake.py and bench/review.py would shadow them).
sys.path[:0] = [
    str(REPO),
    str(REPO / "scripts"),
    *(str(REPO / "services" / n) for n in ("intake", "review", "tally", "awards")),
]

from events_doc import consumer_models  # noqa: E402

from shared.envelope import Envelope  # noqa: E402
from shared.messaging import parse_event  # noqa: E402

AUTHORS = [{"member_id": "M-0001", "full_name": "Nguyễn Văn A"}, {"member_id": "M-0002", "full_name": "Trần Thị B"}]
INITIATIVE: dict[str, Any] = {
    "id": str(uuid.uuid4()),
    "seq": 17,
    "campaign": "1M",
    "phase": "P1",
    "unit_code": "TH-01-001",
    "field": "production",
    "title": "Cải tiến khuôn định vị cho dây chuyền đóng bao xi măng",
    "problem": "Căn chỉnh thủ công mất thời gian và gây sai lệch giữa các ca. " * 4,
    "solution": "Khuôn định vị bằng thép tái chế, lắp nhanh trên băng tải, có vạch chuẩn cho từng cỡ bao. " * 4,
    "effect": "Giảm 30% thời gian căn chỉnh, tiết kiệm vật tư.",
    "expected_benefit_vnd": 150_000_000,
    "applied_on": "2022-03-01",
    "confidential": False,
    "authors": AUTHORS,
    "entered_by": "account-sub",
    "submitted_at": "2022-03-05T02:00:00+00:00",
    "revision": 0,
}
PAYLOADS: dict[str, dict[str, Any]] = {
    "unit.upserted.v1": {
        "code": "TH-01-001",
        "name": "CĐCS Công ty X",
        "kind": "grassroots",
        "parent_code": "TH-01",
        "cluster": None,
        "member_count": 420,
        "path": ["VN", "TH", "TH-01", "TH-01-001"],
        "revision": 17,
    },
    "campaign.upserted.v1": {
        "code": "1M",
        "name": "01 triệu sáng kiến",
        "fields": [{"code": "production", "name": "Sản xuất kinh doanh"}],
        "application_window": {"from": "2021-09-01", "to": "2023-09-01"},
        "phases": [{"code": "P1", "name": "Giai đoạn 1", "opens_on": "2022-01-08", "closes_on": "2022-05-31"}],
        "milestones": [100000, 200000],
        "revision": 3,
    },
    "initiative.submitted.v1": INITIATIVE,
    "initiative.revised.v1": {**INITIATIVE, "revision": 1},
    "initiative.withdrawn.v1": {
        **{k: INITIATIVE[k] for k in ("id", "campaign", "phase", "unit_code", "authors")},
        "withdrawn_at": "2022-03-06T00:00:00+00:00",
    },
    "initiative.reviewed.v1": {
        "initiative_id": INITIATIVE["id"],
        **{k: INITIATIVE[k] for k in ("campaign", "phase", "unit_code", "seq", "title", "authors", "submitted_at")},
        "expected_benefit_vnd": 150_000_000,
        "outcome": "valid",
        "reason": None,
        "note": None,
        "verified_benefit_vnd": None,
        "decided_by": "reviewer-sub",
        "decided_at": "2022-03-07T03:00:00+00:00",
        "decision_seq": 1,
    },
    "initiative.appraised.v1": {
        "initiative_id": INITIATIVE["id"],
        "campaign": "1M",
        "unit_code": "TH-01-001",
        "authors": AUTHORS,
        "appraisal_count": 2,
        "mean": 8.75,
        "grade": "excellent",
        "criteria_mean": {"novelty": 8.5, "applicability": 9, "effectiveness": 9, "scope": 8.5},
        "appraised_at": "2022-03-09T03:00:00+00:00",
        "appraisal_seq": 1,
    },
    "tally.snapshot_frozen.v1": {
        "snapshot_id": str(uuid.uuid4()),
        "campaign": "1M",
        "phase": "P1",
        "taken_at": "2022-06-01T00:00:00+00:00",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    number = parser.parse_args().number
    print(f"{'routing key':<26} {'consumer':<8} {'model':<22} µs/event")
    for consumer, events in consumer_models().items():
        for key, model in events.items():
            envelope = Envelope(type=key.rsplit(".v", 1)[0], data=PAYLOADS[key], producer="bench")
            parse_event(model, envelope)  # fails loudly if the sample does not fit
            best = min(timeit.repeat(lambda m=model, e=envelope: parse_event(m, e), number=number, repeat=5))
            print(f"{key:<26} {consumer:<8} {model.__name__:<22} {best / number * 1e6:8.2f}")


if __name__ == "__main__":
    main()
