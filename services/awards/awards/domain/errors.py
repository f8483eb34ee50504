"""What awards' use cases refuse, in five kinds (``awards.api.errors`` gives each its HTTP status)."""

from __future__ import annotations

from shared.errors import DomainError


class AwardsError(DomainError):
    pass


# ---- unknown -------------------------------------------------------------------------------------


class NotFound(AwardsError):
    code = "not_found"


class SchemeNotFound(NotFound):
    message = "Không tìm thấy hình thức khen thưởng"


class AwardNotFound(NotFound):
    message = "Không tìm thấy quyết định khen thưởng"


class SnapshotNotFound(NotFound):
    code = "snapshot_not_found"
    message = "Không tìm thấy bản chốt số liệu"


# ---- not allowed for this account ----------------------------------------------------------------


class SnapshotForbidden(AwardsError):
    """Tally refused the caller's token for the snapshot."""

    code = "forbidden"
    message = "Không có quyền đọc bản chốt số liệu"


# ---- not in this state ---------------------------------------------------------------------------


class WrongState(AwardsError):
    code = "conflict"


class NoNominations(WrongState):
    code = "no_nominations"
    message = "Chưa tính danh sách đề nghị khen thưởng cho hình thức này"


class NominationsStale(WrongState):
    code = "nominations_stale"
    message = "Hình thức khen thưởng đã thay đổi sau khi tính danh sách đề nghị; hãy tính lại"


class AlreadyRevoked(WrongState):
    code = "already_revoked"
    message = "Khen thưởng này đã bị thu hồi"


# ---- not acceptable as asked ---------------------------------------------------------------------


class Invalid(AwardsError):
    """The request names the fields at fault in ``details``."""

    code = "validation_error"
    message = "Dữ liệu không hợp lệ"


# ---- tally did not answer ------------------------------------------------------------------------


class TallyUnavailable(AwardsError):
    code = "tally_unavailable"
    message = "Không kết nối được dịch vụ tổng hợp số liệu"
