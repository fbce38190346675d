"""Zooter labels: score tables, softmax with temperature, hard labels, tag enhancement, k-means."""

from __future__ import annotations

import numpy as np
import pytest

from rewardroute.data.schemas import RoutingRecord
from rewardroute.errors import DataError
from rewardroute.zooter.labels import (Normalizer, default_k, hard_labels, kmeans, score_table, soft_labels,
                                       tag_enhance)


def rec(i, scores, tags=("t",), errors=None):
    return RoutingRecord(id=str(i), query=f"q{i}", tags=list(tags), scores=scores, errors=errors)


def test_score_table_skips_records_missing_a_score_and_counts_them():
    records = [rec(0, {"a": 1.0, "b": 0.0}), rec(1, {"a": 0.5}), rec(2, {"a": 0.2, "b": None}),
               rec(3, {"a": 0.0, "b": 1.0})]
    t = score_table(records, path="f.jsonl", lines=[1, 2, 3, 4])
    assert t.models == ["a", "b"] and t.skipped == 2
    assert [r.id for r in t.records] == ["0", "3"]
    assert t.scores.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert "f.jsonl:2" in t.skipped_examples[0]


def test_score_table_strict_names_file_and_line():
    with pytest.raises(DataError) as e:
        score_table([rec(0, {"a": 1.0, "b": 0.0}), rec(1, {"a": 0.5})], strict=True, path="f.jsonl", lines=[1, 7])
    assert "f.jsonl:7" in str(e.value) and "scores" in str(e.value)


def test_soft_labels_temperature():
    s = np.array([[1.0, 0.0]])
    assert soft_labels(s, 1.0)[0, 0] == pytest.approx(np.e / (np.e + 1))
    assert soft_labels(s, 0.05)[0, 0] > 0.999  # low T: nearly the argmax
    assert soft_labels(np.array([[1000.0, 999.0]]), 1.0).sum() == pytest.approx(1.0)  # stable


def test_hard_labels_share_ties():
    assert hard_labels(np.array([[0.2, 0.9, 0.1], [1.0, 1.0, 0.0]])).tolist() == [[0, 1, 0], [0.5, 0.5, 0]]


def test_tag_enhancement_is_zooters_formula():
    labels = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    tags = [["x"], ["x"], ["y"], []]
    out = tag_enhance(labels, tags, beta=0.3)
    # s_x = [0.5, 0.5]; s_y = [1, 0]; an untagged query keeps its own label
    assert out[0].tolist() == pytest.approx([0.3 + 0.7 * 0.5, 0.7 * 0.5])
    assert out[2].tolist() == pytest.approx([1.0, 0.0])
    assert out[3].tolist() == [0.5, 0.5]
    assert tag_enhance(labels, tags, 1.0).tolist() == labels.tolist()
    assert tag_enhance(labels, tags, 0.0)[1].tolist() == [0.5, 0.5]
    assert np.allclose(out.sum(1), 1)


def test_minmax_normalizer():
    n = Normalizer.fit(np.array([[-2.0, 2.0]]), "minmax")
    assert n(np.array([[-2.0, 0.0, 2.0]])).tolist() == [[0.0, 0.5, 1.0]]


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (30, 4)) + 3, rng.normal(0, 0.1, (30, 4)) - 3])
    c, a = kmeans(x, 2, seed=0)
    assert len(set(a[:30])) == 1 and len(set(a[30:])) == 1 and a[0] != a[-1]
    assert default_k(10) == 2 and default_k(800) == 20 and default_k(100000) == 32
