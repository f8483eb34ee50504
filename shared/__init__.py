"""Plumbing shared by every Sáng kiến service: envelope, bus, outbox/inbox, db, auth, metrics, logs.

Nothing in this package knows a business rule of any service.
"""
