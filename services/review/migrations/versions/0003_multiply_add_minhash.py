"""stored MinHash signatures recomputed with the multiply-add hash family

The near-duplicate index hashes shingles with ``a·x + b mod 2**64`` (``a`` odd) instead of
``a·x + b mod (2**32 + 15)``: no division, a quarter of the CPU (review.domain.similarity). Every stored
``review_signature.signature`` is recomputed from its stored ``shingles``, 5,000 rows a statement; the
downgrade recomputes the old ones. Both families are written out here, as they were at this revision, so the
migration does not change when the service's code does.

Every review replica must run the new code once this has run: an old replica would keep writing signatures
of the old family (docs/operations.md, "Upgrading review to migration 0003").

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Callable, Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NUM_PERM = 64
CHUNK = 5000
_signatures = sa.table(
    "review_signature",
    sa.column("id", sa.BigInteger),
    sa.column("shingles", sa.LargeBinary),
    sa.column("signature", sa.LargeBinary),
)


_rng = np.random.RandomState(20210108)
_FIRST = _rng.randint(1, 2**62, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
_SECOND = _rng.randint(0, 2**62, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
_old = np.random.RandomState(20210108)
_OLD_A = _old.randint(1, 2**31 - 1, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
_OLD_B = _old.randint(0, 2**31 - 1, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
_MUL = (_FIRST << np.uint64(1)) | np.uint64(1)
_ADD = _SECOND << np.uint64(2)
_PRIME = np.uint64(4294967311)


def multiply_add(shingles: np.ndarray) -> np.ndarray:
    """The signature as review.domain.similarity computes it from this revision on."""
    if shingles.size == 0:
        return np.full(NUM_PERM, np.iinfo(np.uint64).max, dtype=np.uint64)
    values = np.multiply.outer(_MUL, shingles.astype(np.uint64))
    values += _ADD[:, None]
    return values.min(axis=1)


def modulo_prime(shingles: np.ndarray) -> np.ndarray:
    """The signature as it was computed before this revision."""
    if shingles.size == 0:
        return np.full(NUM_PERM, int(_PRIME), dtype=np.uint64)
    return ((np.outer(_OLD_A, shingles.astype(np.uint64)) + _OLD_B[:, None]) % _PRIME).min(axis=1)


def _recompute(family: Callable[[np.ndarray], np.ndarray]) -> None:
    bind = op.get_bind()
    last = 0
    update = (
        sa.update(_signatures)
        .where(_signatures.c.id == sa.bindparam("row_id"))
        .values(signature=sa.bindparam("new_signature"))
    )
    while True:
        rows = bind.execute(
            sa.select(_signatures.c.id, _signatures.c.shingles)
            .where(_signatures.c.id > last)
            .order_by(_signatures.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        changes = [
            {"row_id": r.id, "new_signature": family(np.frombuffer(r.shingles, dtype=np.uint32)).tobytes()}
            for r in rows
        ]
        bind.execute(update, changes)
        last = rows[-1].id


def upgrade() -> None:
    _recompute(multiply_add)


def downgrade() -> None:
    _recompute(modulo_prime)
