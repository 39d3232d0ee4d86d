"""The namespace registry: seeded defaults and lookups shared by router, ingestion and API."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..models import Namespace

NAME_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"

# Seeded by the first migration; keywords let the router pick namespaces without an LLM call.
DEFAULT_NAMESPACES: list[dict] = [
    {
        "name": "general",
        "description": "Life philosophy, habits, learning and anything that spans topics.",
        "keywords": [
            "life",
            "habit",
            "habits",
            "purpose",
            "learning",
            "discipline",
            "advice",
            "mindset",
            "happiness",
            "motivation",
            "goals",
            "routine",
            "wisdom",
            "change",
        ],
    },
    {
        "name": "relationships",
        "description": "Partners, marriage, family, friends and communication.",
        "keywords": [
            "relationship",
            "wife",
            "husband",
            "partner",
            "marriage",
            "married",
            "dating",
            "family",
            "kids",
            "children",
            "parents",
            "friend",
            "friends",
            "argue",
            "argument",
            "fight",
            "love",
            "divorce",
            "communication",
            "spouse",
            "boyfriend",
            "girlfriend",
            "son",
            "daughter",
        ],
    },
    {
        "name": "money",
        "description": "Saving, spending, debt, budgeting and investing.",
        "keywords": [
            "money",
            "save",
            "saving",
            "savings",
            "debt",
            "budget",
            "spend",
            "spending",
            "invest",
            "investing",
            "retirement",
            "credit",
            "card",
            "loan",
            "mortgage",
            "salary",
            "income",
            "wealth",
            "rich",
            "broke",
            "paycheck",
            "emergency",
            "fund",
        ],
    },
    {
        "name": "business",
        "description": "Starting and running a small business, customers, pricing, staff.",
        "keywords": [
            "business",
            "customer",
            "customers",
            "client",
            "clients",
            "pricing",
            "price",
            "prices",
            "employee",
            "employees",
            "staff",
            "hire",
            "hiring",
            "startup",
            "shop",
            "sales",
            "marketing",
            "profit",
            "boss",
            "entrepreneur",
            "company",
            "partner",
            "cash",
            "negotiate",
        ],
    },
    {
        "name": "feng_shui",
        "description": "Arranging the home and workspace: layout, light, clutter, energy.",
        "keywords": [
            "feng",
            "shui",
            "home",
            "house",
            "room",
            "bedroom",
            "desk",
            "door",
            "entrance",
            "clutter",
            "furniture",
            "bed",
            "mirror",
            "plants",
            "layout",
            "apartment",
            "kitchen",
            "chi",
            "qi",
            "decorate",
            "office",
            "window",
        ],
    },
    {
        "name": "diet_food",
        "description": "Simple eating, cooking, meals, fasting and nutrition habits.",
        "keywords": [
            "diet",
            "food",
            "eat",
            "eating",
            "meal",
            "meals",
            "breakfast",
            "lunch",
            "dinner",
            "cook",
            "cooking",
            "recipe",
            "sugar",
            "fasting",
            "weight",
            "vegetables",
            "soup",
            "rice",
            "tea",
            "nutrition",
            "hungry",
            "snack",
            "protein",
        ],
    },
    {
        "name": "exercise_martial_arts",
        "description": "Training, martial arts, stretching, strength and fitness.",
        "keywords": [
            "exercise",
            "training",
            "train",
            "martial",
            "arts",
            "kung",
            "fu",
            "tai",
            "chi",
            "stance",
            "kick",
            "punch",
            "stretch",
            "stretching",
            "strength",
            "fitness",
            "workout",
            "sparring",
            "injury",
            "knee",
            "back",
            "push",
            "ups",
            "running",
            "gym",
            "fight",
        ],
    },
    {
        "name": "meditation",
        "description": "Meditation, breathing, stress, sleep and attention.",
        "keywords": [
            "meditation",
            "meditate",
            "breath",
            "breathing",
            "breathe",
            "calm",
            "stress",
            "anxiety",
            "anxious",
            "sleep",
            "mind",
            "mindfulness",
            "focus",
            "attention",
            "thoughts",
            "relax",
            "worry",
            "peace",
            "panic",
        ],
    },
]


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    description: str
    keywords: tuple[str, ...]


def seed_namespaces() -> int:
    """Insert the default namespaces that are missing; returns how many were added (flushes, no commit)."""
    existing = set(db.session.scalars(select(Namespace.name)))
    added = 0
    for item in DEFAULT_NAMESPACES:
        if item["name"] not in existing:
            db.session.add(Namespace(**item))
            added += 1
    db.session.flush()
    return added


# Read before every turn: columns, not ORM objects, and a statement built once.
_REGISTRY = select(Namespace.name, Namespace.description, Namespace.keywords).order_by(
    Namespace.name
)


def load_registry() -> list[NamespaceInfo]:
    return [
        NamespaceInfo(name, description or "", tuple(keywords or ()))
        for name, description, keywords in db.session.execute(_REGISTRY)
    ]
