"""Text a request may carry into the database.

PostgreSQL's ``text`` and ``jsonb`` cannot hold NUL: a value with one fails in the driver, a 500 where the
caller deserves a 422 (issue 14). Free-text fields of the request models take ``pattern=NO_NUL``; the check
runs in pydantic-core's regex engine, not in Python.
"""

NO_NUL = r"^[^\x00]*$"
