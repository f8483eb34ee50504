"""The routing table of docs/events.md and the gateway's coarse access policy (SPEC §6).

Services check scope themselves; the gateway rejects early what no role could do, so a forged
or role-less request never reaches a service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.auth import Principal

SERVICES = ("intake", "review", "tally", "awards")

_PREFIXES: tuple[tuple[str, str], ...] = (
    ("/api/v1/units", "tally"),
    ("/api/v1/campaigns", "tally"),
    ("/api/v1/tally/", "tally"),
    ("/api/v1/initiatives", "intake"),
    ("/api/v1/imports", "intake"),
    ("/api/v1/review/", "review"),
    ("/api/v1/awards", "awards"),
)
_OPS = re.compile(r"^/api/v1/ops/(intake|review|tally|awards)/")


def route_for(path: str) -> str | None:
    """The downstream service of a public path, or None when no service owns it."""
    match = _OPS.match(path)
    if match:
        return match.group(1)
    for prefix, service in _PREFIXES:
        if path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
            return service
        if prefix.endswith("/") and path == prefix[:-1]:
            return service
    return None


# Readable without a token (SPEC §6): rankings, milestones, awards (the list, one award, the schemes they were
# given under and their exports; the awards service serves them all without a token) and health.
_PUBLIC: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("GET", re.compile(r"^/api/v1/tally/rankings$")),
    ("GET", re.compile(r"^/api/v1/tally/milestones$")),
    ("GET", re.compile(r"^/api/v1/awards(/[^/]+|/schemes/[^/]+(/export)?|/schemes)?$")),
)


def is_public(method: str, path: str) -> bool:
    return any(m == method and p.match(path) for m, p in _PUBLIC)


@dataclass(frozen=True, slots=True)
class Rule:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    roles: frozenset[str]


def _rule(methods: str, pattern: str, roles: str) -> Rule:
    return Rule(frozenset(methods.split()), re.compile(pattern), frozenset(roles.split()))


# First match wins. Paths not listed are open to any signed-in role; the service checks scope.
_RULES: tuple[Rule, ...] = (
    _rule("PUT POST PATCH DELETE", r"^/api/v1/ops/", "operator"),
    _rule("GET", r"^/api/v1/ops/", "operator"),
    _rule("PUT POST", r"^/api/v1/units(/import)?$", "operator"),
    _rule("PUT", r"^/api/v1/campaigns/[^/]+/quotas$", "operator unit_admin"),
    _rule("PUT POST PATCH DELETE", r"^/api/v1/campaigns", "operator"),
    _rule("POST", r"^/api/v1/tally/snapshots$", "operator"),
    _rule("POST", r"^/api/v1/initiatives(/batch)?$", "member support operator"),
    _rule("POST", r"^/api/v1/imports$", "support operator"),
    _rule("POST", r"^/api/v1/review/items/[^/]+/appraisals$", "appraiser operator"),
    _rule("POST", r"^/api/v1/review/", "reviewer operator"),
    _rule("GET", r"^/api/v1/review/", "reviewer appraiser operator support unit_admin member"),
    _rule("PUT POST PATCH DELETE", r"^/api/v1/awards", "operator"),
)


def allowed(principal: Principal, method: str, path: str) -> bool:
    for rule in _RULES:
        if method in rule.methods and rule.pattern.match(path):
            return bool(principal.roles & rule.roles)
    return bool(principal.roles)
