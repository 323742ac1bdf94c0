"""`email-assistant eval` end to end: the real CLI in a subprocess against the local model fake (plumbing only)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EVAL = Path(__file__).parent / "eval"
LAST_LINE = re.compile(r"^intent accuracy (\S+)%, route accuracy (\S+)% over (\d+) items \(model (.+)\)$")


def _eval(fake, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EA_", "GOOGLE_", "DATABASE_URL"))}
    env.update({"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": fake.base_url, "EA_LLM_MODEL": "fake-model",
                "EA_LLM_MAX_RETRIES": "0"})
    return subprocess.run([sys.executable, "-m", "server.cli", "eval", *args], env=env, cwd=ROOT, text=True,
                          capture_output=True, timeout=300)


def test_replies_slice_through_the_real_decision_path(model, tmp_path: Path) -> None:
    fake, script = model
    # A slice: bounces, auto-replies and opt-outs (decided by rules, mostly), then ordinary replies for the model.
    lines = [json.loads(line) for line in (EVAL / "replies.jsonl").read_text(encoding="utf-8").splitlines()]
    ruled = [r for r in lines if r["intent"] in ("bounce", "auto_reply", "unsubscribe")][::4][:6]
    picked = ruled + [r for r in lines if r not in ruled][:12]
    dataset = tmp_path / "slice.jsonl"
    dataset.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in picked) + "\n", encoding="utf-8")

    done = _eval(fake, "--dataset", str(dataset), "--out", str(tmp_path / "out"), "--limit", "15")
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    found = LAST_LINE.match(last)
    assert found, last
    assert found.group(3) == "15" and found.group(4) == "fake-model"
    for heading in ("precision", "Confusion", "Route accuracy", "Latency", "tokens per item"):
        assert heading in done.stdout

    results = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert results["model"] == "fake-model"
    items = results["items"]
    assert [i["id"] for i in items] == [r["id"] for r in picked[:15]]
    for item, line in zip(items, picked[:15], strict=True):
        assert (item["expected_intent"], item["expected_route"]) == (line["intent"], line["route"])
        assert item["ok"] == (item["predicted_intent"] == line["intent"] and item["predicted_route"] == line["route"])
    accuracy = sum(i["predicted_intent"] == i["expected_intent"] for i in items) / 15 * 100
    routes = sum(i["predicted_route"] == i["expected_route"] for i in items) / 15 * 100
    assert found.group(1) == f"{accuracy:.1f}" and found.group(2) == f"{routes:.1f}"
    assert results["summary"]["replies"]["intent_accuracy"] == pytest.approx(accuracy / 100, abs=1e-4)
    # The model was asked exactly for the items the rules left to it, and its reported usage was counted.
    by_model = [i for i in items if i["source"] == "model"]
    assert script.schemas().count("Classification") == len(by_model) > 0
    assert any(i["source"] == "rules" for i in items) and all(i["model_calls"] == 0 for i in items
                                                              if i["source"] == "rules")
    assert all(i["input_tokens"] > 0 and i["output_tokens"] > 0 for i in by_model)
    bounce = next(i for i in items if i["expected_intent"] == "bounce")
    assert bounce["predicted_intent"] == "bounce" and bounce["predicted_route"] == "close" and bounce["ok"]


def test_briefs_slice_through_drafting_and_the_guard(model, tmp_path: Path) -> None:
    fake, script = model
    script.drafts = [{"subject": "Hi [First Name]", "body": "Hello [First Name], we guarantee a 50% discount today."}]
    done = _eval(fake, "--dataset", str(EVAL / "briefs.jsonl"), "--out", str(tmp_path), "--limit", "2")
    assert done.returncode == 0, done.stderr
    assert "Guard pass rate: 50.0% first attempt, 100.0% after one retry" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == \
        "intent accuracy n/a, route accuracy n/a over 2 items (model fake-model)"
    items = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["items"]
    assert [(i["attempts"], i["guard_first_ok"], i["guard_ok"]) for i in items] == [(2, False, True), (1, True, True)]
    assert items[0]["model_calls"] == 2 and "Your previous draft was refused" in script.calls[1]["user"]


def test_unusable_dataset_is_refused(model, tmp_path: Path) -> None:
    fake, _script = model
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "hello"}\n', encoding="utf-8")
    done = _eval(fake, "--dataset", str(bad))
    assert done.returncode == 2 and "neither a reply" in done.stdout
