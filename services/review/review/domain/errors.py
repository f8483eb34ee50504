"""What review's use cases refuse, in four kinds (``review.api.errors`` gives each its HTTP status)."""

from __future__ import annotations

from shared.errors import DomainError


class ReviewError(DomainError):
    pass


# ---- unknown -------------------------------------------------------------------------------------


class NotFound(ReviewError):
    code = "not_found"
    message = "Không tìm thấy sáng kiến trong hàng chờ xét duyệt"


# ---- not allowed for this account ----------------------------------------------------------------


class NotAllowed(ReviewError):
    code = "forbidden"
    message = "Không có quyền thực hiện thao tác này"


class NoUnit(NotAllowed):
    message = "Tài khoản chưa gắn với đơn vị nào"


class OutOfScope(NotAllowed):
    code = "out_of_scope"
    message = "Sáng kiến nằm ngoài phạm vi đơn vị của tài khoản"


class ConflictOfInterest(NotAllowed):
    """SPEC §6: nobody reviews or appraises an initiative they authored."""

    code = "conflict_of_interest"
    message = "Không được xét duyệt sáng kiến của chính mình"


# ---- not in this state ---------------------------------------------------------------------------


class WrongState(ReviewError):
    code = "conflict"


class Withdrawn(WrongState):
    code = "withdrawn"
    message = "Sáng kiến đã được rút"


class AlreadyDecided(WrongState):
    code = "already_decided"
    message = "Sáng kiến đã có quyết định; chỉ điều hành viên được quyết định lại"


class NotLeaseHolder(WrongState):
    code = "not_lease_holder"
    message = "Chỉ người đang giữ lượt xét duyệt mới được quyết định"


class DuplicateInBatch(WrongState):
    code = "duplicate_in_batch"
    message = "Sáng kiến xuất hiện hai lần trong lô"


class NotValid(WrongState):
    code = "not_valid"
    message = "Chỉ thẩm định sáng kiến đã được công nhận hợp lệ"


class AlreadyAppraised(WrongState):
    code = "already_appraised"
    message = "Mỗi người chỉ thẩm định một sáng kiến một lần"


# ---- not acceptable as asked ---------------------------------------------------------------------


class Invalid(ReviewError):
    """The request names the fields at fault in ``details``."""

    code = "validation_error"
    message = "Dữ liệu không hợp lệ"
