"""/health/detailed probes the LLM provider; a failing embedder degrades search to BM25."""

from __future__ import annotations

from tests.conftest import close_app, make_app
from wwhd.knowledge.index import KnowledgeIndex, make_client
from wwhd.providers.base import Usage


def test_detailed_health_reports_a_reachable_provider(llm_app, fake_llm):
    reply = llm_app.test_client().get("/health/detailed")
    assert reply.status_code == 200, reply.get_json()
    assert reply.get_json()["checks"]["llm"]["status"] == "ok"
    assert any(r["path"].endswith("/models") for r in fake_llm.requests)


def test_detailed_health_is_503_when_the_provider_is_down(tmp_path):
    app = make_app(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://127.0.0.1:1/v1")
    try:
        reply = app.test_client().get("/health/detailed")
        body = reply.get_json()
        assert reply.status_code == 503 and body["status"] == "degraded"
        assert body["checks"]["llm"]["status"] == "down" and body["checks"]["llm"]["error"]
        assert body["checks"]["database"]["status"] == "ok"
    finally:
        close_app(app)


class FlakyEmbedder:
    name = "flaky-embed"

    def __init__(self):
        self.down = False

    def embed(self, texts):
        if self.down:
            raise ConnectionError("embedding server unreachable")
        vectors = [[float(len(t) % 7 + 1), 1.0, float("kettle" in t)] for t in texts]
        return vectors, Usage(model=self.name, prompt_tokens=len(texts), kind="embedding")


def test_search_falls_back_to_bm25_when_embeddings_fail():
    embedder = FlakyEmbedder()
    index = KnowledgeIndex(make_client(path=":memory:"), "t", embedder, local=True)
    index.upsert(
        [
            {
                "id": "00000000-0000-0000-0000-000000000001",
                "text": "the copper kettle teaches patience",
                "payload": {
                    "namespace": "general",
                    "document_id": 1,
                    "text": "the copper kettle teaches patience",
                },
            },
            {
                "id": "00000000-0000-0000-0000-000000000002",
                "text": "money envelopes every month",
                "payload": {
                    "namespace": "money",
                    "document_id": 2,
                    "text": "money envelopes every month",
                },
            },
        ]
    )
    result = index.search("copper kettle", None, 5)
    hits = result.hits
    assert hits[0].payload["document_id"] == 1 and hits[0].dense_score is not None
    assert result.usage and result.query_vector is not None
    embedder.down = True
    result = index.search("copper kettle", None, 5)
    hits = result.hits
    assert [h.payload["document_id"] for h in hits] == [1]
    assert hits[0].dense_score is None and hits[0].sparse_score > 0 and result.usage == []
