"""Every number the retrieval policy uses, in one place, each with why it has its value.

Measured on the dev split of eval/unseen (never the held-out split) and the shipped sample set;
`python -m bench.retrieval_grid` reprints the sweeps behind them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetrievalSettings:
    # Candidates per side (dense, BM25) before fusion: 20 holds the right talk for every dev
    # question; 40 changed no decision and doubled moment work.
    search_limit: int = 20
    # Passages handed to the answer: the offline answer quotes up to 3, a model reads 5.
    max_passages: int = 5
    # A hit stays when its cosine is within this of the best hit's: a gap relative to the
    # question, since wordllama cosines run from ~0.3 to ~0.8 by question length.
    dense_gap: float = 0.08
    # ...or when its BM25 is at least this share of the best BM25.
    sparse_share: float = 0.45
    # Coverage: covered when best cosine − unknown_penalty × unknown share ≥ min_covered_score.
    # The unknown share is the IDF-weighted share of the question's terms no chunk holds.
    unknown_penalty: float = 0.4
    min_covered_score: float = 0.08
    # Moments: a line is judged on itself and on the few lines around it (short cues alone say
    # little); the context counts this much of the line's own similarity.
    context_weight: float = 0.5
    context_lines: int = 2
    # Passages ordered by fused rank, except that the best-said passage of each of the first
    # this-many documents comes first (the offline answer quotes 3): diverse quoted sources
    # without pushing a talk's best-ranked chunk out of the 5. Dev: 1 → recall@5 0.867 but the
    # shipped set's ±60 s 0.535 → 0.465; 3 keeps every citation the same and recall 0.867.
    diverse_leads: int = 3
    # A talk's cited passage: best line score + this × the chunk's cosine to the question.
    # Dev ±60 s 0.556 → 0.600 and the shipped set's 0.535 → 0.549 at 0.5 (2 and 1 cases: small);
    # 1.0 costs dev recall@5 (0.867 → 0.844), 2.0 loses the ±60 s gain.
    lead_chunk_weight: float = 0.5
    # Two citations of one video closer than this are one moment (90 s ≈ one chunk of speech).
    same_source_window_s: float = 90.0


DEFAULT = RetrievalSettings()
