"""The Thanh Hóa replay (issue 13, item 4): the province of SPEC's figures entered and decided through the gateway,
every unit's figures checked against the generator's ground truth, and ``sangkien tally verify``.

    flock /tmp/sangkien-bench.lock .venv/bin/python bench/replay.py [--scale 1] [--reviewers 8] [--entry-clients 4]
        [--json out.json]
    flock /tmp/sangkien-bench.lock .venv/bin/python bench/replay.py --national [--scale 1]

At ``--scale 1``: 3,655 grassroots unions under 27 district federations and 7 sector unions, 308,598 participating
members, 600,175 submissions (40% while phase P1 is open, then the campaign is moved so that P2 is open and the
rest come), 515,451 decided valid and the rest invalid with reasons, benefits of 584 billion VND over the valid
ones, quotas such that the province reaches 514% (bench/province.py). ``--scale 0.02`` is the same shape at 2%.
The five processes are started as bench/pipeline.py starts them (``scripts/run-distributed.sh``, fresh databases
and queues, removed afterwards); the plan is loaded through the gateway as an operator; support accounts enter
the initiatives by ``POST /initiatives/batch`` (1,000 a request) while scripted reviewers claim 50 at a time and
decide them by ``POST /review/decisions/batch``.

It prints the time from the first submission until tally's figures show the last decision (and the part of it
spent waiting for the campaign's move to P2 to reach intake), the CPU per initiative of every process (as
pipeline.py's (d)), then checks, through the gateway as an operator, every unit's figures for the whole campaign
and for each phase against the ground truth, and runs ``sangkien tally verify`` on tally's database. Exit status
1 when anything differs.

Expected duration: the system of commit 6861ae0 handled about 140 initiatives/s end to end, so ``--scale 1``
would take about 75 minutes there (``--scale 0.02``: about 2 minutes with start-up and checks); the target of
issue 13 is at most 5 minutes. ``--national``: 63 provinces and 20 national sector unions under ``VN``, about
150,000 grassroots units and 2.5 M initiatives at ``--scale 1`` (target 15 minutes; hours on the code above).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pipeline
from pipeline import (
    REPO,
    Conn,
    CpuMeter,
    Depths,
    Progress,
    cpu_table,
    enter_and_review,
    enter_batches,
    load_plan,
    log,
    put_campaign,
    running_system,
    tally_figures,
    token,
    wait_plan,
)
from province import Figures, Province, Shape
from tally.domain.counting import achievement_pct  # noqa: E402  (services/tally is on the path: pipeline)

NATIONAL_ROOT = {"code": "VN", "name": "Tổng Liên đoàn Lao động Việt Nam", "kind": "national", "parent_code": None}


def national(scale: float, seed: int = 63) -> list[Province]:
    """63 provinces and 20 national sector unions, sizes skewed, about 150,000 grassroots units and 2.5 M
    initiatives in all at scale 1; each with its own achievement of quota (80%–514%)."""
    rng = random.Random(seed)
    tops = [(f"P{k:02d}", f"LĐLĐ tỉnh, thành phố số {k}", "province") for k in range(1, 64)]
    tops += [(f"S{k:02d}", f"Công đoàn ngành Trung ương số {k}", "sector") for k in range(1, 21)]
    weights = [rng.uniform(0.3, 1.7) for _ in tops]
    total = sum(weights)
    provinces = []
    for (code, name, kind), w in zip(tops, weights, strict=True):
        share = w / total
        grassroots = max(2, round(150_000 * share * scale))
        submissions = max(4 * grassroots, round(2_500_000 * share * scale))
        members = max(grassroots, round(submissions * 0.5))
        shape = Shape(
            code=code, name=name, grassroots=grassroots, members=members, submissions=submissions,
            valid=round(submissions * 0.86), achievement_pct=rng.uniform(80, 514),
            benefit_vnd=round(submissions * 950_000), districts=max(1, min(30, grassroots // 2)),
            seed=rng.randrange(10**9), kind=kind,
        )  # fmt: skip
        provinces.append(Province(shape, campaign="1M", parent_code="VN"))
    return provinces


def spans(provinces: list[Province], phase: str) -> list[tuple[Province, int, int]]:
    """Each province's items of ``phase``, interleaved 1,000 at a time across provinces."""
    ranges = [(p, 0, p.n1) if phase == "P1" else (p, p.n1, p.shape.submissions) for p in provinces]
    out = []
    for k in range(max((b - a + 999) // 1000 for _, a, b in ranges)):
        for p, a, b in ranges:
            lo = a + 1000 * k
            if lo < b:
                out.append((p, lo, min(b, lo + 1000)))
    return out


FIELDS = ("submitted", "valid", "invalid", "pending", "participants", "benefit_vnd", "quota", "self_set")


def expected(f: Figures) -> dict[str, Any]:
    return {
        "submitted": f.submitted,
        "valid": f.valid,
        "invalid": f.invalid,
        "pending": f.submitted - f.valid - f.invalid,
        "participants": f.participants,
        "benefit_vnd": f.benefit_vnd,
        "quota": f.quota,
        "self_set": f.self_set,
        "achievement_pct": achievement_pct(f.valid, f.quota),
    }


def sum_figures(parts: list[Figures]) -> Figures:
    total = Figures()
    for f in parts:
        total.add(f)
        if f.quota is not None:
            total.quota = (total.quota or 0) + f.quota
            total.self_set = (total.self_set or 0) + (f.self_set or 0)
    return total


async def check_figures(
    gateway: int, provinces: list[Province], truths: list[dict[tuple[str, str | None], Figures]], root: str | None
) -> tuple[int, int, list[str]]:
    """Every unit's figures (whole campaign, P1, P2) through the gateway, against the ground truth: a unit and
    its children per call, for the root, each province and each district. Answers (checked, different, lines)."""
    conn = Conn(gateway, token("operator", "VN", "bench-checker"))
    checked = differ = 0
    lines: list[str] = []
    try:
        for phase in (None, "P1", "P2"):
            truth: dict[str, dict[str, Any]] = {}
            for t in truths:
                truth |= {code: expected(f) for (code, ph), f in t.items() if ph == phase}
            parents = [p.shape.code for p in provinces] + [d for p in provinces for d in p.districts]
            if root is not None:  # the root has no quota of its own: its children's sum
                truth[root] = expected(
                    sum_figures([t[(p.shape.code, phase)] for p, t in zip(provinces, truths, strict=True)])
                )
                parents.insert(0, root)
            is_parent = set(parents)
            for code in parents:
                body = await tally_figures(conn, code, provinces[0].campaign, phase)
                rows = [(body["unit"], body["figures"])] + [(c["unit"], c["figures"]) for c in body["children"]]
                for unit, figures in rows:
                    want = truth.get(unit["code"])
                    if want is None or (unit["code"] != code and unit["code"] in is_parent):
                        continue  # a child that is checked as a parent itself
                    checked += 1
                    got = {k: figures.get(k) for k in want}
                    if got != want:
                        differ += 1
                        if len(lines) < 10:
                            diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
                            lines.append(f"{unit['code']} phase {phase}: (tally, truth) {diff}")
    finally:
        conn.close()
    return checked, differ, lines


def tally_verify(system: pipeline.System) -> tuple[int, str]:
    # The system under test runs as `make run-distributed` runs it: in development (ENVIRONMENT, JWT secret).
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "DATABASE_URL": system.dsn("tally").replace("postgresql:", "postgresql+asyncpg:", 1),
    }
    out = subprocess.run(
        [str(Path(sys.executable).parent / "sangkien"), "tally", "verify"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    return out.returncode, (out.stdout[-2000:] + out.stderr[-2000:]).strip()


async def main(opts: argparse.Namespace) -> dict[str, Any]:
    import gc

    gc.disable()
    if opts.national:
        provinces = national(opts.scale)
        root: str | None = "VN"
        top = "VN"
    else:
        provinces = [Province(Shape().scaled(opts.scale))]
        root, top = None, provinces[0].shape.code
    n = sum(p.shape.submissions for p in provinces)
    n1 = sum(p.n1 for p in provinces)
    valid = sum(p.shape.valid for p in provinces)
    units = sum(len(p.units) for p in provinces) + (1 if root else 0)
    truths = [p.truth() for p in provinces]
    benefit = sum(t[(p.shape.code, None)].benefit_vnd for p, t in zip(provinces, truths, strict=True))
    report: dict[str, Any] = {
        "command": pipeline.command_line(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": pipeline.commit(),
        "load_before": pipeline.loadavg(),
        "units": units,
        "grassroots": sum(p.shape.grassroots for p in provinces),
        "members": sum(p.shape.members for p in provinces),
        "submissions": n,
        "valid": valid,
        "benefit_vnd": benefit,
    }
    log(f"replay: {units:,} units, {report['members']:,} members, {n:,} submissions ({n1:,} in P1), "
        f"{valid:,} valid, benefits {benefit:,} VND")  # fmt: skip
    today = date.today()
    services_from = opts.services_from or REPO
    report["services_from"] = str(services_from)
    async with running_system(Path(os.environ.get("TMPDIR", "/tmp")), services_from) as system:
        report["db_prefix"], report["amqp_prefix"] = system.db_prefix, system.amqp_prefix
        await load_plan(system, provinces, today, [NATIONAL_ROOT] if root else None)
        async with Depths(system) as depths, CpuMeter(system) as meter:
            await depths.wait_drained(300)
            progress = Progress(expected=n)
            switch = {"s": 0.0}

            async def entry() -> None:
                await enter_batches(system, spans(provinces, "P1"), top, opts.entry_clients, progress)
                t = time.monotonic()
                op = Conn(system.gateway, token("operator", "VN", "bench-operator"))
                await put_campaign(op, provinces[0], today, "P2")
                op.close()
                await wait_plan(system, units, provinces[0], today, "P2")
                switch["s"] = time.monotonic() - t
                log(f"P1 entered ({progress.entered:,}); the campaign moved to P2 in {switch['s']:.1f} s")
                await enter_batches(system, spans(provinces, "P2"), top, opts.entry_clients, progress)

            cpu0 = await meter.snapshot()
            t_counted = await enter_and_review(system, provinces, entry, top, opts, progress, (n, n))
            t0 = progress.first_submission
            elapsed = max(t_counted, progress.all_decided) - t0
            drain = await depths.wait_drained(opts.drain_limit_s)
            cpu1 = await meter.snapshot()
            report["replay"] = {
                "first_submission_to_last_figure_s": round(elapsed, 1),
                "of_which_moving_the_campaign_to_P2_s": round(switch["s"], 1),
                "entry_s": round(progress.entry_done - t0, 1),
                "all_decided_s": round(progress.all_decided - t0, 1),
                "initiatives_per_s": n / elapsed,
                "drained_after_s": None if drain is None else round(drain, 1),
                "refused": progress.refused,
                "decision_refusals": progress.decision_refusals,
                "claims": progress.claims,
                "empty_claims": progress.empty_claims,
                "errors": progress.errors[:20],
                "cpu_us_per_initiative": pipeline.cpu_per_item(cpu0, cpu1, n),
                "load_after": pipeline.loadavg(),
                "peak_rss_kib": pipeline.peak_memory(system),
            }
        log("checking every unit's figures against the ground truth")
        checked, differ, lines = await check_figures(system.gateway, provinces, truths, root)
        rc, verify_out = tally_verify(system)
        report["check"] = {"units_checked": checked, "different": differ, "examples": lines,
                           "tally_verify_rc": rc, "tally_verify": verify_out}  # fmt: skip
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["load_after"] = pipeline.loadavg()
    r, c = report["replay"], report["check"]
    report["ok"] = not (differ or rc or r["refused"] or r["decision_refusals"])
    print(f"\nbench/replay.py, commit {report['commit']}, {report['started']} → {report['finished']}, "
          f"load average {report['load_before']} → {report['load_after']}")  # fmt: skip
    print(f"{n:,} submissions ({valid:,} valid) in {units:,} units: {r['first_submission_to_last_figure_s']} s from "
          f"the first submission to the last figure ({r['initiatives_per_s']:,.0f} initiatives/s; entry "
          f"{r['entry_s']} s, of which {r['of_which_moving_the_campaign_to_P2_s']} s moving the campaign to P2; "
          f"all decided {r['all_decided_s']} s); all drained {r['drained_after_s']} s later")  # fmt: skip
    print(f"    refused entries {r['refused']}, refused decisions {r['decision_refusals']}, claims {r['claims']} "
          f"({r['empty_claims']} empty)")  # fmt: skip
    print("machine CPU per initiative, µs:")
    print(cpu_table(r["cpu_us_per_initiative"]))
    print("peak resident memory (VmHWM), MiB: "
          + ", ".join(f"{name} {kib / 1024:,.0f}" for name, kib in r["peak_rss_kib"].items()))  # fmt: skip
    print(f"figures of {c['units_checked']:,} (unit, phase) pairs checked against the ground truth: "
          f"{c['different']} different" + "".join(f"\n    {line}" for line in c["examples"]))  # fmt: skip
    print(f"sangkien tally verify: exit {rc}; {verify_out.splitlines()[-1] if verify_out else ''}")
    print("OK" if report["ok"] else "FAILED")
    if opts.json:
        Path(opts.json).write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str))  # noqa: ASYNC240
    return report


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--national", action="store_true", help="63 provinces and 20 sectors, 2.5 M initiatives at scale 1")
    p.add_argument("--reviewers", type=int, default=8)
    p.add_argument("--entry-clients", type=int, default=4)
    p.add_argument("--limit-s", type=float, default=6 * 3600.0, help="bound on the wait for reviewers and tally")
    p.add_argument("--drain-limit-s", type=float, default=600.0)
    p.add_argument("--json", default=None)
    p.add_argument("--services-from", default=None, help="run another checkout's services (as bench/pipeline.py)")
    options = p.parse_args()
    options.services_from = Path(options.services_from).resolve() if options.services_from else None
    sys.exit(0 if pipeline.run_main(main(options))["ok"] else 1)
