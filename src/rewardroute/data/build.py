"""`rewardroute data build`: public sources -> standard preference pairs and routing tables.

Output layout (all written atomically):

    OUT/prefs/{train,valid,test}.jsonl     PreferencePair rows, split by prompt hash
    OUT/routing/<table>.jsonl              RoutingRecord rows
    OUT/SUMMARY.json                       counts, parameters, skipped sources
    OUT/BUILD.md                           how every pair and row was formed
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError, DataError, SourceMissingError
from ..fingerprint import code_identity
from ..io import to_json_line, write_json_atomic, write_jsonl_atomic, write_text_atomic
from .schemas import PreferencePair, RoutingRecord, render_prompt
from .sources import DEFAULT_DOMAINS, PAIR_BUILDERS, ROUTING_BUILDERS, Builder, PairBuilder, RoutingBuilder
from .split import RULE as SPLIT_RULE
from .split import SPLITS, TRAIN_BELOW, VALID_BELOW, Split, affix_digests, digest, merged_digest_groups, split_of
from .split_writer import jsonl_files

ENV_SOURCE = "REWARDROUTE_DATA"
DATASETS_FOLDER = "datasets"  # the shipped public sources, at the repository root


# ---------------------------------------------------------------- where the sources are

def repository_datasets_dir() -> Path | None:
    """`datasets/` of the checkout this package runs from (editable install or source tree), if any."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent / DATASETS_FOLDER
    return None


def source_dir_candidates() -> list[Path]:
    """Where to look for the public sources when --source is not given, in order."""
    out = [Path(os.environ[ENV_SOURCE])] if os.environ.get(ENV_SOURCE) else []
    repo = repository_datasets_dir()
    if repo is not None:
        out.append(repo)
    return out


def default_source_dir() -> Path:
    """$REWARDROUTE_DATA, else the repository's `datasets/` (found from the package, not the cwd)."""
    if os.environ.get(ENV_SOURCE):
        return Path(os.environ[ENV_SOURCE])  # explicit: use it even if missing, and say so later
    for cand in source_dir_candidates():
        if cand.is_dir():
            return cand.resolve()
    looked = ", ".join(str(c) for c in source_dir_candidates()) or "no repository checkout around the package"
    raise SourceMissingError(
        f"no public sources found (looked in: {looked}). Pass --source DIR or set ${ENV_SOURCE} to a folder "
        f"laid out like the repository's {DATASETS_FOLDER}/ (each folder's SOURCE.md names its origin).")


# ---------------------------------------------------------------- choosing builders

def parse_domains(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """"safety,code" -> ("safety", "code"); None -> the five default domains."""
    if spec is None:
        return DEFAULT_DOMAINS
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [n for n in names if n not in PAIR_BUILDERS]
    if unknown:
        raise ConfigError(f"unknown domain(s) {', '.join(unknown)}; known: {', '.join(PAIR_BUILDERS)}")
    if not names:
        raise ConfigError("no domain given")
    return tuple(dict.fromkeys(names))


def make_builder(cls: type[Builder], seed: int) -> Builder:
    """An instance with default parameters and the build seed (for builders that sample)."""
    builder = cls()
    return replace(builder, seed=seed) if any(f.name == "seed" for f in fields(builder)) else builder


# ---------------------------------------------------------------- statistics

def longer_score(p: PreferencePair) -> float:
    """1 if the chosen answer is the longer one (in characters), 0.5 on a tie, else 0."""
    return 1.0 if len(p.chosen) > len(p.rejected) else 0.5 if len(p.chosen) == len(p.rejected) else 0.0


def longer_wins(pairs: Iterable[PreferencePair]) -> float | None:
    """Share of pairs whose chosen answer is the longer one (in characters; a tie counts half).

    The accuracy of the "prefer the longer answer" baseline that any reward model must beat.
    """
    n = score = 0
    for p in pairs:
        n += 1
        score += longer_score(p)
    return score / n if n else None


def pair_stats(pairs: Sequence[PreferencePair], *, with_all: bool = False) -> dict[str, dict[str, Any]]:
    """Per domain (and "all" with `with_all`): count, mean chosen/rejected length in chars and
    the longer-wins accuracy."""
    groups: dict[str, list[PreferencePair]] = defaultdict(list)
    for p in pairs:
        groups[p.domain].append(p)
    groups = {d: groups[d] for d in sorted(groups)}
    if with_all and pairs:
        groups["all"] = list(pairs)
    return {name: {
        "pairs": len(ps),
        "mean_chosen_chars": round(sum(len(p.chosen) for p in ps) / len(ps), 1),
        "mean_rejected_chars": round(sum(len(p.rejected) for p in ps) / len(ps), 1),
        "longer_wins": round(longer_wins(ps) or 0.0, 4),
    } for name, ps in groups.items()}


# ---------------------------------------------------------------- the build

# The modules whose code decides what a build writes (pairs, split, rendering). A data folder
# built by other code (an older split rule, say) is stale: `ensure_built` refuses it.
BUILDER_CODE = ("data/build.py", "data/split.py", "data/schemas.py", "data/readers.py", "data/sources")


def builder_identity() -> str:
    """sha256 of the code that builds data folders, recorded in SUMMARY.json as `builder`."""
    return "sha256:" + code_identity(*BUILDER_CODE)


@dataclass
class Tally:
    """The pairs of one domain written to one split: count, longer-wins score, and digests of
    their distinct prompts and group keys (16 bytes each, not the texts)."""

    pairs: int = 0
    longer: float = 0.0
    prompts: set[bytes] = field(default_factory=set)
    groups: set[bytes] = field(default_factory=set)

    def add(self, p: PreferencePair) -> None:
        self.pairs += 1
        self.longer += longer_score(p)
        self.prompts.add(digest(render_prompt(p.prompt)))
        self.groups.add(digest(p.group_key()))


@dataclass
class BuildReport:
    """What a build produced; `summary()` is SUMMARY.json. It keeps running statistics of the
    pairs written (`tallies`), never the pairs themselves."""

    source_dir: Path
    out_dir: Path
    domains: tuple[str, ...]
    seed: int
    tallies: dict[str, dict[Split, Tally]] = field(default_factory=dict)  # domain -> split -> Tally
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    routing: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    rules: dict[str, str] = field(default_factory=dict)

    def add(self, split: Split, p: PreferencePair) -> None:
        """Count a pair written to `split`."""
        self.tallies.setdefault(p.domain, {s: Tally() for s in SPLITS})[split].add(p)

    def _domains_seen(self) -> list[str]:
        """Domains with pairs, in the order they first appear in train, then valid, then test (the
        order SUMMARY.json lists them in, as when it was counted from the split files)."""
        return list(dict.fromkeys(d for s in SPLITS for d, row in self.tallies.items() if row[s].pairs))

    def counts(self) -> dict[str, dict[str, int]]:
        """domain -> split -> pairs (plus "total")."""
        out: dict[str, dict[str, int]] = {d: {s: 0 for s in SPLITS} for d in self.domains}
        for d in self._domains_seen():
            out[d] = {s: self.tallies[d][s].pairs for s in SPLITS}
        for row in out.values():
            row["total"] = sum(row[s] for s in SPLITS)
        return out

    def unit_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """domain -> split -> {"prompts": distinct prompts, "groups": distinct group keys}."""
        return {d: {s: {"prompts": len(self.tallies[d][s].prompts), "groups": len(self.tallies[d][s].groups)}
                    for s in SPLITS} for d in self._domains_seen()}

    def longer_wins_test(self) -> dict[str, float]:
        """domain -> longer-wins share of its test pairs (domains with test pairs, sorted)."""
        test = {d: row["test"] for d, row in self.tallies.items() if row["test"].pairs}
        return {d: round(test[d].longer / test[d].pairs, 4) for d in sorted(test)}

    def summary(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "rewardroute_version": __version__,
            "builder": builder_identity(),
            "source_dir": str(self.source_dir),
            "seed": self.seed,
            "domains": list(self.domains),
            "split": {"rule": SPLIT_RULE, "train": TRAIN_BELOW, "valid": VALID_BELOW - TRAIN_BELOW,
                      "test": 100 - VALID_BELOW},
            "pairs": counts,
            "prompts": self.unit_counts(),
            "pairs_total": {s: sum(c[s] for c in counts.values()) for s in (*SPLITS, "total")},
            "longer_wins_test": self.longer_wins_test(),
            "sources": self.sources,
            "routing": self.routing,
            "skipped": self.skipped,
            "files": {
                "prefs": [f"prefs/{s}.jsonl" for s in SPLITS],
                "routing": [f"routing/{n}.jsonl" for n in self.routing],
            },
        }


def check_output_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse to write into a non-empty folder unless told to: a build replaces `prefs/` wholesale."""
    if overwrite or not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError(f"output {out_dir} is a file, not a folder")
    if any(out_dir.iterdir()):
        raise ConfigError(f"output folder {out_dir} is not empty: a build would replace its files. "
                          "Build into a new folder, or pass --overwrite to replace them.")


def build_dataset(source_dir: str | Path, out_dir: str | Path, *, domains: str | Sequence[str] | None = None,
                  routing: bool = True, skip_missing: bool = False, seed: int = 0, overwrite: bool = False,
                  on_step: Callable[[str], None] | None = None,
                  warn: Callable[[str], None] | None = None) -> BuildReport:
    """Build every requested domain (and the routing tables) from `source_dir` into `out_dir`.

    A missing source raises SourceMissingError, or with `skip_missing` is reported through `warn`
    and left out. `on_step(name)` is called once per builder, before it first runs (for a progress
    bar; pair builders run a second time to write their pairs, unreported). A non-empty `out_dir`
    is refused unless `overwrite`.
    """
    source_dir, out_dir = Path(source_dir).resolve(), Path(out_dir)
    check_output_dir(out_dir, overwrite)
    if not source_dir.is_dir():
        raise SourceMissingError(f"source folder {source_dir} does not exist. Pass --source DIR or set "
                                 f"${ENV_SOURCE} to a folder laid out like the repository's {DATASETS_FOLDER}/.")
    report = BuildReport(source_dir=source_dir, out_dir=out_dir, domains=parse_domains(domains), seed=seed)
    on_step = on_step or (lambda _name: None)
    warn = warn or (lambda _msg: None)

    plan = _plan_pairs(report, skip_missing, on_step, warn)
    _write_pairs(report, plan)
    if routing:
        _build_routing(report, skip_missing, on_step, warn)
    write_json_atomic(out_dir / "SUMMARY.json", report.summary())
    write_text_atomic(out_dir / "BUILD.md", render_build_md(report))
    return report


# The pairs are built twice, one builder at a time, so that no more than one builder's pairs are
# ever in memory: a first pass learns what the split needs (group keys and prompt-affix digests),
# a second builds them again and streams each to its split file. Builders are deterministic for a
# seed (their sampling is seeded by the build seed), so the second pass gives the same pairs in the
# same order; `IdsDigest` checks that it did.

@dataclass
class PairPlan:
    """What the first pass learns: the builders that ran (with a digest of the ids they gave) and
    the split of every group key."""

    builders: list[tuple[PairBuilder, bytes]]
    split_of_key: dict[str, Split]


def _plan_pairs(report: BuildReport, skip_missing: bool, on_step: Callable[[str], None],
                warn: Callable[[str], None]) -> PairPlan:
    """First pass: run every builder, keep per group key the digests of its prompts' affixes, and
    check that pair ids are unique; the pairs themselves are dropped after each builder."""
    affixes_of: dict[str, set[bytes]] = {}
    ids = UniqueIds()
    domains_seen: set[str] = set()
    ran: list[tuple[PairBuilder, bytes]] = []
    for domain in report.domains:
        for cls in PAIR_BUILDERS[domain]:
            builder = make_builder(cls, report.seed)
            on_step(f"{domain}/{builder.name}")
            built = _run(builder, report.source_dir, skip_missing, report, warn)
            if built is None:
                continue
            seen = IdsDigest()
            for p in built:  # once: a builder may stream its pairs
                affixes_of.setdefault(p.group_key(), set()).update(affix_digests(render_prompt(p.prompt)))
                ids.add(p.id)
                seen.add(p.id)
                domains_seen.add(p.domain)
            ran.append((builder, seen.digest()))
            report.sources[builder.name] = {"domain": domain, "pairs": seen.count, "origin_url": builder.origin_url,
                                            "params": builder.params(), **_notes(builder)}
            report.rules[f"{domain}/{builder.name}"] = builder.rules
        if domain not in domains_seen:
            warn(f"domain '{domain}' has no pairs")
    ids.check()
    roots = merged_digest_groups(affixes_of.items())
    return PairPlan(ran, {key: split_of(root) for key, root in roots.items()})


def _write_pairs(report: BuildReport, plan: PairPlan) -> None:
    """Second pass: run the builders again and append each pair to its split file, counting it in
    the report; the split files replace the old ones only once all are written."""
    with jsonl_files(report.out_dir / "prefs", SPLITS) as files:
        for builder, ids_digest in plan.builders:
            seen = IdsDigest()
            for p in builder.build(report.source_dir):
                split = plan.split_of_key.get(p.group_key())
                if split is None:  # a pair the first run did not give
                    _changed(builder)
                seen.add(p.id)
                files[split].write(to_json_line(p))
                report.add(split, p)
            if seen.digest() != ids_digest:  # raised inside the block: no split file is replaced
                _changed(builder)


def _changed(builder: PairBuilder) -> None:
    raise DataError(f"builder '{builder.name}' gave other pairs on its second run: a builder must "
                    "give the same pairs for the same sources and seed")


class IdsDigest:
    """Which pairs a builder gave, in which order (by id), and how many: taken as they stream."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.count = 0

    def add(self, pair_id: str) -> None:
        self._h.update(pair_id.encode("utf-8") + b"\0")
        self.count += 1

    def digest(self) -> bytes:
        return self._h.digest()


def _build_routing(report: BuildReport, skip_missing: bool, on_step: Callable[[str], None],
                   warn: Callable[[str], None]) -> None:
    for table, cls in ROUTING_BUILDERS.items():
        builder = make_builder(cls, report.seed)
        on_step(f"routing/{table}")
        records = _run(builder, report.source_dir, skip_missing, report, warn)
        if records is None:
            continue
        write_jsonl_atomic(report.out_dir / "routing" / f"{table}.jsonl", records)
        report.routing[table] = {"rows": len(records), "models": len(_models(records)),
                                 "origin_url": builder.origin_url, "params": builder.params(), **_notes(builder)}
        report.rules[f"routing/{table}"] = builder.rules


def _run(builder: PairBuilder | RoutingBuilder, source_dir: Path, skip_missing: bool, report: BuildReport,
         warn: Callable[[str], None]) -> list | None:
    try:
        return builder.build(source_dir)
    except SourceMissingError as e:
        if not skip_missing:
            raise
        report.skipped.append({"builder": builder.name, "reason": str(e)})
        warn(f"skipped: {e}")
        return None


def _notes(builder: Builder) -> dict[str, Any]:
    notes = builder.notes()
    return {"notes": notes} if notes else {}


class UniqueIds:
    """Pair ids seen so far, as digests; the ids that came twice are kept to name them."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self.dupes: dict[str, None] = {}

    def add(self, pid: str) -> None:
        d = digest(pid)
        if d in self.seen:
            self.dupes[pid] = None
        self.seen.add(d)

    def check(self) -> None:
        if self.dupes:
            dupes = list(self.dupes)
            raise DataError(f"{len(dupes)} duplicate pair ids, e.g. {dupes[:3]}: a builder's id scheme is not unique")


def _models(records: Sequence[RoutingRecord]) -> set[str]:
    return {m for r in records for m in r.scores}


# ---------------------------------------------------------------- BUILD.md

def render_build_md(report: BuildReport) -> str:
    summary = report.summary()
    lines = [
        "# rewardroute data build",
        "",
        f"Built by rewardroute {__version__} with seed {report.seed} from the public sources "
        f"(domains: {', '.join(report.domains)}). Rebuild with "
        f"`rewardroute data build --source <datasets> --out <dir> --domains {','.join(report.domains)}"
        f" --seed {report.seed}`: the output is identical for the same sources and seed.",
        "",
        "## Format",
        "",
        "- `prefs/{train,valid,test}.jsonl`: one preference pair a line, "
        "`{\"id\", \"prompt\", \"chosen\", \"rejected\", \"domain\", \"source\", \"group\"}` "
        "(`group`: the split group key, null when it is the prompt itself).",
        "- `prompt`: safety prompts are OpenAI-style messages `[{\"role\", \"content\"}]` (the whole "
        "user/assistant dialogue before the answer); single-turn prompts are plain strings, the same text "
        "as the `query` of the matching routing table, so where the group key is the prompt a query "
        "gets the same split in both. "
        "`chosen`/`rejected` are the final answers (stripped).",
        "- `id` is `<source>:<prompt key>:<chosen>><rejected>` (model, system or summary keys; code answers "
        "add `#<hash>` of the text), or `<source>:<key>` for hh-rlhf lines. Ids are unique and stable.",
        f"- {SPLIT_RULE.capitalize()} (prompt text = `render_prompt(prompt)`), so a prompt, its story, "
        "its task in another language or its opening turn never appears in two splits.",
        "- `routing/<table>.jsonl`: one routing record a line, "
        "`{\"id\", \"query\", \"tags\", \"responses\"?, \"scores\"}`; `query` is the plain query text.",
        "- Caps pick pairs with a seeded shuffle keyed by `<seed>:<source>:<prompt key>` that spreads the "
        "picks: an answer (or model) is used again only when no eligible pair of unused ones is left. "
        "Code tasks with hundreds of answers first draw a seeded pool of 4 x cap passing and 4 x cap "
        "failing answers.",
        "",
        "## Pairs per domain and split",
        "",
        "Pairs (prompts, groups) per split: test intervals are clustered by group, so the group count "
        "is what bounds how sure a test figure can be.",
        "",
        "| domain | train | valid | test | total | longer answer wins (test) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    units = summary["prompts"]
    for domain, c in summary["pairs"].items():
        lw = summary["longer_wins_test"].get(domain)
        u = units.get(domain, {})  # a domain whose source was skipped has no pairs
        cells = [f"{c[s]} ({u.get(s, {}).get('prompts', 0)}, {u.get(s, {}).get('groups', 0)})" for s in SPLITS]
        lines.append(f"| {domain} | {' | '.join(cells)} | {c['total']} | {'' if lw is None else f'{lw:.3f}'} |")
    t = summary["pairs_total"]
    lines += [f"| **all** | {t['train']} | {t['valid']} | {t['test']} | {t['total']} | |", "",
              "## How the pairs were formed", ""]
    for name, info in report.sources.items():
        lines += [f"### {info['domain']} / {name}", "",
                  f"Origin: {info['origin_url']}. Pairs: {info['pairs']}. Parameters: "
                  f"`{_params(info['params'])}`.", "", report.rules[f"{info['domain']}/{name}"], ""]
    if report.routing:
        lines += ["## Routing tables", ""]
        for table, info in report.routing.items():
            lines += [f"### routing/{table}.jsonl", "",
                      f"Origin: {info['origin_url']}. Rows: {info['rows']}, models: {info['models']}.", "",
                      report.rules[f"routing/{table}"], ""]
    if report.skipped:
        lines += ["## Skipped (source missing)", ""]
        lines += [f"- {s['builder']}: {s['reason']}" for s in report.skipped]
        lines.append("")
    return "\n".join(lines)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "none"
