"""A province-shaped campaign for the whole-pipeline benches (bench/pipeline.py, bench/replay.py): units, members,
a campaign with two phases, quotas, initiatives with Vietnamese text, the reviewers' intended decisions, and the
ground truth of every unit's figures (SPEC §4) that tally must end up with.

Deterministic for a given shape and seed. Members belong to one grassroots unit each (``<unit>-M<n>``), every
member authors at least one initiative when a unit has at least as many initiatives as members, and about one
initiative in five has a co-author of the same unit, so ``participants`` is a real distinct count.
Exactly ``valid`` initiatives are meant valid (a seeded shuffle); the others invalid with one of the SPEC §3
reasons. Expected benefits are drawn from a skewed distribution and scaled so that the valid ones add up to
``benefit_vnd`` (to the nearest 1,000 VND per initiative).
"""

from __future__ import annotations

import random
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sangkien_cli import DEMO_FIELDS

sys.path.append(str(Path(__file__).resolve().parents[1] / "services" / "review" / "tests"))
from review_corpus import ACTIONS, DETAILS, OBJECTS, _sentence  # noqa: E402  (bench/review.py's texts)

REASONS = ("duplicate", "incomplete", "out_of_scope", "not_applied_in_window", "not_recognised", "not_member", "spam")
REASON_NOTES = {
    "duplicate": "Trùng với sáng kiến đã đăng ký trước",
    "incomplete": "Hồ sơ chưa đủ nội dung thực trạng, giải pháp, hiệu quả",
    "out_of_scope": "Không thuộc lĩnh vực của phong trào",
    "not_applied_in_window": "Chưa áp dụng trong thời gian của phong trào",
    "not_recognised": "Hội đồng sáng kiến cơ sở không công nhận",
    "not_member": "Tác giả không phải đoàn viên công đoàn",
    "spam": "Nội dung không phải sáng kiến",
}
FIELDS = DEMO_FIELDS
# Thanh Hóa's 27 district-level federations and 7 provincial sector unions (all of kind ``district``, SPEC §1).
TH_DISTRICTS = (
    "thành phố Thanh Hóa", "thành phố Sầm Sơn", "thị xã Bỉm Sơn", "thị xã Nghi Sơn", "huyện Bá Thước",
    "huyện Cẩm Thủy", "huyện Đông Sơn", "huyện Hà Trung", "huyện Hậu Lộc", "huyện Hoằng Hóa", "huyện Lang Chánh",
    "huyện Mường Lát", "huyện Nga Sơn", "huyện Ngọc Lặc", "huyện Như Thanh", "huyện Như Xuân", "huyện Nông Cống",
    "huyện Quan Hóa", "huyện Quan Sơn", "huyện Quảng Xương", "huyện Thạch Thành", "huyện Thiệu Hóa",
    "huyện Thọ Xuân", "huyện Thường Xuân", "huyện Triệu Sơn", "huyện Vĩnh Lộc", "huyện Yên Định",
)  # fmt: skip
TH_SECTORS = (
    "Công đoàn ngành Giáo dục", "Công đoàn ngành Y tế", "Công đoàn ngành Công Thương",
    "Công đoàn ngành Giao thông vận tải - Xây dựng", "Công đoàn ngành Nông nghiệp và PTNT",
    "Công đoàn Viên chức tỉnh", "Công đoàn các Khu kinh tế và Khu công nghiệp",
)  # fmt: skip
EMPLOYERS = (
    "Công ty Xi măng", "Công ty TNHH May", "Công ty CP Mía đường", "Bệnh viện Đa khoa", "Trường THPT",
    "Trường Tiểu học", "Công ty Điện lực", "Công ty CP Giày da", "Công ty Cấp nước", "UBND xã",
    "Công ty TNHH Lọc hóa dầu", "Trung tâm Y tế", "Công ty CP Vận tải", "Nhà máy Nhiệt điện", "Chi cục Thuế",
)  # fmt: skip
PLACES = ("Nghi Sơn", "Bỉm Sơn", "Lam Sơn", "Hàm Rồng", "Đông Hương", "Quảng Thắng", "Hoằng Quang", "Thiệu Dương")
SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đỗ", "Bùi", "Đặng", "Ngô", "Lương", "Trịnh")
MIDDLES = ("Văn", "Thị", "Đức", "Minh", "Thu", "Quang", "Ngọc", "Hữu")
GIVEN = ("An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hùng", "Lan", "Long", "Mai", "Nam", "Phương", "Sơn", "Thảo")


MASK64 = 2**64 - 1
LCG_A, LCG_C = 6_364_136_223_846_793_005, 1_442_695_040_888_963_407  # a 64-bit mix of (initiative, k)


def full_name(n: int) -> str:
    return f"{SURNAMES[n % 12]} {MIDDLES[(n // 12) % 8]} {GIVEN[(n // 96) % 14]}"


@dataclass
class Shape:
    """How big the province is; the defaults are Thanh Hóa's figures of SPEC's introduction."""

    code: str = "TH"
    name: str = "LĐLĐ tỉnh Thanh Hóa"
    grassroots: int = 3_655
    members: int = 308_598
    submissions: int = 600_175
    valid: int = 515_451
    achievement_pct: float = 514.0  # the province's valid / its own quota (both phases)
    benefit_vnd: int = 584_000_000_000
    p1_share: float = 0.4  # of the submissions, entered while phase P1 is open (the rest in P2)
    districts: int = 34  # 27 district federations + 7 sector unions at full size
    seed: int = 13
    kind: str = "province"  # or "sector" (a national sector union)

    def scaled(self, scale: float) -> Shape:
        def s(n: int, least: int) -> int:
            return max(least, round(n * scale))

        grassroots = s(self.grassroots, 2)
        members = max(grassroots, s(self.members, 2))
        submissions = max(members, s(self.submissions, 4))
        valid = min(submissions - 1, max(1, round(self.valid * submissions / self.submissions)))
        return Shape(
            code=self.code, name=self.name, grassroots=grassroots, members=members, submissions=submissions,
            valid=valid, achievement_pct=self.achievement_pct, benefit_vnd=round(self.benefit_vnd * scale),
            p1_share=self.p1_share, districts=max(1, min(self.districts, grassroots // 2)), seed=self.seed,
            kind=self.kind,
        )  # fmt: skip


@dataclass
class Item:
    index: int  # position in submission order
    unit: int  # grassroots index
    phase: str
    authors: list[int]  # member numbers within the unit
    benefit: int
    valid: bool
    reason: str | None


@dataclass
class Figures:
    submitted: int = 0
    valid: int = 0
    invalid: int = 0
    participants: int = 0
    benefit_vnd: int = 0
    quota: int | None = None
    self_set: int | None = None

    def add(self, other: Figures) -> None:
        self.submitted += other.submitted
        self.valid += other.valid
        self.invalid += other.invalid
        self.participants += other.participants  # members belong to one unit each: subtree sums are exact
        self.benefit_vnd += other.benefit_vnd


@dataclass
class Province:
    """The generator. ``units`` are SPEC §9 unit rows (national root optional), parents before children."""

    shape: Shape
    campaign: str = "TH23"
    parent_code: str | None = None
    units: list[dict[str, Any]] = field(default_factory=list)
    grassroots: list[str] = field(default_factory=list)  # codes
    district_of: list[int] = field(default_factory=list)  # grassroots index -> district index
    districts: list[str] = field(default_factory=list)
    members: list[int] = field(default_factory=list)  # per grassroots
    per_unit: list[int] = field(default_factory=list)  # initiatives per grassroots
    quotas: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # (unit, phase) -> assigned, self
    member_base: list[int] = field(default_factory=list)
    today: date = field(default_factory=date.today)

    def __post_init__(self) -> None:
        sh = self.shape
        rng = random.Random(sh.seed)
        code = sh.code
        self.units.append({"code": code, "name": sh.name, "kind": sh.kind, "parent_code": self.parent_code,
                           "cluster": "C1"})  # fmt: skip
        names = [f"LĐLĐ {d}" for d in TH_DISTRICTS] + list(TH_SECTORS)
        for d in range(sh.districts):
            dcode = f"{code}-{d + 1:02d}"
            name = names[d] if d < len(names) else f"Công đoàn ngành số {d + 1}"
            self.districts.append(dcode)
            self.units.append({"code": dcode, "name": name, "kind": "district", "parent_code": code})
        # Members per grassroots: skewed (a few large employers, many small schools and communes).
        weights = [rng.paretovariate(1.6) for _ in range(sh.grassroots)]
        total_w = sum(weights)
        self.members = [1 + int((sh.members - sh.grassroots) * w / total_w) for w in weights]
        for i in range(sh.members - sum(self.members)):
            self.members[i % sh.grassroots] += 1
        # Initiatives per grassroots: one per member first, the rest in proportion to members.
        extra = sh.submissions - sh.members
        self.per_unit = [m + (extra * m) // sh.members for m in self.members]
        for i in range(sh.submissions - sum(self.per_unit)):
            self.per_unit[i % sh.grassroots] += 1
        base = 0
        for g in range(sh.grassroots):
            d = g % sh.districts
            gcode = f"{self.districts[d]}-{g // sh.districts + 1:03d}"
            employer = EMPLOYERS[g % len(EMPLOYERS)]
            self.grassroots.append(gcode)
            self.district_of.append(d)
            self.member_base.append(base)
            base += self.members[g]
            self.units.append({"code": gcode, "name": f"CĐCS {employer} {PLACES[g % len(PLACES)]} {g + 1}",
                               "kind": "grassroots", "parent_code": self.districts[d],
                               "member_count": self.members[g]})  # fmt: skip
        # Outcomes: exactly ``valid`` valid, in a seeded order; reasons rotate over SPEC §3's codes.
        self.outcomes = bytearray([1]) * sh.valid + bytearray(sh.submissions - sh.valid)
        rng.shuffle(self.outcomes)  # type: ignore[arg-type]
        # Submission order: units interleaved (a seeded shuffle of one slot per initiative).
        order = array("i")
        for g, n in enumerate(self.per_unit):
            order.extend([g] * n)
        rng.shuffle(order)  # type: ignore[arg-type]
        self.order = order
        self.kth = array("i", bytes(4 * sh.submissions))  # item i is the kth[i]-th of its unit
        seen = [0] * sh.grassroots
        for i, g in enumerate(order):
            self.kth[i] = seen[g]
            seen[g] += 1
        # Benefits: many small, a few large; scaled so the valid ones add up to the target.
        raw = array("q", (int(rng.paretovariate(1.2) * 1_000_000) if rng.random() < 0.7 else 0
                          for _ in range(sh.submissions)))  # fmt: skip
        valid_sum = sum(b for b, v in zip(raw, self.outcomes, strict=True) if v) or 1
        factor = sh.benefit_vnd / valid_sum
        self.benefits = array("q", (round(b * factor / 1000) * 1000 for b in raw))
        self.n1 = round(sh.submissions * sh.p1_share)
        self.sentences = [_sentence(rng) for _ in range(20_000)]
        self._quotas()

    # ---- the plan ----------------------------------------------------------------------------------

    def _quotas(self) -> None:
        """Every grassroots unit an assigned quota per phase (self-set 20% higher); the province one of its own
        so that it reaches ``achievement_pct``; districts none (theirs is the sum of their children's)."""
        sh = self.shape
        province_q = max(1, round(sh.valid * 100 / sh.achievement_pct))
        p1 = max(1, round(province_q * sh.p1_share))
        self.quotas[(sh.code, "P1")] = (p1, round(p1 * 1.2))
        self.quotas[(sh.code, "P2")] = (province_q - p1, round((province_q - p1) * 1.2))
        for g, gcode in enumerate(self.grassroots):
            q = max(1, self.per_unit[g] // 6)
            q1 = max(1, round(q * sh.p1_share))
            self.quotas[(gcode, "P1")] = (q1, round(q1 * 1.2))
            self.quotas[(gcode, "P2")] = (max(1, q - q1), round(max(1, q - q1) * 1.2))

    def campaign_body(self, today: date, open_phase: str = "P1") -> dict[str, Any]:
        """The campaign with ``open_phase`` open today: P1 then P2, back to back."""
        if open_phase == "P1":
            p1 = (today - timedelta(days=30), today + timedelta(days=10))
        else:
            p1 = (today - timedelta(days=60), today - timedelta(days=1))
        p2 = (p1[1] + timedelta(days=1), p1[1] + timedelta(days=200))
        return {
            "name": "Sáng kiến vượt khó — tỉnh Thanh Hóa",
            "fields": FIELDS,
            "application_window": {"from": (today - timedelta(days=400)).isoformat(), "to": p2[1].isoformat()},
            "phases": [
                {"code": "P1", "name": "Giai đoạn 1", "opens_on": p1[0].isoformat(), "closes_on": p1[1].isoformat()},
                {"code": "P2", "name": "Giai đoạn 2", "opens_on": p2[0].isoformat(), "closes_on": p2[1].isoformat()},
            ],
            "milestones": [100_000 * i for i in range(1, 11)],
        }

    def quota_rows(self) -> list[dict[str, Any]]:
        return [{"unit_code": u, "phase": p, "assigned": a, "self_set": s} for (u, p), (a, s) in self.quotas.items()]

    # ---- initiatives -------------------------------------------------------------------------------

    def items(self, start: int = 0, stop: int | None = None) -> Iterator[Item]:
        """Initiatives ``start``..``stop`` in submission order (the k-th of a unit has member k as first author)."""
        stop = self.shape.submissions if stop is None else stop
        for i in range(start, stop):
            g, k = self.order[i], self.kth[i]
            m = self.members[g]
            authors = [k % m]
            if m > 1 and i % 5 == 0:
                co = (k * 7 + 3) % m
                if co != authors[0]:
                    authors.append(co)
            valid = bool(self.outcomes[i])
            yield Item(i, g, "P1" if i < self.n1 else "P2", authors, self.benefits[i], valid,
                       None if valid else REASONS[i % len(REASONS)])  # fmt: skip

    def member_id(self, g: int, k: int) -> str:
        return f"{self.shape.code}-M{self.member_base[g] + k:07d}"

    def body(self, item: Item) -> dict[str, Any]:
        """The SPEC §9 request body of one initiative. Texts as bench/review.py's corpus: a title of an action,
        an object and a detail, a solution of 4–6 sentences from a pool of 20,000 generated ones, so that
        unrelated initiatives are not near-duplicates; those meant invalid as ``duplicate`` copy the solution
        of an earlier initiative (and so are near-duplicates of it, as in a real campaign)."""
        g, i = item.unit, item.index
        h = (i * 2_654_435_761) & 0xFFFFFFFF
        secret = i % 97 == 0
        source = i - 1 - h % 50 if item.reason == "duplicate" and i > 0 else i
        hs = (source * 2_654_435_761) & 0xFFFFFFFF
        pool = self.sentences
        mixed = (((source * LCG_A + k * LCG_C) & MASK64) >> 29 for k in range(6))
        solution = " ".join(pool[m % len(pool)] for m, _ in zip(mixed, range(4 + hs % 3), strict=False))
        title = (f"{ACTIONS[h % len(ACTIONS)].capitalize()} {OBJECTS[(h >> 8) % len(OBJECTS)]} "
                 f"{DETAILS[(h >> 16) % len(DETAILS)]} (số {i + 1})")  # fmt: skip
        return {
            "campaign": self.campaign,
            "unit_code": self.grassroots[g],
            "field": FIELDS[i % len(FIELDS)]["code"],
            "title": title,
            # A confidential initiative keeps only its title and effect (SPEC §3): no problem nor solution.
            "problem": None if secret else pool[(h + 13) % len(pool)],
            "solution": None if secret else solution,
            "effect": f"Giảm {10 + i % 50}% thời gian, tiết kiệm chi phí vật tư mỗi quý.",
            "expected_benefit_vnd": item.benefit,
            "applied_on": (self.today - timedelta(days=20 + i % 300)).isoformat(),  # inside the window
            "confidential": secret,
            "authors": [{"member_id": self.member_id(g, a), "full_name": full_name(self.member_base[g] + a)}
                        for a in item.authors],
        }  # fmt: skip

    def decision(self, item: Item) -> dict[str, Any]:
        if item.valid:
            return {"outcome": "valid"}
        assert item.reason is not None
        return {"outcome": "invalid", "reason": item.reason, "note": REASON_NOTES[item.reason]}

    # ---- ground truth ------------------------------------------------------------------------------

    def truth(self, upto: int | None = None) -> dict[tuple[str, str | None], Figures]:
        """(unit code, phase or None for the whole campaign) -> the figures tally must show once the first
        ``upto`` initiatives are submitted and decided."""
        upto = self.shape.submissions if upto is None else upto
        by_unit: dict[tuple[int, str | None], Figures] = {}
        authors: dict[tuple[int, str | None], set[int]] = {}
        for item in self.items(0, upto):
            for phase in (item.phase, None):
                f = by_unit.setdefault((item.unit, phase), Figures())
                f.submitted += 1
                if item.valid:
                    f.valid += 1
                    f.benefit_vnd += item.benefit
                else:
                    f.invalid += 1
                authors.setdefault((item.unit, phase), set()).update(item.authors)
        for key, members in authors.items():
            by_unit[key].participants = len(members)
        out: dict[tuple[str, str | None], Figures] = {}
        code = self.shape.code
        for phase in ("P1", "P2", None):
            province = out.setdefault((code, phase), Figures())
            for d in self.districts:
                out[(d, phase)] = Figures()
            for g, gcode in enumerate(self.grassroots):
                f = by_unit.get((g, phase), Figures())
                out[(gcode, phase)] = f
                out[(self.districts[self.district_of[g]], phase)].add(f)
                province.add(f)
        # Quotas: own rows; a unit with none has its children's sum; the whole campaign sums the phases.
        for (u, p), (a, s) in self.quotas.items():
            out[(u, p)].quota, out[(u, p)].self_set = a, s
        for p in ("P1", "P2"):
            for g, gcode in enumerate(self.grassroots):
                dq = out[(self.districts[self.district_of[g]], p)]
                if (self.districts[self.district_of[g]], p) not in self.quotas:
                    dq.quota = (dq.quota or 0) + (out[(gcode, p)].quota or 0)
                    dq.self_set = (dq.self_set or 0) + (out[(gcode, p)].self_set or 0)
        for u in [code, *self.districts, *self.grassroots]:
            q1, q2 = out[(u, "P1")], out[(u, "P2")]
            if q1.quota is not None or q2.quota is not None:
                out[(u, None)].quota = (q1.quota or 0) + (q2.quota or 0)
                out[(u, None)].self_set = (q1.self_set or 0) + (q2.self_set or 0)
        return out
