"""Rule-based safety pass: disclaimers and a safe reply for self-harm; whole words only."""

from __future__ import annotations

import re

CRISIS_REPLY = (
    "I'm really sorry you're going through this. You deserve support right now, and this chat can't "
    "give it. Please reach out to someone who can: in the US call or text 988 (Suicide & Crisis Lifeline), "
    "in the UK and Ireland call Samaritans at 116 123, or find a local line at https://findahelpline.com. "
    "If you are in immediate danger, call your local emergency number. Talking to someone you trust "
    "today matters too."
)

RULES: dict[str, tuple[re.Pattern, str]] = {
    "medical": (
        re.compile(
            r"\b(doctor|diagnos\w*|symptoms?|medication|medicine|prescription|dose|dosage|disease|illness|"
            r"diabetes|cancer|blood pressure|pregnan\w*|injur(y|ies|ed)|pain|chest pain|surgery|therapy)\b",
            re.I,
        ),
        "This is general wisdom from Herman's teachings, not medical advice. For a health problem, "
        "please see a doctor or qualified professional.",
    ),
    "financial": (
        re.compile(
            r"\b(invest\w*|stocks?|shares|crypto\w*|bitcoin|retirement|pension|mortgage|loans?|debt|tax(es)?|"
            r"portfolio|interest rates?)\b",
            re.I,
        ),
        "This is general wisdom from Herman's teachings, not financial advice; for decisions about your "
        "money, talk to a licensed advisor.",
    ),
    "legal": (
        re.compile(
            r"\b(lawyer|attorney|lawsuit|sue|suing|court|contract|divorce|custody|legal(ly)?|illegal|lease)\b",
            re.I,
        ),
        "This is not legal advice; for your situation, consult a qualified lawyer.",
    ),
}

CRISIS = re.compile(
    r"\b(suicid\w*|kill (myself|me)|end (my|it all)|ending my life|want to die|wanna die|self[- ]harm|"
    r"hurt(ing)? myself|cut(ting)? myself|no reason to live|better off dead)\b",
    re.I,
)


def is_crisis(text: str) -> bool:
    return bool(CRISIS.search(text or ""))


def disclaimers(question: str, answer: str) -> list[tuple[str, str]]:
    """(rule name, disclaimer) for each rule the question or answer triggers, in a fixed order."""
    text = f"{question}\n{answer}"
    return [(name, note) for name, (pattern, note) in RULES.items() if pattern.search(text)]
