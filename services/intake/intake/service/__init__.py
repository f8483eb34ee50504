"""Intake's use cases (the service layer): one function per thing a caller asks of intake.

A route parses its input and calls one of them; they apply the domain's rules, run the adapters' SQL in
one transaction and raise ``intake.domain.errors`` refusals, never HTTP errors."""
