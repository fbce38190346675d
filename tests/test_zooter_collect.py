"""`router collect`: concurrency, recorded failures, fill-only-what-is-missing re-runs; and an
end-to-end run against two real llama.cpp servers on loopback."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from typer.testing import CliRunner

from rewardroute.backends.client import RetryPolicy
from rewardroute.backends.config import BackendConfig
from rewardroute.cli import app
from rewardroute.data.readers import read_routing
from rewardroute.data.schemas import RoutingRecord
from rewardroute.io import write_jsonl_atomic
from rewardroute.zooter.collect import CollectConfig, collect_async

runner = CliRunner()
NO_WAIT = RetryPolicy(base_s=0.0, cap_s=0.0)


def queries(n: int) -> list[RoutingRecord]:
    return [RoutingRecord(id=str(i), query=f"Say the number {i}.", tags=["t"]) for i in range(n)]


def configs() -> list[BackendConfig]:
    return [BackendConfig(name="good", base_url="http://good.test/v1", model="g", cost_per_1k_tokens=1.0,
                          max_retries=1),
            BackendConfig(name="flaky", base_url="http://flaky.test/v1", model="f", max_retries=0)]


class FakeServers:
    """`good` always answers; `flaky` fails on queries whose number is in `fail`."""

    def __init__(self, fail: set[str]):
        self.fail = fail
        self.calls: list[tuple[str, str]] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        q = body["messages"][-1]["content"]
        self.calls.append((req.url.host, q))
        if req.url.host.startswith("flaky") and any(f"number {f}." in q for f in self.fail):
            return httpx.Response(500, text="boom")
        return httpx.Response(200, json={"choices": [{"message": {"content": f"{req.url.host}: {q}"}}],
                                         "usage": {"prompt_tokens": 10, "completion_tokens": 10}})


def run(records, out, fake):
    return asyncio.run(collect_async(configs(), records, out, CollectConfig(max_tokens=8),
                                     transport=httpx.MockTransport(fake), retry=NO_WAIT))


def test_failures_are_recorded_and_a_rerun_fills_only_them(tmp_path):
    out = tmp_path / "c.jsonl"
    fake = FakeServers(fail={"1", "3"})
    first = run(queries(5), out, fake)
    assert first["requested"] == 10 and first["failed"] == 2
    rows = read_routing(out)
    assert [r.id for r in rows] == ["0", "1", "2", "3", "4"]  # input order
    assert rows[1].responses == {"good": "good.test: Say the number 1."}
    assert rows[1].errors["flaky"].startswith("http 500")
    assert rows[0].costs["good"] == pytest.approx(0.02) and rows[0].errors is None
    assert rows[0].scores == {}  # collecting never invents scores, so failures cannot poison labels

    fake2 = FakeServers(fail=set())
    second = run(queries(6), out, fake2)  # one new query, two failed cells
    assert second["requested"] == 4 and second["already_done"] == 8 and second["failed"] == 0
    assert sorted(fake2.calls) == sorted([("flaky.test", "Say the number 1."), ("flaky.test", "Say the number 3."),
                                          ("good.test", "Say the number 5."), ("flaky.test", "Say the number 5.")])
    rows = read_routing(out)
    assert len(rows) == 6 and all(set(r.responses) == {"good", "flaky"} and not r.errors for r in rows)
    assert not out.with_name(out.name + ".partial").exists()


def test_a_changed_query_is_asked_again(tmp_path):
    out = tmp_path / "c.jsonl"
    run(queries(2), out, FakeServers(set()))
    changed = [queries(2)[0], RoutingRecord(id="1", query="Something else.")]
    fake = FakeServers(set())
    assert run(changed, out, fake)["requested"] == 2
    assert {q for _, q in fake.calls} == {"Something else."}


def test_partial_file_from_a_crash_is_reused(tmp_path):
    out = tmp_path / "c.jsonl"
    run(queries(3), out, FakeServers(set()))
    rows = out.read_text(encoding="utf-8").splitlines()
    out.unlink()
    out.with_name(out.name + ".partial").write_text(rows[0] + "\n" + rows[1][:20], encoding="utf-8")
    fake = FakeServers(set())
    assert run(queries(3), out, fake)["requested"] == 4  # record 0 was kept; 1 was torn
    assert len(read_routing(out)) == 3


@pytest.mark.e2e
def test_collect_against_two_llama_cpp_servers(llama_servers, tmp_path):
    backends = tmp_path / "backends.yaml"
    lines = ["backends:"]
    for s in llama_servers:
        lines += [f"  - name: {s.name}", f"    base_url: {s.base_url}", f"    model: {s.name}",
                  "    cost_per_1k_tokens: 0.0001", "    max_concurrency: 2", "    timeout_s: 60"]
    lines += ["  - name: down", "    base_url: http://127.0.0.1:9/v1", "    model: none",  # nothing listens there
              "    max_retries: 1", "    timeout_s: 5"]
    backends.write_text("\n".join(lines) + "\n", encoding="utf-8")
    q = tmp_path / "q.jsonl"
    write_jsonl_atomic(q, [{"id": str(i), "query": t, "tags": ["e2e"]}
                           for i, t in enumerate(["Name a fruit.", "What is 2+2?", "Say hello."])])
    out = tmp_path / "out.jsonl"
    t0 = time.perf_counter()
    res = runner.invoke(app, ["router", "collect", "--backends", str(backends), "--queries", str(q), "--out", str(out),
                              "--max-tokens", "16", "--temperature", "0", "--json"])
    assert res.exit_code == 0, res.output
    assert time.perf_counter() - t0 < 60
    summary = json.loads(res.stdout)
    assert summary["by_backend"]["smol-a"]["ok"] == 3 and summary["by_backend"]["smol-b"]["ok"] == 3
    assert summary["by_backend"]["down"]["failed"] == 3
    rows = read_routing(out)
    for r in rows:
        assert r.responses["smol-a"].strip() and r.responses["smol-b"].strip()
        assert r.costs["smol-a"] > 0
        assert r.errors["down"].startswith("connect")
    # a re-run with other generation settings would mix answers made two ways: it stops
    res = runner.invoke(app, ["router", "collect", "--backends", str(backends), "--queries", str(q), "--out", str(out),
                              "--max-tokens", "16", "--json"])
    assert res.exit_code == 2 and "temperature" in res.output and "--overwrite" in res.output
    # a re-run with the same settings asks only the backend that failed
    res = runner.invoke(app, ["router", "collect", "--backends", str(backends), "--queries", str(q), "--out", str(out),
                              "--max-tokens", "16", "--temperature", "0", "--json"])
    assert json.loads(res.stdout)["requested"] == 3 and json.loads(res.stdout)["already_done"] == 6
