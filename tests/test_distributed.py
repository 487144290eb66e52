"""The Ray engine: shards embedded on a local 2-CPU Ray instance, merged into an ordinary index that equals the
local engine's (same chunks, same Flat neighbours); a killed run re-embeds only the missing shards."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag import sources as corpus
from medrag.distributed import SHARDS, ShardStore, ShardVectors, embed_shards, ingest_ray, plan
from medrag.embedding import Embedder
from medrag.ingest import IngestReport, check_sources
from tests.conftest import MEDQUAD, QUESTION, SMALL_CORPUS

ray = pytest.importorskip("ray", reason="the test extra installs ray[data]")

QUESTIONS = [QUESTION, "How is type 2 diabetes treated with metformin?", "heart failure diagnosis",
             "What does the CDC recommend about vaccination?"]


@pytest.fixture(scope="module")
def local_ray() -> None:
    """One local Ray instance with 2 CPUs, as CI has."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=128 * 1024**2)
    yield
    ray.shutdown()


def _pipeline(embedder: Embedder) -> MedRAG:
    rag = MedRAG(Settings())
    rag.embedder = embedder  # the driver's merge shares the session's model; the actors load their own
    return rag


def test_ray_index_equals_local_index(local_ray: None, small_index: Path, embedder: Embedder, tmp_path: Path) -> None:
    report = ingest_ray(_pipeline(embedder), SMALL_CORPUS, tmp_path / "ray", workers=2, threads=1,
                        records_per_shard=10, progress=False)
    local, distributed = MedRAG.load(small_index), MedRAG.load(tmp_path / "ray")
    local.embedder = distributed.embedder = embedder
    assert report.chunks == local.chunks.count() > 50
    ids = local.chunks.ids()
    assert distributed.chunks.ids() == ids
    a, b = local.chunks.get(ids), distributed.chunks.get(ids)
    assert [(a[i].doc_id, a[i].embed_text) for i in ids] == [(b[i].doc_id, b[i].embed_text) for i in ids]
    # fp32 paths agree to float rounding; a bf16 path to bf16 rounding (batches and threads differ)
    atol = 1e-5 if embedder.precision == "fp32" else 2e-3
    mine_v, theirs_v = local.vectors.vectors_of(ids), distributed.vectors.vectors_of(ids)
    assert np.allclose(mine_v, theirs_v, atol=atol)
    assert float((mine_v * theirs_v).sum(axis=1).min()) > 1 - atol
    for mine, theirs in zip(distributed.retrieve_batch(QUESTIONS, 10, retriever="dense"),
                            local.retrieve_batch(QUESTIONS, 10, retriever="dense")):
        if embedder.precision == "fp32":
            assert [h.chunk.id for h in mine] == [h.chunk.id for h in theirs]
        else:  # a near-tie may swap places
            assert len({h.chunk.id for h in mine} & {h.chunk.id for h in theirs}) >= 9
        assert np.allclose(sorted(h.score for h in mine), sorted(h.score for h in theirs), atol=atol)
    assert not (tmp_path / "ray" / SHARDS).exists()  # spent once the index saved


def _recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "pages.toml"
    recipe.write_text(f'[[source]]\npath = "{MEDQUAD / "9_CDC_QA"}/000000[1-3].xml"\nsource_type = "guideline"\n'
                      f'[[source]]\npath = "{SMALL_CORPUS[-1]}"\nsource_type = "pubmed"\n')
    return recipe


def test_killed_run_reembeds_only_missing_shards(local_ray: None, embedder: Embedder, tmp_path: Path) -> None:
    settings = Settings()
    checked = check_sources(corpus.expand([_recipe(tmp_path)]), IngestReport(), False, False)
    shards = plan(checked, settings, records_per_shard=4)
    assert len(shards) >= 4
    store = ShardStore(tmp_path / "index" / SHARDS)
    assert embed_shards(shards[:2], store, settings, workers=1, threads=1, progress=False) == 2
    (store.directory / f".{shards[2].key}.vectors.npy").write_bytes(b"half-written")  # killed mid-write
    assert embed_shards(shards, store, settings, workers=2, threads=1, progress=False) == len(shards) - 2
    assert embed_shards(shards, store, settings, workers=2, threads=1, progress=False) == 0
    report = ingest_ray(_pipeline(embedder), [_recipe(tmp_path)], tmp_path / "index", workers=2, threads=1,
                        records_per_shard=4, progress=False)
    rag = MedRAG.load(tmp_path / "index")
    kinds = {c.metadata.get("source_type") for c in rag.chunks.get(rag.chunks.ids()).values()}
    assert kinds == {"guideline", "pubmed"}  # the recipe's source types survive the shards
    assert report.chunks == rag.chunks.count() > 0


def test_shards_depend_on_embedding_settings(tmp_path: Path) -> None:
    checked = check_sources(corpus.expand([_recipe(tmp_path)]), IngestReport(), False, False)
    keys = {s.key for s in plan(checked, Settings())}
    assert keys.isdisjoint(s.key for s in plan(checked, Settings(chunk_tokens=128)))
    assert keys == {s.key for s in plan(checked, Settings(k=9))}  # query-time settings do not matter
    with pytest.raises(MedRAGError, match="positive"):
        plan(checked, Settings(), records_per_shard=0)


def test_bad_file_stops_before_ray_runs(tmp_path: Path, embedder: Embedder) -> None:
    bad = tmp_path / "broken.xml"
    bad.write_text("<PubmedArticleSet><PubmedArticle><MedlineCitation>")
    with pytest.raises(MedRAGError):
        ingest_ray(_pipeline(embedder), [bad], tmp_path / "index", workers=1, threads=1, progress=False)
    assert not (tmp_path / "index").exists()


def test_missing_vector_is_a_clear_error(tmp_path: Path) -> None:
    store = ShardStore(tmp_path)
    store.write("k", np.zeros((0, 2), np.uint64), np.zeros((0, 4), np.float32))
    lookup = store.lookup(["k"], 4)
    assert isinstance(lookup, ShardVectors) and len(lookup) == 0
    with pytest.raises(MedRAGError, match="no vector"):
        lookup(["a chunk nobody embedded"])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary files left behind
