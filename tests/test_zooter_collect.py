"""`router collect`: concurrency, recorded failures, fill-only-what-is-missing re-runs, streaming
(a bounded window, resume after a crash from the partial file, an index of offsets); and an
end-to-end run against two real llama.cpp servers on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rewardroute.backends.client import BackendPool, RetryPolicy
from rewardroute.backends.config import BackendConfig
from rewardroute.cli import app
from rewardroute.data.readers import read_routing
from rewardroute.data.schemas import RoutingRecord
from rewardroute.errors import DataError
from rewardroute.io import CheckpointedJsonl, write_jsonl_atomic
from rewardroute.zooter import collect as collect_module
from rewardroute.zooter.collect import CollectConfig, _index, collect, collect_async

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


def run(records, out, fake, **kw):
    return asyncio.run(collect_async(configs(), records, out, CollectConfig(max_tokens=8),
                                     transport=httpx.MockTransport(fake), retry=NO_WAIT, **kw))


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


class Gauge:
    """An async backend that counts the requests in flight at once; later queries answer sooner,
    so records complete out of input order."""

    def __init__(self):
        self.now = self.peak = self.calls = 0

    async def __call__(self, req: httpx.Request) -> httpx.Response:
        self.now += 1
        self.calls += 1
        self.peak = max(self.peak, self.now)
        try:
            q = json.loads(req.content)["messages"][-1]["content"]
            for _ in range(20 - int(q.split()[-1].rstrip(".")) % 7):
                await asyncio.sleep(0)
            return httpx.Response(200, json={"choices": [{"message": {"content": q}}]})
        finally:
            self.now -= 1


def test_requests_in_flight_stay_within_the_window(tmp_path):
    wide = [BackendConfig(name="wide", base_url="http://wide.test/v1", model="w", max_concurrency=100)]
    out, gauge = tmp_path / "c.jsonl", Gauge()
    res = asyncio.run(collect_async(wide, queries(30), out, CollectConfig(max_tokens=8),
                                    transport=httpx.MockTransport(gauge), retry=NO_WAIT, window=4))
    assert gauge.peak == 4 and gauge.calls == 30 and res["requested"] == 30  # the backend would take 100
    rows = read_routing(out)
    assert [r.id for r in rows] == [str(i) for i in range(30)]  # input order, each once
    assert all(r.responses == {"wide": r.query} for r in rows)


class Crash(FakeServers):
    """Answers `at` calls, then the process "dies": an error that is not a backend's."""

    def __init__(self, at: int):
        super().__init__(fail=set())
        self.at = at

    def __call__(self, req: httpx.Request) -> httpx.Response:
        if len(self.calls) >= self.at:
            raise RuntimeError("killed")
        return super().__call__(req)


def partial_of(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def partial_rows(out: Path) -> list[RoutingRecord]:
    return [RoutingRecord.model_validate_json(line) for line in partial_of(out).read_text(encoding="utf-8").splitlines()]


def test_a_crash_keeps_what_was_done_and_the_rerun_asks_only_the_rest(tmp_path):
    clean = tmp_path / "clean.jsonl"
    run(queries(10), clean, FakeServers(set()))
    out = tmp_path / "c.jsonl"
    run(queries(3), out, FakeServers(set()))
    finished = out.read_bytes()
    # windows of 2 records: 0-1 are done, 2-3 and 4-5 are asked (6 calls), 6 dies on its first
    with pytest.raises(RuntimeError, match="killed"):
        run(queries(10), out, Crash(at=6), window=2)
    assert out.read_bytes() == finished  # the finished file is untouched until it is replaced
    kept = partial_rows(out)
    assert [r.id for r in kept] == ["3", "4", "5"] and all(set(r.responses) == {"good", "flaky"} for r in kept)

    fake = FakeServers(set())
    res = run(queries(10), out, fake, window=2)
    assert res["requested"] == 8 and res["already_done"] == 12 and len(fake.calls) == 8
    assert {q for _, q in fake.calls} == {f"Say the number {i}." for i in range(6, 10)}
    assert read_routing(out) == read_routing(clean) and not partial_of(out).exists()


def test_a_torn_row_does_not_swallow_the_next_one(tmp_path):
    out = tmp_path / "c.jsonl"
    run(queries(3), out, FakeServers(set()))
    rows = out.read_text(encoding="utf-8").splitlines()
    out.unlink()
    partial_of(out).write_text(rows[0] + "\n" + rows[1][:20], encoding="utf-8")  # a crash mid-write
    with pytest.raises(RuntimeError):
        run(queries(3), out, Crash(at=2), window=1)  # record 1 is asked again and kept; 2 dies
    fake = FakeServers(set())
    assert run(queries(3), out, fake)["requested"] == 2 and {q for _, q in fake.calls} == {"Say the number 2."}
    assert [r.id for r in read_routing(out)] == ["0", "1", "2"]


def test_a_rerun_with_nothing_missing_asks_nothing_and_writes_the_same_bytes(tmp_path):
    out = tmp_path / "c.jsonl"
    run(queries(5), out, FakeServers(fail={"2"}))
    run(queries(5), out, FakeServers(set()))  # the retried row of "2" lies in the partial file
    finished = out.read_bytes()
    fake = FakeServers(set())
    res = run(queries(5), out, fake, window=2)
    assert fake.calls == [] and res["requested"] == 0 and res["already_done"] == 10
    assert out.read_bytes() == finished
    # what a run keeps of earlier rows: where each lies, never the row
    index = _index(CheckpointedJsonl(out))
    lines = finished.splitlines(keepends=True)
    starts = [sum(map(len, lines[:i])) for i in range(len(lines))]
    assert index == {str(i): (out, starts[i]) for i in range(5)}


def test_collect_streams_the_query_file(tmp_path, monkeypatch):
    fake = FakeServers(set())
    monkeypatch.setattr(collect_module, "BackendPool", lambda backends, transport=None, retry=None:
                        BackendPool(backends, transport=httpx.MockTransport(fake), retry=NO_WAIT))
    q = tmp_path / "q.jsonl"
    write_jsonl_atomic(q, [r.model_dump() for r in queries(5)])
    out = tmp_path / "c.jsonl"
    assert collect(configs(), q, out, CollectConfig(max_tokens=8), limit=3, window=2)["records"] == 3
    assert [r.id for r in read_routing(out)] == ["0", "1", "2"] and len(fake.calls) == 6
    q.write_text(q.read_text(encoding="utf-8") + '{"id": "9"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"q\.jsonl:6 field 'query'"):  # before any request
        collect(configs(), q, out, CollectConfig(max_tokens=8))
    assert len(fake.calls) == 6
    with pytest.raises(TypeError, match="walked twice"):
        run(iter(queries(2)), out, fake)


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
