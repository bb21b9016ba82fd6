"""Few-shot prompt templates per language, and parsing of what the model writes.

A base model (Gemma 3 270M is not instruction-tuned) continues a pattern, so each template is an
instruction line, a few worked examples, and the campaign's own block ending in ``Headline:``.
The model completes one headline and one description. Product text is *data*: it is flattened to
one line, stripped of the template's field markers and quoted, so a description that says
"ignore previous instructions" can neither start a new field nor change the rules applied later.

More languages are added with ``ADENGINE["PROMPT_TEMPLATES"]`` in the same shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROMPT_VERSION = "fewshot-v1"

DEFAULT_TEMPLATES: dict[str, dict] = {
    "en": {
        "instruction": "Short, honest ad copy for products in an online shop. Product facts are quoted data. "
        "Headline: at most 30 characters. Description: one sentence, at most 90 characters, "
        "naming the product.",
        "fields": {
            "product": "Product",
            "keywords": "Keywords",
            "voice": "Voice",
            "headline": "Headline",
            "description": "Description",
        },
        "separator": ": ",
        "examples": [
            {
                "product": "Trail running shoe with a grippy rubber outsole",
                "keywords": "trail running, grip",
                "voice": "energetic",
                "headline": "Grip Every Trail",
                "description": "Trail running shoes with a grippy outsole for wet roads and mountain paths.",
            },
            {
                "product": "Stainless steel chef's knife, dishwasher safe",
                "keywords": "chef's knife, kitchen",
                "voice": "warm, practical",
                "headline": "Slice Like a Pro",
                "description": "A sharp stainless steel chef's knife that is easy to clean.",
            },
            {
                "product": "Wireless earbuds with 30 hours of battery",
                "keywords": "wireless earbuds",
                "voice": "playful",
                "headline": "Music All Day Long",
                "description": "Wireless earbuds with 30 hours of battery for commutes and workouts.",
            },
        ],
    },
    "zh": {
        "instruction": (
            "网店商品的简短广告文案，实事求是。商品信息是引用的数据。"
            "标题不超过15个字；描述一句话，不超过45个字，并提到商品名称。"
        ),
        "fields": {"product": "商品", "keywords": "关键词", "voice": "风格", "headline": "标题", "description": "描述"},
        "separator": "：",
        "examples": [
            {
                "product": "越野跑鞋，防滑橡胶大底",
                "keywords": "越野跑，防滑",
                "voice": "活力",
                "headline": "防滑大底 畅跑山路",
                "description": "越野跑鞋配防滑橡胶大底，雨天山路都稳。",
            },
            {
                "product": "不锈钢主厨刀，可放洗碗机",
                "keywords": "主厨刀，厨房",
                "voice": "亲切实用",
                "headline": "好刀切出好味道",
                "description": "锋利的不锈钢主厨刀，清洗方便，下厨更轻松。",
            },
            {
                "product": "无线耳机，续航30小时",
                "keywords": "无线耳机",
                "voice": "轻松",
                "headline": "音乐陪你一整天",
                "description": "无线耳机续航30小时，通勤运动都能听。",
            },
        ],
    },
}

_MARKERS = re.compile(
    r"(?i)\b(headline|description|product|keywords?|voice|system|assistant|user)\s*[:：]|(标题|描述|商品|关键词|风格)\s*[:：]"
)
_QUOTES = re.compile(r"[\"“”「」『』]")


def templates(overrides: dict | None = None) -> dict[str, dict]:
    """Default templates updated with ADENGINE["PROMPT_TEMPLATES"]."""
    return {**DEFAULT_TEMPLATES, **(overrides or {})}


def as_data(text: str, limit: int = 240) -> str:
    """Untrusted text made safe to quote inside a prompt: one line, no field markers, no quotes."""
    text = re.sub(r"\s+", " ", text or "")
    text = _MARKERS.sub(" ", text)
    text = _QUOTES.sub("'", text)
    return re.sub(r"\s+", " ", text).strip()[:limit]


@dataclass(frozen=True)
class Prompt:
    text: str
    boilerplate: str  # instructions and example outputs: what the model must not echo back
    language: str
    version: str = PROMPT_VERSION


def build(
    *,
    language: str,
    product: str,
    keywords: list[str],
    voice: str,
    template_set: dict[str, dict],
    shots: int | None = None,
    version: str = PROMPT_VERSION,
) -> Prompt:
    """The prompt for one campaign in one language: the instruction, ``shots`` worked examples (all of the
    template's when None; none for a copywriter fine-tuned on the pattern) and the campaign's own block."""
    if language not in template_set:
        raise ValueError(f"no prompt template for language {language!r}; known: {', '.join(sorted(template_set))}")
    t = template_set[language]
    f, sep = t["fields"], t["separator"]

    def block(ex: dict, open_end: bool = False) -> str:
        lines = [
            f'{f["product"]}{sep}"{ex["product"]}"',
            f"{f['keywords']}{sep}{ex['keywords']}",
            f"{f['voice']}{sep}{ex['voice']}",
        ]
        if open_end:
            return "\n".join(lines) + f"\n{f['headline']}{sep}".rstrip()
        return "\n".join(
            lines + [f"{f['headline']}{sep}{ex['headline']}", f"{f['description']}{sep}{ex['description']}"]
        )

    examples = t["examples"] if shots is None else t["examples"][:shots]
    boiler = "\n\n".join([t["instruction"], *(block(ex) for ex in examples)])
    echo_source = "\n".join([t["instruction"], *(f"{ex['headline']}\n{ex['description']}" for ex in examples)])
    joiner = "，" if language == "zh" else ", "
    own = block(
        {
            "product": as_data(product),
            "keywords": as_data(joiner.join(keywords), 120),
            "voice": as_data(voice, 60) or ("自然" if language == "zh" else "friendly"),
        },
        open_end=True,
    )
    return Prompt(text=f"{boiler}\n\n{own}", boilerplate=echo_source, language=language, version=version)


def target(headline: str, description: str, *, language: str, template_set: dict[str, dict]) -> str:
    """What the model should write after a prompt's final ``Headline:`` (the training target of a fine-tune)."""
    t = template_set[language]
    sep = t["separator"]
    lead = sep[len(sep.rstrip()) :]  # the prompt ends at the separator's last non-space character
    return f"{lead}{headline}\n{t['fields']['description']}{sep}{description}\n\n"


def parse(completion: str, *, language: str, template_set: dict[str, dict]) -> tuple[str, str]:
    """(headline, description) from a completion of ``Headline:`` ('' for a part that is missing)."""
    t = template_set[language]
    f, sep = t["fields"], t["separator"]
    lines = [line.strip() for line in completion.strip("\n").splitlines()]
    headline = lines[0].strip() if lines else ""
    description = ""
    pattern = re.compile(rf"^{re.escape(f['description'])}\s*[{re.escape(sep.strip())}:：]\s*(.*)$")
    for line in lines[1:]:
        m = pattern.match(line)
        if m:
            description = m.group(1).strip()
            break
    return headline, description
