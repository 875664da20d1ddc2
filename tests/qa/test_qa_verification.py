"""Deploy-verification decisions on hand-built census and check data."""

import json
import math

import pandas as pd
import pytest

from honora_tts.client import (
    Census,
    CensusProbe,
    EndpointHealth,
    JobFailed,
    JobTimedOut,
    PayloadTooLarge,
    StaleWorkerError,
)
from honora_tts.client.census_report import group_probes
from honora_tts.protocol import VersionRecord
from honora_tts.qa import verification as v

SHA = "0123456789abcdef0123456789abcdef01234567"
STALE = '"No sections provided" (the batch-only worker, handler version 1)'


def version(worker: str, *, sha: str = SHA, handler: int = 2, built: str = "2025-01-02T03:04:05Z",
            model: str = "xtts_v2") -> VersionRecord:
    return VersionRecord(handler_version=handler, package_version="0.1.0", git_sha=sha,
                         build_time=built, python_version="3.11.7", torch_version="2.11.0",
                         cuda_version="12.8", gpu_name="NVIDIA L4", device="cuda",
                         model_name=model, worker_id=worker)


def probe(worker: str | None, record: VersionRecord | None = None,
          stale: str | None = None, error: str | None = None) -> CensusProbe:
    return CensusProbe(request_id=f"req-{worker}", job_id="job", worker_id=worker,
                       version=record, stale_reason=stale, error=error)


def census(*probes: CensusProbe, workers: int | None = None) -> Census:
    health = (EndpointHealth(jobs={}, workers={"idle": workers, "running": 0, "ready": workers})
              if workers else None)
    return Census(probes=list(probes), groups=group_probes(list(probes)),
                  min_handler_version=2, endpoint_health=health)


def healthy_fleet() -> Census:
    return census(probe("w1", version("w1")), probe("w2", version("w2")),
                  probe("w1", version("w1")), workers=2)


def test_current_fleet_passes():
    rows = v.census_rows(healthy_fleet(), expected_git_sha=SHA[:12])
    assert [r.worker_id for r in rows] == ["w1", "w2"]
    assert all(r.ok for r in rows) and rows[0].probes == 2
    check = v.census_check(rows, healthy_fleet())
    assert check.status == v.Status.PASS and "one build" in check.summary
    table = v.census_table(rows)
    assert list(table["GPU"]) == ["NVIDIA L4", "NVIDIA L4"]
    assert list(table["status"]) == ["OK", "OK"]


def test_stale_worker_fails_by_name():
    data = census(probe("w1", version("w1")), probe("old-7", None, stale=STALE),
                  probe("w2", version("w2")), workers=3)
    rows = v.census_rows(data)
    stale = next(r for r in rows if r.worker_id == "old-7")
    assert {v.Flag.STALE, v.Flag.NO_VERSION, v.Flag.MIXED_VERSIONS} <= set(stale.flags)
    assert all(r.ok for r in rows if r.worker_id != "old-7")  # the majority build is fine
    check = v.census_check(rows, data)
    assert check.status == v.Status.FAIL and "old-7" in check.summary
    verdict = v.decide(rows, [check])
    assert verdict.status == v.Status.FAIL and verdict.stale_workers == ("old-7",)
    assert "old-7" in verdict.headline()
    advice = v.troubleshoot(rows, [check])
    keys = [a.key for a in advice]
    assert keys[0] == "stale_workers" and "mixed_versions" in keys
    assert "unique tag" in advice[0].fix and "scale the workers to 0" in advice[0].fix


def test_old_handler_version_is_stale():
    rows = v.census_rows(census(probe("w1", version("w1", handler=1))), min_handler_version=2)
    assert v.Flag.OLD_HANDLER in rows[0].flags
    assert v.stale_workers(rows, []) == ["w1"]


def test_unknown_sha_points_at_build_args():
    rows = v.census_rows(census(probe("w1", version("w1", sha="unknown", built="unknown"))))
    assert rows[0].flags == (v.Flag.UNKNOWN_SHA,)
    advice = v.troubleshoot(rows, [v.census_check(rows)])
    assert [a.key for a in advice] == ["unknown_sha"]
    assert "--build-arg GIT_SHA" in advice[0].fix and "BUILD_TIME" in advice[0].fix


def test_unknown_build_time_alone_only_warns():
    rows = v.census_rows(census(probe("w1", version("w1", built="unknown", model="tiny-xtts"))))
    assert rows[0].ok and any("build time" in w for w in rows[0].warnings)
    check = v.census_check(rows)
    assert check.status == v.Status.PASS
    verdict = v.decide(rows, [check])
    assert verdict.passed and any("noise" in w for w in verdict.warnings)


def test_expected_sha_is_compared_by_prefix():
    assert v.shas_match(SHA, SHA[:7]) and v.shas_match(SHA[:12], SHA)
    assert not v.shas_match(SHA, SHA[:6])  # too short to name a commit
    assert not v.shas_match("unknown", "unknown")
    rows = v.census_rows(healthy_fleet(), expected_git_sha="fedcba9876543")
    assert all(v.Flag.SHA_MISMATCH in r.flags for r in rows)
    assert [a.key for a in v.troubleshoot(rows, [])] == ["sha_mismatch"]


def test_mixed_versions_flag_the_minority():
    data = census(probe("w1", version("w1")), probe("w2", version("w2")),
                  probe("w3", version("w3", sha="f" * 40)))
    rows = v.census_rows(data)
    flagged = [r.worker_id for r in rows if not r.ok]
    assert flagged == ["w3"]
    check = v.census_check(rows, data)
    assert "2 builds answer" in check.summary


def test_even_split_flags_every_worker():
    rows = v.census_rows(census(probe("w1", version("w1")),
                                probe("w2", version("w2", sha="f" * 40))))
    assert all(v.Flag.MIXED_VERSIONS in r.flags for r in rows)


def test_nobody_answering_fails():
    data = census(probe(None, error="EndpointUnavailable: connection refused"))
    rows = v.census_rows(data)
    check = v.census_check(rows, data)
    assert rows == [] and check.status == v.Status.FAIL
    assert [a.key for a in v.troubleshoot(rows, [check])] == ["unreachable"]


def test_workers_not_seen_warn():
    data = census(probe("w1", version("w1")), workers=3)
    check = v.census_check(v.census_rows(data), data)
    assert check.status == v.Status.WARN and "1 of 3" in check.summary


class FakeResult:
    """What synthesis_check reads from a SynthesisResult."""

    def __init__(self, record: VersionRecord, duration_s: float = 1.5):
        from honora_tts.client import Timings

        self.version = record
        self.duration_s = duration_s
        self.worker_id = record.worker_id
        self.request_id = "req-1"
        self.job_id = "job-1"
        self.timings = Timings(client_ms=800.0, delay_ms=20.0, execution_ms=700.0)


def test_synthesis_check_grades_results_and_errors():
    check, result = v.synthesis_check("tiny", lambda: FakeResult(version("w1")),
                                      expected_git_sha=SHA)
    assert check.status == v.Status.PASS and result is not None
    assert check.details["execution_ms"] == 700.0 and check.worker_ids == ("w1",)

    check, _ = v.synthesis_check("tiny", lambda: FakeResult(version("w1")),
                                 expected_git_sha="abcdef0123")
    assert check.status == v.Status.FAIL and "git sha" in check.summary

    def stale():
        raise StaleWorkerError(STALE, worker_id="old-7")

    check, result = v.synthesis_check("tiny", stale)
    assert check.status == v.Status.FAIL and result is None
    assert check.error_type == "StaleWorkerError" and check.worker_ids == ("old-7",)
    assert v.stale_workers([], [check]) == ["old-7"]


@pytest.mark.parametrize(("error", "key"), [
    (PayloadTooLarge(12_000_000, 10_000_000, "/run"), "voice_embedded"),
    (JobFailed("voice_embedded", "reference audio embedded"), "voice_embedded"),
    (JobFailed("worker_error", "EOF when reading a line"), "voice_embedded"),
    (JobFailed("worker_error", "No sections provided"), "stale_workers"),
    (JobTimedOut("deadline passed"), "timeouts"),
    (JobFailed("voice_fetch_failed", "404"), "voice_fetch"),
    (JobFailed("synthesis_failed", "CUDA out of memory"), "worker_errors"),
])
def test_troubleshooting_follows_what_failed(error, key):
    check, _ = v.synthesis_check("voice", lambda: (_ for _ in ()).throw(error))
    advice = v.troubleshoot([], [check])
    assert [a.key for a in advice] == [key]
    assert advice[0].evidence and advice[0].fix


def stress_frame(errors: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame([{
        "ok": e is None, "error_type": e, "error_code": None, "error": e and f"{e} happened",
        "worker_id": f"w{i % 2}", "client_ms": 100.0 + i,
    } for i, e in enumerate(errors)])


def test_stress_check():
    passed = v.stress_check(stress_frame([None] * 10), 10)
    assert passed.status == v.Status.PASS and passed.details["workers_used"] == ["w0", "w1"]
    failed = v.stress_check(stress_frame([None] * 8 + ["JobTimedOut", "JobTimedOut"]), 10)
    assert failed.status == v.Status.FAIL and "2 of 10 failed" in failed.summary
    assert [a.key for a in v.troubleshoot([], [failed])] == ["timeouts"]
    assert v.stress_check(pd.DataFrame(), 10).status == v.Status.FAIL


def test_verdict_and_summary_are_json(tmp_path):
    rows = v.census_rows(healthy_fleet(), expected_git_sha=SHA)
    checks = [v.census_check(rows, healthy_fleet()),
              v.stress_check(stress_frame([None, None]), 2)]
    verdict = v.decide(rows, checks)
    assert verdict.passed and verdict.headline() == "VERDICT: PASS"
    data = v.summary(verdict=verdict, rows=rows, checks=checks, advice=[],
                     endpoint={"endpoint_id": "abc"}, extra={"nan": math.nan})
    path = v.write_summary(data, tmp_path / "out" / "summary.json")
    loaded = json.loads(path.read_text())
    assert loaded["verdict"] == "PASS" and loaded["passed"] is True
    assert loaded["nan"] is None and loaded["workers"][0]["worker_id"] == "w1"
    assert "PASS" in v.verdict_html(verdict)


def test_no_checks_is_not_a_pass():
    assert v.decide([], []).status == v.Status.FAIL


def test_noise_banner_only_for_tiny_models():
    assert "NOISE" in v.noise_banner_html("tiny-xtts-seed0 (random weights)")
    assert v.noise_banner_html("xtts_v2") == ""


# ---------------------------------------------------------------------------- issue 11 #9

HOSTILE = '<img src=x onerror="alert(1)">tiny</td><script>steal()</script>'


def test_census_html_escapes_what_workers_report() -> None:
    """Issue 11 #9: pandas Styler does not escape, so a worker's model name (or any reported
    string) went into the notebook and the HTML report as markup."""
    table = pd.DataFrame([{"worker": "w1", "model": HOSTILE, "status": "FLAGGED",
                           "flags": "<b>x</b>", "warnings": ""}])
    rendered = v.styled_census(table).to_html()
    assert "<script>" not in rendered and "<img" not in rendered and "<b>x</b>" not in rendered
    assert "&lt;script&gt;steal()&lt;/script&gt;" in rendered
    assert "background-color: #fdd" in rendered  # still coloured


def test_noise_banner_escapes_the_model_name() -> None:
    banner = v.noise_banner_html(HOSTILE)
    assert "NOISE" in banner and "<script>" not in banner and "<img" not in banner
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;tiny" in banner
