"""Every document whystuck writes validates against its committed JSON
Schema (schema/*.json, generated from the Rust types): each fixture's
snapshot, its report in JSON and NDJSON, a live report, and watch's events.
Alerting pipelines can validate against the same files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import pytest
import whystuck

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted(p for p in (ROOT / "fixtures").iterdir() if (p / "snapshot.json").is_file())


def schema(name: str) -> Dict[str, Any]:
    return json.loads((ROOT / "schema" / f"{name}.json").read_text())


def run(*args: str) -> str:
    done = subprocess.run([whystuck.find_whystuck_bin(), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def validate(document: Any, name: str) -> None:
    jsonschema.validate(document, schema(name), cls=jsonschema.Draft202012Validator)


def test_there_are_fixtures_to_validate() -> None:
    assert len(FIXTURES) >= 20


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_and_its_reports_validate(fixture: Path) -> None:
    snapshot = fixture / "snapshot.json"
    validate(json.loads(snapshot.read_text()), "snapshot")
    validate(json.loads(run("--from", str(snapshot), "--json", "--fail-on", "never")), "report")
    lines: List[str] = run("--from", str(snapshot), "--format", "ndjson", "--fail-on", "never").splitlines()
    assert lines
    for line in lines:
        validate(json.loads(line), "ndjson-line")


def test_a_live_report_and_watch_events_validate() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    try:
        validate(json.loads(run("--json", "--interval", "200ms", "--fail-on", "never", str(sleeper.pid))), "report")
        events = run("watch", "--every", "200ms", "--format", "ndjson", str(sleeper.pid)).splitlines()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert any(json.loads(e)["event"] == "ended" for e in events), events
    for event in events:
        validate(json.loads(event), "watch-event")


def test_a_report_that_breaks_the_schema_is_caught() -> None:
    report = json.loads(run("--from", str(FIXTURES[0] / "snapshot.json"), "--json", "--fail-on", "never"))
    report["processes"][0]["verdict"] = "not-a-verdict"
    with pytest.raises(jsonschema.ValidationError):
        validate(report, "report")
