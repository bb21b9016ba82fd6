"""Advertising rules for ad copy. Pure functions: a text in, every rule's verdict and reason out.

The rule set comes from ``ADENGINE["COMPLIANCE"]`` (defaults below) and applies the same way to
generated and human-written assets. Each rule returns a :class:`Verdict`; an asset passes when
all verdicts pass, and the reasons of the failed ones are stored on it.

Beyond the advertising law, rules for quality that a small model's copy needs: every claim grounded in the
campaign's facts (``grounding``), no repetition or degenerate text, no fragments or keyword lists, the
language's own script, display width (a Chinese character counts two), and nothing that disparages the product.

Absolute terms follow Article 9(3) of the PRC Advertising Law (国家级, 最高级, 最佳 and the like,
plus the common 最/第一/顶级/极致/首选 family enforced under it) and, for English, the claims
advertising codes single out: "best in the world", "#1", "guaranteed", "cure", "risk-free".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from adengine.ml import grounding
from adengine.text import CJK, contact_details

DEFAULT_RULES: dict = {
    # display width: a Chinese (or other wide) character counts two, so 30 is 15 Chinese characters
    "MAX_LENGTH": {
        "en": {"headline": 30, "description": 90},
        "zh": {"headline": 30, "description": 90},
    },
    "MIN_LENGTH": {"headline": 3, "description": 10},
    "REQUIRE_KEYWORD_OR_PRODUCT": True,
    "ABSOLUTE_TERMS": {
        "zh": [
            "国家级",
            "世界级",
            "最高级",
            "最佳",
            "最优",
            "最好",
            "最低价",
            "最便宜",
            "最",
            "第一",
            "唯一",
            "顶级",
            "极致",
            "首选",
            "万能",
            "绝对",
            "史无前例",
            "100%",
        ],
        "en": [
            "best in the world",
            "world's best",
            "#1",
            "number one",
            "no. 1",
            "guaranteed",
            "guarantee",
            "cure",
            "cures",
            "risk-free",
            "100% effective",
            "miracle",
            "best ever",
            "lowest price ever",
            "clinically proven",
            "heals",
            "treats",
            "best",
            "cheapest",
            "lowest price",
            "100%",
            "unbeatable",
        ],
    },
    # words that run the advertised product down (a model's slip: "low-end" for a premium product)
    "NEGATIVE_TERMS": {
        "en": [
            "low-end",
            "low end",
            "cheap",
            "cheaply made",
            "low quality",
            "poor quality",
            "inferior",
            "flimsy",
            "knock-off",
            "fake",
            "worst",
            "disappointing",
        ],
        "zh": ["低端", "廉价", "劣质", "山寨", "假货", "差劲", "低档", "最差", "不好用"],
    },  # fmt: skip
    "GROUNDED_CLAIMS": True,
    # repetition: a word (en) or a two-character run (zh) this often, or the same word twice in a row
    "MAX_REPEATS": {"en": 2, "zh": 3},
    # fewest words (en) or characters (zh) of a real sentence; a shorter description is a fragment
    "MIN_WORDS": {"en": {"headline": 2, "description": 5}, "zh": {"headline": 4, "description": 8}},
    # share of a zh asset's letters that must be Chinese (brand names in Latin letters are fine)
    "MIN_SCRIPT_SHARE": 0.6,
    "BLOCKLIST": ["free money", "click here", "viagra", "casino", "赌博", "免费领取"],
    # a near-duplicate of another asset: the encoder finds them this similar AND they share this much wording
    # (e5's cosine between two distinct texts about one product is often 0.93-0.97: it alone cannot tell)
    "NEAR_DUPLICATE_COSINE": 0.93,
    "NEAR_DUPLICATE_OVERLAP": 0.5,
    "PROMPT_ECHO_MIN_CHARS": 32,
}

_HTML = re.compile(r"<[^>]+>|&[a-z]+;|&#\d+;", re.I)


@dataclass(frozen=True)
class Verdict:
    rule: str
    passed: bool
    reason: str = ""


def rules(overrides: dict | None = None) -> dict:
    """The active rule set: defaults updated with ``overrides`` (one level deep)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_RULES.items()}
    for key, value in (overrides or {}).items():
        if key not in DEFAULT_RULES:
            raise ValueError(f"unknown compliance rule {key!r}; known: {', '.join(DEFAULT_RULES)}")
        out[key] = {**out[key], **value} if isinstance(out[key], dict) and isinstance(value, dict) else value
    return out


def normalise(text: str) -> str:
    """NFC, whitespace collapsed, trimmed, surrounding quotes removed (Chinese full-width punctuation kept)."""
    text = unicodedata.normalize("NFC", text or "")
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip("\"'“”‘’「」 ").strip()


def display_length(text: str) -> int:
    """Display width as counted for length limits: a wide (Chinese, full-width) character counts two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _contains_term(text: str, term: str, language: str) -> bool:
    if language == "zh" or CJK.search(term) or not term[:1].isalnum():
        return term.lower() in text.lower()
    plural = "(?:e?s)?" if term[-1:].isalpha() else ""  # "power bank" is in "power banks"
    return re.search(rf"(?<![\w]){re.escape(term)}{plural}(?![\w])", text, re.I) is not None


def check(
    text: str,
    *,
    asset_type: str,
    language: str,
    keywords: Iterable[str],
    product_names: Iterable[str],
    prompt: str = "",
    rule_set: dict | None = None,
    facts: grounding.Facts | None = None,
    generated: bool = False,
) -> list[Verdict]:
    """Every rule's verdict on one asset text; with the campaign's ``facts``, also whether every claim is grounded
    in them (prices and discounts never are in ``generated`` copy)."""
    r = rule_set or rules()
    keywords, product_names = list(keywords), list(product_names)
    shown = text
    text = unicodedata.normalize("NFKC", text)  # matching sees through full-width look-alikes (ｗｗｗ, ＃１)
    out: list[Verdict] = []
    limits = r["MAX_LENGTH"].get(language) or r["MAX_LENGTH"]["en"]
    limit = limits[asset_type]
    n = display_length(shown)
    out.append(
        Verdict(
            "max_length",
            n <= limit,
            f"{n} wide, the limit for a {language} {asset_type} is {limit} (a Chinese character counts 2)"
            if n > limit
            else "",
        )
    )
    minimum = r["MIN_LENGTH"][asset_type]
    out.append(Verdict("min_length", n >= minimum, f"only {n} characters" if n < minimum else ""))
    if language == "zh":
        # Chinese characters against Latin words (a brand name or a URL is one word, not seven letters)
        han = len(CJK.findall(text))
        latin = len(re.findall(r"[A-Za-z]+", text))
        share = han / (han + latin) if han + latin else 0.0
        ok = share >= float(r["MIN_SCRIPT_SHARE"])
        out.append(Verdict("language", ok, "" if ok else f"only {share:.0%} of the words are Chinese in a zh asset"))
    else:
        ok = CJK.search(text) is None and re.search(r"[A-Za-z]", text) is not None
        out.append(Verdict("language", ok, "" if ok else f"not {language} text"))
    if r["REQUIRE_KEYWORD_OR_PRODUCT"] and asset_type == "description":
        terms = [t for t in list(keywords) + list(product_names) if t and t.strip()]
        found = [t for t in terms if _contains_term(text, t.strip(), language)]
        out.append(
            Verdict(
                "keyword",
                bool(found) or not terms,
                "" if found or not terms else "mentions no campaign keyword or product name",
            )
        )
    absolute = [
        t
        for t in r["ABSOLUTE_TERMS"].get(language, []) + (r["ABSOLUTE_TERMS"].get("en", []) if language != "en" else [])
        if _contains_term(text, t, language)
    ]
    out.append(
        Verdict(
            "absolute_claims", not absolute, f"absolute or superlative claim: {', '.join(absolute)}" if absolute else ""
        )
    )
    negative = [t for t in r["NEGATIVE_TERMS"].get(language, []) if _contains_term(text, t, language)]
    out.append(
        Verdict("disparaging", not negative, f"runs the product down: {', '.join(negative)}" if negative else "")
    )
    out.append(_repetition(text, language, int(r["MAX_REPEATS"].get(language, 2)), given=keywords + product_names))
    if next(v for v in out if v.rule == "language").passed:  # (wrong-language text is not judged as a sentence)
        minimum = r["MIN_WORDS"].get(language, r["MIN_WORDS"]["en"])
        # generated copy that only restates the keywords it was given is no ad (a person may write a headline
        # that is their keyword on purpose)
        out.append(_fragment(text, language, asset_type, minimum, keywords if generated else ()))
    if facts is not None and r["GROUNDED_CLAIMS"]:
        found = grounding.claims(text, language, facts, generated=generated)
        bad = grounding.unsupported(found)
        evidence = "; ".join(f"{c.text} ({c.evidence})" for c in found if c.supported)
        if bad:
            reason = "unsupported claim: " + ", ".join(
                f"{c.text} (prices and discounts come from the shop, not the copy)"
                if c.kind == "price" and generated
                else f"{c.text} (another brand)"
                if c.kind == "brand"
                else c.text
                for c in bad
            )
        else:
            reason = f"grounded: {evidence}" if evidence else ""
        out.append(Verdict("grounded", not bad, reason))
    contact = contact_details(text)
    out.append(Verdict("contact_details", not contact, f"contains {', '.join(contact)}" if contact else ""))
    out.append(Verdict("html", not _HTML.search(text), "contains HTML" if _HTML.search(text) else ""))
    blocked = [w for w in r["BLOCKLIST"] if w.lower() in text.lower()]
    out.append(Verdict("blocklist", not blocked, f"blocked word: {', '.join(blocked)}" if blocked else ""))
    echo = _echoes(text, prompt, r["PROMPT_ECHO_MIN_CHARS"])
    out.append(Verdict("prompt_echo", not echo, f"repeats the prompt: {echo!r}" if echo else ""))
    return out


_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)


_ALNUM = re.compile(r"[^\W_]+", re.UNICODE)


def _key(text: str, language: str) -> str:
    """A clause or keyword as compared, casefolded: its characters and digits (zh: no spaces), else its words and
    numbers ("pack of 6" is not "pack of 12"; "Kestrel跑鞋" is more than 跑鞋)."""
    tokens = _ALNUM.findall(text.casefold())
    return "".join(tokens) if language == "zh" else " ".join(tokens)


_STOP = {"a", "an", "the", "and", "or", "for", "of", "to", "in", "on", "with", "your", "you", "at", "by", "from",
         "is", "are", "it", "its", "every", "all"}  # fmt: skip


_CLAUSE = re.compile(r"[,，、;；:：.。!！?？…]+")


def _repeated_clause(text: str, language: str) -> str:
    """A clause said twice ("Cat food for cats, cat food for cats.", 猫粮，猫粮): the model looping."""
    seen: set[str] = set()
    for clause in _CLAUSE.split(text.casefold()):
        key = _key(clause, language)
        if len(key) < 2:
            continue
        if key in seen:
            return clause.strip()
        seen.add(key)
    return ""


def _repetition(text: str, language: str, max_repeats: int, given: Iterable[str] = ()) -> Verdict:
    """Repeated words (en: a word more than ``max_repeats`` times, or twice in a row, unless the ``given`` names
    and keywords say it so: "Barista Pro pro espresso machine"), repeated two-character runs (zh: degenerate text
    such as 绿油白绿油绿), or a clause said twice (a model looping)."""
    again = _repeated_clause(text, language)
    if again:
        return Verdict("repetition", False, f"says {again!r} twice")
    if language == "zh":
        han = "".join(ch for ch in text if CJK.match(ch))
        pairs = [han[i : i + 2] for i in range(len(han) - 1)]
        for p in dict.fromkeys(pairs):
            if p[0] != p[1] and pairs.count(p) > max_repeats:
                return Verdict("repetition", False, f"repeats {p!r} {pairs.count(p)} times")
        # one character all over the text (a doubled character, 稳稳, counts once: it is how Chinese stresses)
        spread = [ch for i, ch in enumerate(han) if i == 0 or han[i - 1] != ch]
        if len(han) >= 6:
            top = max(set(spread), key=spread.count)
            if spread.count(top) > max(2, len(han) / 4):
                return Verdict("repetition", False, f"repeats {top!r} {spread.count(top)} times")
        return Verdict("repetition", True)
    words = [w.lower() for w in _WORD.findall(text)]
    named = {w for name in given for w, nxt in _pairs(name) if w == nxt}
    for a, b in zip(words, words[1:], strict=False):
        if a == b and a not in named:
            return Verdict("repetition", False, f"{a!r} twice in a row")
    content = [w for w in words if w not in _STOP]
    for w in set(content):
        if content.count(w) > max_repeats:
            return Verdict("repetition", False, f"repeats {w!r} {content.count(w)} times")
    return Verdict("repetition", True)


def _pairs(text: str) -> list[tuple[str, str]]:
    words = [w.lower() for w in _WORD.findall(text)]
    return list(zip(words, words[1:], strict=False))


def _fragment(text: str, language: str, asset_type: str, minimum: dict, keywords: Iterable[str] = ()) -> Verdict:
    """Too few words for copy (a lone word, a price), a bare list of keywords, or nothing but the campaign's own
    keywords ("Moisturising cream, moisturiser." for a campaign with those keywords)."""
    need = int(minimum.get(asset_type, 1))
    own = {_key(k, language) for k in keywords} - {""}
    clauses = [_key(c, language) for c in _CLAUSE.split(text)]
    clauses = [c for c in clauses if c]
    if own and clauses and all(c in own for c in clauses):
        return Verdict("fragment", False, "only the campaign's keywords, not a sentence")
    if language == "zh":  # a Latin word (a brand, a model) reads as about two characters
        size = len(CJK.findall(text)) + 2 * len(re.findall(r"[A-Za-z]+", text))
        unit = "characters"
    else:
        size = len(_WORD.findall(text))
        unit = "words"
    if size < need:
        return Verdict("fragment", False, f"a fragment: {size} {unit}, copy needs at least {need}")
    if language == "zh":  # 、 lists, or four or more short bare terms
        parts = [p.strip() for p in re.split(r"[,，、;；/|\s]", text.rstrip("。.！!")) if p.strip()]
        listed = "、" in text and len(parts) >= 3 or len(parts) >= 4 and all(len(p) <= 4 for p in parts)
    else:
        parts = [p.strip() for p in re.split(r"[,;/|]", text.rstrip(".!")) if p.strip()]
        listed = len(parts) >= 3 and all(len(_WORD.findall(p)) <= 2 for p in parts)
    if listed:
        return Verdict("fragment", False, f"a list of keywords ({len(parts)} items), not a sentence")
    return Verdict("fragment", True)


_FIELD_MARKER = re.compile(
    r"(?i)\b(headline|description|product|keywords?|voice)\s*[:：]|(标题|描述|商品|关键词|风格)\s*[:：]"
)


def _echoes(text: str, prompt: str, min_chars: int) -> str:
    """What the text repeats of the prompt's own text: a field marker, or a long stretch of its instructions
    or worked examples (product facts are fine to repeat; the prompt given here holds no product data)."""
    marker = _FIELD_MARKER.search(text)
    if marker:
        return marker.group(0)
    if not prompt or len(text) < min_chars:
        return ""
    low_prompt = prompt.lower()
    low = text.lower()
    for i in range(0, len(low) - min_chars + 1):
        if low[i : i + min_chars] in low_prompt:
            return text[i : i + min_chars]
    return ""


FLUENCY_MIN_SAMPLES = 4  # completions needed to tell an outlier from the model's usual likelihood


def fluency(logprobs: list[float | None]) -> list[Verdict | None]:
    """Each completion's fluency against the others of its request, from the model's own per-token likelihood.

    Sampled text is, by construction, text the model finds likely; a completion far less likely than its
    siblings (below the median by more than three robust standard deviations, 1.4826 x the median absolute
    deviation) has wandered into the sampler's tail: gibberish such as "黑曜石 绿油白绿油绿". The bar comes from
    each request's own completions, so it suits any model and language. None where it cannot be measured (a
    backend that returns no likelihoods, or fewer than ``FLUENCY_MIN_SAMPLES`` completions)."""
    known = [x for x in logprobs if x is not None]
    if len(known) < FLUENCY_MIN_SAMPLES:
        return [None] * len(logprobs)
    ordered = sorted(known)
    median = ordered[len(ordered) // 2] if len(ordered) % 2 else sum(ordered[len(ordered) // 2 - 1 :][:2]) / 2
    deviations = sorted(abs(x - median) for x in known)
    mad = deviations[len(deviations) // 2]
    bar = median - 3 * 1.4826 * max(mad, 0.05)
    out: list[Verdict | None] = []
    for x in logprobs:
        if x is None:
            out.append(None)
        elif x < bar:
            out.append(
                Verdict(
                    "fluency",
                    False,
                    f"the model itself found this text unlikely: {x:.2f} nats per token, its other variants "
                    f"{median:.2f} (bar {bar:.2f})",
                )
            )
        else:
            out.append(Verdict("fluency", True))
    return out


def _units(text: str) -> list[str]:
    """Words (lower case) of a text, and each Chinese character as a word of its own."""
    return [u for u in re.findall(r"[\u4e00-\u9fff]|[^\W_]+", unicodedata.normalize("NFKC", text).lower())]


def overlap(a: str, b: str) -> float:
    """How much wording two texts share: Jaccard similarity of their words and word pairs (characters and
    character pairs in Chinese). 1.0 for the same words in the same order, 0.0 for nothing in common."""
    ua, ub = _units(a), _units(b)
    ga = set(ua) | {f"{x} {y}" for x, y in zip(ua, ua[1:], strict=False)}
    gb = set(ub) | {f"{x} {y}" for x, y in zip(ub, ub[1:], strict=False)}
    return len(ga & gb) / len(ga | gb) if ga | gb else 1.0


def passed(verdicts: list[Verdict]) -> bool:
    return all(v.passed for v in verdicts)


def reasons(verdicts: list[Verdict]) -> list[str]:
    return [f"{v.rule}: {v.reason}" for v in verdicts if not v.passed]


def as_json(verdicts: list[Verdict]) -> list[dict]:
    return [asdict(v) for v in verdicts]


@dataclass(frozen=True)
class Evidence:
    """One claim of a checked text and the fact that supports it (``source`` "" when nothing does)."""

    claim: str
    source: str = ""  # e.g. "product description"
    fact: str = ""  # the start of that fact's text
    note: str = ""  # why an unsupported claim is one, when it is not simply unstated ("another brand")

    @property
    def supported(self) -> bool:
        return bool(self.source)


# the two shapes of the "grounded" rule's reason written by ``check`` above: "grounded: claim (source: fact); ..."
# and "unsupported claim: claim (note), claim"; a claim never holds "(" or ";" (it is a number, a price, a term)
# but a price may end in the copy's own comma ("¥1,299,")
_SUPPORTED = re.compile(r"(?P<claim>[^(;]+?) \((?P<source>[^:()]+): (?P<fact>.*?)\)(?=; [^(;]+? \([^:()]+: |$)")
_UNSUPPORTED = re.compile(r"(?P<claim>[^(]+?)(?: \((?P<note>[^()]*)\))?(?=, (?!\()|$)")


def evidence(rule_results: list[dict]) -> list[Evidence]:
    """The claims of a stored ``rule_results`` list with their grounding, read from the "grounded" rule's reason."""
    result = next((r for r in rule_results if r.get("rule") == "grounded"), None)
    reason = (result or {}).get("reason") or ""
    if reason.startswith("grounded: "):
        found = _SUPPORTED.finditer(reason.removeprefix("grounded: "))
        return [Evidence(_claim(m["claim"]), m["source"].strip(), m["fact"]) for m in found]
    if reason.startswith("unsupported claim: "):
        found = _UNSUPPORTED.finditer(reason.removeprefix("unsupported claim: "))
        return [Evidence(_claim(m["claim"].removeprefix(", ")), note=m["note"] or "") for m in found]
    return []


def _claim(text: str) -> str:
    return text.strip().rstrip(",;").strip()
