"""Small text facts shared by the copy rules, the search log, the candidate index and the exports: the script a
text is in, the contact details (web addresses, e-mail addresses, phone numbers) that neither ad copy nor a logged
search may carry, and CSV cells a spreadsheet would run."""

from __future__ import annotations

import re

# CJK unified ideographs (with extension A) and the compatibility ideographs
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    """Whether the text has a Chinese (CJK) character."""
    return CJK.search(text) is not None


URL = re.compile(r"(https?://|www\.)\S+|\b[\w-]+\.(com|cn|net|org|io|shop|top|xyz)\b", re.I)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
PHONE = re.compile(r"(?<!\w)\+?\d[\d\s().-]{6,}\d(?!\w)")


def contact_details(text: str) -> list[str]:
    """What kinds of contact detail the text carries: 'a URL', 'an e-mail address', 'a phone number'."""
    found = []
    if URL.search(text):
        found.append("a URL")
    if EMAIL.search(text):
        found.append("an e-mail address")
    if PHONE.search(text):
        found.append("a phone number")
    return found


def without_contact_details(text: str) -> str:
    """The text with every e-mail address, web address and phone number blanked out."""
    for pattern in (EMAIL, URL, PHONE):
        text = pattern.sub(" ", text)
    return text


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet will not run: text starting like a formula gets a leading quote (OWASP)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


# what separates keywords typed in one box: commas (ASCII, full-width, the ideographic enumeration comma),
# semicolons (ASCII, full-width) and new lines
KEYWORD_SEPARATORS = re.compile(r"[,，、;；\r\n]+")


def split_keywords(text: str) -> list[str]:
    """Keywords typed in one box, split on ``, ， 、 ; ；`` and new lines: trimmed, empty ones dropped, repeats
    (case aside) kept once, in the order typed."""
    seen: dict[str, str] = {}
    for part in KEYWORD_SEPARATORS.split(text or ""):
        word = " ".join(part.split())
        if word:
            seen.setdefault(word.casefold(), word)
    return list(seen.values())
