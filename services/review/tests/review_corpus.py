"""Realistic Vietnamese initiative texts from word lists, and the alterations a copier makes."""

from __future__ import annotations

import random
import unicodedata

SUBJECTS = [
    "tổ sản xuất",
    "phân xưởng cơ khí",
    "bộ phận kho vận",
    "phòng kỹ thuật",
    "tổ bảo trì",
    "ca vận hành",
    "đội xe",
    "phòng kế toán",
    "xưởng may",
    "bếp ăn tập thể",
    "trạm y tế",
    "tổ điện",
    "dây chuyền đóng gói",
    "phòng hành chính",
    "nhà máy nước",
    "tổ kiểm tra chất lượng",
    "trường mầm non",
    "bệnh viện huyện",
]
ACTIONS = [
    "cải tiến",
    "thiết kế lại",
    "tự chế tạo",
    "lắp đặt",
    "số hoá",
    "chuẩn hoá",
    "tối ưu",
    "thay thế",
    "ứng dụng",
    "sắp xếp lại",
    "tự động hoá",
    "gia cố",
    "nâng cấp",
    "xây dựng",
    "rút gọn",
]
OBJECTS = [
    "khuôn định vị",
    "băng tải",
    "quy trình nhập kho",
    "hệ thống chiếu sáng",
    "máy nén khí",
    "sổ theo dõi ca",
    "bộ gá hàn",
    "phần mềm chấm công",
    "hệ thống bơm nước",
    "tủ điện điều khiển",
    "quy trình khử khuẩn",
    "biểu mẫu báo cáo",
    "xe nâng hàng",
    "lò hơi",
    "máy cắt vải",
    "hệ thống camera",
    "mạng nội bộ",
    "quy trình tiếp nhận bệnh nhân",
    "bảng phân công",
    "đường ống dẫn dầu",
    "cảm biến nhiệt độ",
]
RESULTS = [
    "giảm thời gian chờ",
    "tiết kiệm điện năng",
    "giảm phế phẩm",
    "tăng năng suất lao động",
    "bảo đảm an toàn cho người lao động",
    "giảm chi phí bảo dưỡng",
    "rút ngắn thời gian xử lý hồ sơ",
    "hạn chế lây nhiễm chéo",
    "giảm tiếng ồn",
    "tiết kiệm vật tư",
    "nâng cao chất lượng sản phẩm",
    "giảm sai sót khi ghi chép",
    "tăng tuổi thọ thiết bị",
    "giảm lượng nước thải",
]
DETAILS = [
    "trong mùa dịch",
    "ở ca đêm",
    "tại kho số hai",
    "cho công nhân mới",
    "khi mất điện",
    "theo tiêu chuẩn ISO",
    "bằng vật liệu tận dụng",
    "với chi phí thấp",
    "trên toàn công ty",
    "trong ba tháng thử nghiệm",
    "bằng mã QR",
    "qua điện thoại thông minh",
    "với sự hỗ trợ của công đoàn",
    "tại phân xưởng lắp ráp",
]
FILLER = [
    "hằng ngày",
    "thường xuyên",
    "một cách hiệu quả",
    "đáng kể",
    "rõ rệt",
    "so với trước đây",
    "khoảng",
    "gần",
    "hơn",
    "mỗi tháng",
    "mỗi năm",
    "nhiều lần",
    "ổn định",
    "an toàn",
    "dễ dàng",
    "nhanh chóng",
    "phần trăm",
    "giờ",
    "triệu đồng",
    "lít",
    "kilôgam",
    "người",
    "ca",
    "ngày",
]
REPLACEMENTS = [*FILLER, "cơ bản", "hoàn toàn", "nhìn chung", "thực tế", "bước đầu", "cụ thể", "tương đối"]


def _sentence(rng: random.Random) -> str:
    n = rng.randint(5, 95)
    return (
        f"{rng.choice(SUBJECTS).capitalize()} đã {rng.choice(ACTIONS)} {rng.choice(OBJECTS)} "
        f"{rng.choice(DETAILS)}, giúp {rng.choice(RESULTS)} {rng.choice(FILLER)} {n} {rng.choice(FILLER)}."
    )


def initiative(rng: random.Random) -> tuple[str, str]:
    """A (title, solution) pair: a title and four to seven sentences."""
    title = f"{rng.choice(ACTIONS).capitalize()} {rng.choice(OBJECTS)} {rng.choice(DETAILS)}"
    solution = " ".join(_sentence(rng) for _ in range(rng.randint(4, 7)))
    return title, solution


def strip_diacritics(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize(
        "NFC", "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    )


def altered(rng: random.Random, title: str, solution: str) -> tuple[str, str]:
    """A copy: diacritics removed, sentences reordered, about 10% of the words changed, punctuation changed."""
    sentences = [s for s in solution.split(". ") if s]
    rng.shuffle(sentences)
    words = " ; ".join(sentences).split()
    for i in range(len(words)):
        if rng.random() < 0.10:
            words[i] = rng.choice(REPLACEMENTS)
    return strip_diacritics(title).upper(), strip_diacritics(" ".join(words))
