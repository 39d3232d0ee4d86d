"""BM25 sparse vectors computed locally: no model download, stable across processes."""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

# Qdrant applies IDF (collection modifier); we send the BM25 term-frequency part.
K1 = 1.2
B = 0.75
AVG_DOC_TOKENS = 220  # typical token count of a ~1,500-char chunk after stop words

WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
STOP_WORDS = frozenset(
    """
a about above after again against all am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't
my myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd
she'll she's should shouldn't so some such than that that's the their theirs them themselves then there
there's these they they'd they'll they're they've this those through to too under until up very was wasn't we
we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom why why's
with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves also just really get
got go going gonna thing things like know say said says well okay ok yeah right one us let tell
ain't isn't aren't wasn't weren't won't wouldn't don't doesn't didn't can't couldn't shouldn't mustn't
haven't hasn't hadn't i'd i'm i've you've we've they've
herman herman's
""".split()
)  # the teacher's name: the product is "What Would Herman Do?", so questions name him
# without saying anything about the topic

_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def fold(text: str) -> str:
    """Lower case without accents, curly apostrophes made straight: "Café’s" → "cafe's"."""
    text = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'"))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, stemmed terms."""
    terms = []
    for word in WORD_RE.findall(fold(text)):
        # Stop words before the apostrophe split: "won't" must not become the term "won".
        if word in STOP_WORDS:
            continue
        word = word.split("'")[0]
        if word in STOP_WORDS or len(word) < 2:
            continue
        terms.append(_stem(word))
    return terms


@lru_cache(maxsize=4096)
def term_set(text: str) -> frozenset[str]:
    """The distinct terms of `text`, cached: a turn checks the same few passages ~25 times
    (rerank, coverage, moments) and tokenizing 1,500 characters costs ~0.45 ms."""
    return frozenset(tokenize(text))


def term_index(term: str) -> int:
    # crc32, not hash(): Python's hash is salted per process and would scatter the index.
    return zlib.crc32(term.encode()) & 0x7FFFFFFF


def document_vector(text: str) -> tuple[list[int], list[float]]:
    terms = tokenize(text)
    counts = Counter(terms)
    length = max(len(terms), 1)
    norm = K1 * (1 - B + B * length / AVG_DOC_TOKENS)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        idx = term_index(term)
        weights[idx] = weights.get(idx, 0.0) + tf * (K1 + 1) / (tf + norm)
    indices = sorted(weights)
    return indices, [weights[i] for i in indices]


# -- queries ----------------------------------------------------------------------------------------
# Query-term weighting. BM25's IDF only knows this collection, which is small and on-topic, so
# everyday words ("need", "feel", "time") can look rare. A prior from general English keeps them
# from deciding a match on their own: they count at COMMON_WEIGHT in queries and in coverage.
COMMON_WEIGHT = 0.3
COMMON_WORDS = frozenset(
    """
able actual actually ago almost already although always amazing anymore anyone anything anyway anywhere
around ask asked asking asks away back bad basically became become becomes best better big bit bring brings
call called can case certain completely constantly correctly currently day days deal different doe done dont
early easy either else end enough entire especially even ever every everybody everyone everything exactly
example fact feel feeling feels felt few final finally find fine first full gave get gets getting give gives
go goes going good great guess half handle happen happened happens hard help honest honestly hour hours huge
idea important impossible instead issue keep keeping keeps kept kind knew know known large last lately later
least less let literally little long look looking looks lot lots main make makes making manage many matter
maybe mean means much need needed needs never new next nice nobody normal nothing now often old once ones
otherwise part particular people person piece place plenty point possible possibly pretty probably problem
properly put question quickly quite rather real reason recently right same say saying says see seem seems
seriously several short should show side simple simply since slowly small somebody somehow someone something
sometimes soon sort specific start started starting starts still stop stopped stuff suddenly sure take takes
talk tell thing things think through today together told tomorrow tonight took totally tried tries true try
trying turn turned turns twice two three four five six seven eight nine ten twenty hundred thousand unable
time times tip tips use used usual usually want wanted wants way ways week weeks whenever wherever whether whole within without
wonder work works worth wrong year years yesterday yet
""".split()
)

# Related terms: everyday wording mapped onto the words a teacher uses for the same idea. A query
# term pulls in the other members of its groups at EXPANSION_WEIGHT (retrieval), and a passage
# holding a related term covers the query term at RELATED_CREDIT (coverage). Groups hold synonyms
# a thesaurus would list, not the wording of particular questions; members may be phrases.
EXPANSION_WEIGHT = 0.4
RELATED_CREDIT = 0.8
RELATED: tuple[tuple[str, ...], ...] = (
    # feelings
    (
        "angry",
        "anger",
        "mad",
        "furious",
        "temper",
        "rage",
        "irritated",
        "annoyed",
        "blow up",
        "lose my temper",
        "snap at",
        "fuming",
        "hothead",
    ),
    (
        "sorry",
        "regret",
        "regretted",
        "apologize",
        "apologise",
        "apology",
        "remorse",
        "guilty",
        "ashamed",
        "shame",
    ),
    (
        "failure",
        "fail",
        "failed",
        "flop",
        "went under",
        "go under",
        "bankrupt",
        "bankruptcy",
        "went bust",
        "loser",
        "setback",
    ),
    (
        "anxious",
        "anxiety",
        "nervous",
        "nerves",
        "scared",
        "afraid",
        "fear",
        "panic",
        "jittery",
        "jumpy",
        "shaky",
        "uneasy",
        "dread",
        "tense",
        "on edge",
    ),
    ("worry", "worried", "worrying", "stress", "stressed", "overthink", "overthinking", "ruminate"),
    (
        "tired",
        "exhausted",
        "exhaustion",
        "burnout",
        "burned out",
        "burnt out",
        "worn out",
        "fatigue",
        "drained",
        "overworked",
        "overwhelmed",
    ),
    (
        "calm",
        "relax",
        "relaxed",
        "settle",
        "soothe",
        "calm down",
        "cool down",
        "peaceful",
        "composure",
    ),
    ("bored", "boring", "monotonous", "repetitive", "dull", "variety", "tedious"),
    # people and relationships
    (
        "partner",
        "spouse",
        "wife",
        "husband",
        "couple",
        "couples",
        "married",
        "marriage",
        "boyfriend",
        "girlfriend",
    ),
    (
        "child",
        "children",
        "kid",
        "kids",
        "son",
        "daughter",
        "teen",
        "teens",
        "teenager",
        "teenagers",
        "adolescent",
        "toddler",
        "year-old",
    ),
    (
        "parent",
        "parents",
        "mother",
        "father",
        "mom",
        "mum",
        "dad",
        "in-laws",
        "mother-in-law",
        "father-in-law",
    ),
    (
        "argue",
        "argument",
        "arguing",
        "fight",
        "fighting",
        "quarrel",
        "disagree",
        "disagreement",
        "conflict",
        "bicker",
        "bickering",
        "clash",
        "dispute",
        "blame",
    ),
    (
        "talk",
        "conversation",
        "communicate",
        "communication",
        "discuss",
        "discussion",
        "open up",
        "confide",
        "listen",
        "listening",
    ),
    (
        "romance",
        "romantic",
        "intimacy",
        "intimate",
        "closeness",
        "affection",
        "spark",
        "passion",
        "drift apart",
        "love",
    ),
    (
        "friend",
        "friends",
        "friendship",
        "buddies",
        "keep in touch",
        "lonely",
        "loneliness",
        "lost touch",
    ),
    ("christmas", "holiday", "holidays", "easter", "thanksgiving"),
    ("withdrawn", "shut down", "shuts down", "clam up", "silent", "silence", "sulk", "stonewall"),
    ("forgive", "forgiveness", "make up", "reconcile", "mend"),
    # money
    ("money", "cash", "finances", "finance", "financial", "funds"),
    (
        "buy",
        "buying",
        "bought",
        "purchase",
        "purchases",
        "shopping",
        "spend",
        "spending",
        "splurge",
        "impulse",
        "order",
        "ordering",
    ),
    ("save", "saving", "savings", "set aside", "put aside", "nest egg", "rainy day"),
    ("budget", "budgeting", "envelope", "envelopes", "allowance", "expenses"),
    (
        "debt",
        "debts",
        "loan",
        "loans",
        "owe",
        "credit card",
        "interest rate",
        "mortgage",
        "repay",
        "pay off",
    ),
    ("salary", "paycheck", "payday", "wage", "wages", "income", "earnings", "paid"),
    ("emergency", "buffer", "cushion", "safety net", "reserve"),
    ("account", "accounts", "bank", "joint account"),
    ("expensive", "afford", "cost", "costs", "overspend", "overspending"),
    # business
    (
        "business",
        "shop",
        "store",
        "company",
        "firm",
        "cafe",
        "café",
        "restaurant",
        "bakery",
        "startup",
        "venture",
        "self-employed",
    ),
    (
        "customer",
        "customers",
        "client",
        "clients",
        "guest",
        "guests",
        "complaint",
        "complaints",
        "complain",
    ),
    ("price", "prices", "pricing", "charge", "undercharge", "cheap", "discount"),
    (
        "cash flow",
        "rent",
        "bills",
        "invoice",
        "invoices",
        "profit",
        "profitable",
        "revenue",
        "margin",
        "turnover",
    ),
    (
        "hire",
        "hiring",
        "recruit",
        "recruiting",
        "employee",
        "employees",
        "staff",
        "worker",
        "workers",
        "interview",
        "candidate",
        "candidates",
        "cv",
        "resume",
        "applicant",
    ),
    ("lazy", "work ethic", "slacker", "unreliable", "diligent", "hardworking"),
    ("partnership", "co-owner", "cofounder", "co-founder", "business partner"),
    # phrases only: "close" alone is also closeness, and stems like "closing"
    (
        "close the business",
        "close the shop",
        "closing down",
        "sell the business",
        "selling the business",
        "shut the doors",
        "wind down",
        "call it quits",
        "give up",
    ),
    # home and feng shui
    ("home", "house", "apartment", "flat"),
    ("door", "front door", "entrance", "entry", "hallway", "hall", "foyer", "doorway"),
    (
        "clutter",
        "cluttered",
        "mess",
        "messy",
        "junk",
        "crammed",
        "piled",
        "declutter",
        "tidy",
        "hoard",
        "hoarding",
        "storage",
    ),
    ("bed", "bedroom", "headboard", "mattress"),
    ("desk", "office", "workspace", "work from home", "home office", "laptop", "computer"),
    ("living room", "lounge", "sofa", "couch", "tv", "television", "seating"),
    ("mirror", "mirrors", "reflection"),
    ("broken", "repair", "fix", "gadgets", "appliances"),
    # food
    ("eat", "eating", "food", "meal", "meals", "diet", "nutrition"),
    (
        "overeat",
        "overeating",
        "stuffed",
        "portion",
        "portions",
        "second helping",
        "too full",
        "eat too much",
        "fullness",
    ),
    ("sugar", "sweets", "dessert", "cake", "candy", "chocolate", "sweet tooth"),
    ("soup", "stew", "lentil", "lentils", "recipe", "cook", "cooking"),
    ("snack", "pre-workout", "sluggish", "energy"),
    # training
    ("exercise", "workout", "work out", "training", "train", "fitness", "gym"),
    ("karate", "martial arts", "kung fu", "judo", "dojo", "sparring", "spar", "kata", "sensei"),
    ("warm-up", "warm up", "warmup", "mobility", "loosen up", "limber"),
    ("stretch", "stretching", "flexibility", "flexible"),
    ("injury", "injured", "hurt", "pain", "ache", "aching", "sore", "soreness", "sprain"),
    ("fall", "falling", "breakfall", "breakfalls", "tumble", "trip over"),
    ("balance", "steady", "steadier", "wobbly", "unsteady", "stability", "unstable"),
    ("elderly", "older", "aging", "ageing", "senior", "retired"),
    ("shout", "kiai", "yell", "scream"),
    # meditation
    ("meditate", "meditation", "mindfulness", "sit quietly", "sitting still", "stillness"),
    ("breath", "breathe", "breathing", "inhale", "exhale", "out-breath"),
    (
        "thoughts",
        "racing thoughts",
        "busy mind",
        "wandering",
        "distracted",
        "monkey mind",
        "restless",
        "can't focus",
    ),
    ("sleep", "insomnia", "fall asleep", "awake", "asleep", "sleepless", "bedtime", "drift off"),
    ("posture", "sit", "sitting", "chair", "cushion", "cross-legged"),
    # general
    ("learn", "learning", "remember", "memorize", "memorise", "retain", "study", "studying"),
    ("decision", "decide", "deciding", "choice", "choose", "dilemma"),
    ("morning", "mornings", "wake up", "alarm", "start the day"),
    ("habit", "habits", "routine", "ritual", "daily"),
)


@dataclass(frozen=True)
class QueryTerm:
    """One idea in a query: a stemmed term (or a matched phrase) and what else counts as it."""

    term: str  # a stemmed term, or the text of a matched phrase
    weight: float
    related: frozenset[str]  # stemmed terms that count as the same idea
    own: frozenset[str] = frozenset()  # a phrase's own stemmed words


Phrase = tuple[str, re.Pattern, frozenset[str], frozenset[str]]  # text, pattern, related, own words


def _build_related() -> tuple[dict[str, frozenset[str]], list[Phrase]]:
    by_term: dict[str, set[str]] = {}
    phrases: list[Phrase] = []
    for group in RELATED:
        terms = frozenset(t for member in group for t in tokenize(member))
        for member in group:
            words = re.findall(r"[\w']+", fold(member))
            if len(words) > 1:
                pattern = re.compile(r"\b" + r"[\s-]+".join(map(re.escape, words)) + r"\b")
                own = frozenset(tokenize(member))
                phrases.append((member, pattern, terms - own - _COMMON_STEMS, own))
            elif tokenize(member):
                by_term.setdefault(tokenize(member)[0], set()).update(terms)
    # Longest phrases first, so "work from home" wins over "home".
    phrases.sort(key=lambda phrase: -len(phrase[0]))
    return {t: frozenset(r - {t} - _COMMON_STEMS) for t, r in by_term.items()}, phrases


_COMMON_STEMS = frozenset(_stem(w) for w in COMMON_WORDS)
NUMBER_RE = re.compile(r"\d+(st|nd|rd|th|s)?")
_RELATED_BY_TERM, _RELATED_PHRASES = _build_related()


def is_common(term: str) -> bool:
    """An everyday word or a number: it may rank, but does not decide, a match."""
    return term in _COMMON_STEMS or bool(NUMBER_RE.fullmatch(term))


def related_terms(term: str) -> frozenset[str]:
    """Stemmed terms in the same related-terms groups as `term` (itself excluded)."""
    return _RELATED_BY_TERM.get(term, frozenset())


def analyze_query(text: str) -> list[QueryTerm]:
    """The query's ideas with weights: phrases from RELATED first, then the remaining terms."""
    lowered = fold(text)
    found: list[QueryTerm] = []
    for text_, pattern, related, own in _RELATED_PHRASES:
        if pattern.search(lowered):
            found.append(QueryTerm(text_, 1.0, related, own))
            lowered = pattern.sub(" ", lowered)
    seen: set[str] = set()
    for term in tokenize(lowered):
        if term in seen:
            continue
        seen.add(term)
        found.append(
            QueryTerm(term, COMMON_WEIGHT if is_common(term) else 1.0, related_terms(term))
        )
    return found


def query_weights(text: str) -> dict[str, float]:
    """Term → weight for retrieval: the query's own terms, then their related terms, weaker."""
    ideas = analyze_query(text)
    weights: dict[str, float] = {}
    for idea in ideas:
        for term in idea.own or {idea.term}:
            weight = COMMON_WEIGHT if is_common(term) else idea.weight
            weights[term] = max(weights.get(term, 0.0), weight)
    for idea in ideas:
        for term in idea.related:
            if term not in weights or weights[term] < idea.weight * EXPANSION_WEIGHT:
                weights.setdefault(term, 0.0)
                weights[term] = max(weights[term], idea.weight * EXPANSION_WEIGHT)
    return weights


def matched_weight(
    ideas: list[QueryTerm],
    present: frozenset[str] | set[str],
    related_credit: float = RELATED_CREDIT,
) -> float:
    """Weight of the ideas found in `present`: full for the idea itself, `related_credit` of it
    for a related term only."""
    got = 0.0
    for idea in ideas:
        if (idea.own or {idea.term}) <= present:
            got += idea.weight
        elif idea.related & present:
            got += idea.weight * related_credit
    return got


def coverage(ideas: list[QueryTerm], text: str) -> float:
    """Weighted share of the query's ideas the text holds (a related term earns RELATED_CREDIT)."""
    total = sum(idea.weight for idea in ideas)
    if not total:
        return 0.0
    return matched_weight(ideas, term_set(text)) / total


def query_vector(text: str) -> tuple[list[int], list[float]]:
    weights: dict[int, float] = {}
    for term, weight in query_weights(text).items():
        idx = term_index(term)
        weights[idx] = max(weights.get(idx, 0.0), weight)
    indices = sorted(weights)
    return indices, [weights[i] for i in indices]
