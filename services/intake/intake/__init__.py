"""Intake: every way an initiative gets in (SPEC §3, §8)."""
