"""Fuzzing the importers: 240 mutated and truncated .tflite and .h5 files, no traceback or hang."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import assert_clean_error, tinyq
from support.env import SHARED
from support.fuzz_corpus import default_seeds, generate

HERE = Path(__file__).resolve().parent
PER_SEED = 60
WORKER_TIMEOUT = 900  # seconds for the whole corpus; a hang inside C code ends here


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    seeds = default_seeds(SHARED)
    missing = [str(s) for s in seeds if not s.exists()]
    assert not missing, f"fuzz seeds missing: {missing}"
    return generate(tmp_path_factory.mktemp("fuzz"), seeds, PER_SEED, seed=2026)


def run_worker(paths: list[Path]) -> dict[str, dict]:
    try:
        result = subprocess.run(
            [sys.executable, str(HERE / "support" / "fuzz_worker.py"), *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            cwd=HERE,
        )
    except subprocess.TimeoutExpired as err:
        started = [json.loads(line)["file"] for line in (err.stdout or b"").decode().splitlines()]
        pytest.fail(f"fuzz worker hung on {started[-1] if started else 'the first file'}")
    assert result.returncode == 0, f"fuzz worker died (exit {result.returncode}): {result.stderr[-2000:]}"
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return {r["file"]: r for r in records if r["event"] == "done"}


def test_corpus_is_large_and_varied(corpus):
    assert len(corpus) >= 200
    kinds = collections.Counter(p.stem.rsplit("_", 1)[1] for p in corpus)
    assert set(kinds) == {"truncated", "flipped", "header", "zeroed", "fields", "spliced", "config"}
    assert {p.suffix for p in corpus} == {".tflite", ".h5"}


def test_no_mutant_crashes_or_hangs_the_loaders(corpus):
    outcomes = run_worker(corpus)
    assert set(outcomes) == set(map(str, corpus)), "the worker skipped files"
    bad = {f: r["detail"] for f, r in outcomes.items() if r["outcome"] not in ("ok", "error")}
    assert not bad, "\n\n".join(f"{f}:\n{d}" for f, d in bad.items())
    errors = [r["detail"] for r in outcomes.values() if r["outcome"] == "error"]
    assert all(e.strip() and "\n" not in e and len(e) < 600 for e in errors)
    # both sides of the oracle are exercised: most mutants are refused, mild ones load and run
    counts = collections.Counter(r["outcome"] for r in outcomes.values())
    assert counts["error"] >= len(corpus) // 2 and counts["ok"] >= 10


def test_cli_prints_one_line_for_mutants(corpus):
    refused = [p for p in corpus if p.stem.endswith(("truncated", "header"))][::6][:10]
    assert len(refused) >= 8
    checked = 0
    for path in refused:
        result = tinyq("inspect", path)
        if result.returncode == 0:  # a header flip can be harmless; then inspect succeeds
            continue
        assert_clean_error(result, path.name)
        checked += 1
    assert checked >= 5
