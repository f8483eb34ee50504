"""Text a request may carry into the database, and the folded form that searches compare.

PostgreSQL's ``text`` and ``jsonb`` cannot hold NUL: a value with one fails in the driver, a 500 where the
caller deserves a 422 (issue 14). Free-text fields of the request models take ``pattern=NO_NUL``; the check
runs in pydantic-core's regex engine, not in Python.
"""

import re
import unicodedata

NO_NUL = r"^[^\x00]*$"

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower case without diacritics (``Đ`` and ``đ`` become ``d``), every run of other characters one space.

    "LĐLĐ tỉnh Thanh Hóa" and "ldld tinh thanh hoa" fold alike, so a search typed without accents finds
    the name; ``%`` and ``_`` fold to spaces, so a folded needle never holds a LIKE wildcard."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "d"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_WORD.sub(" ", bare.lower()).strip()
