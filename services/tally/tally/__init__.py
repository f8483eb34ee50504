"""Tally: the plan (units, campaigns, quotas) and exact figures (SPEC §1, §2, §4)."""
