"""`honora-tts health|say|census`: output and exit codes."""

from __future__ import annotations

import json

import soundfile as sf
from client_testing import API_KEY, stale_worker

from honora_tts.cli import main as cli_main
from honora_tts.client.commands import census_main, health_main, say_main


def test_health_prints_the_build_and_exits_0(client, capsys):
    assert health_main([], client=client) == 0
    out = capsys.readouterr().out
    assert out.startswith("healthy: worker worker-1 runs handler v")
    assert "workers {'idle': 1" in out


def test_health_json(client, capsys):
    assert health_main(["--json"], client=client) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["status"] == "healthy" and payload["version"]["git_sha"] == "a" * 40


def test_health_of_a_stale_endpoint_exits_1(fake, client, capsys):
    fake.workers = [("old", stale_worker)]
    assert health_main([], client=client) == 1
    assert "StaleWorkerError" in capsys.readouterr().err


def test_say_writes_the_file(client, tmp_path, capsys, voices_dir):
    out = tmp_path / "hello.flac"
    code = say_main(["Hello world.", "--voice", "AI_Voice_Honora_Billy.wav", "-o", str(out)],
                    client=client)
    assert code == 0
    assert out.exists()
    assert f"wrote {out}" in capsys.readouterr().out


def test_say_usage_errors_exit_2(client, tmp_path, capsys, voices_dir):
    assert say_main(["Hello."], client=client) == 2  # no -o
    assert say_main(["Hello.", "--voice", "ghost.wav", "-o", str(tmp_path / "a.wav")],
                    client=client) == 2
    assert "ghost.wav" in capsys.readouterr().err
    assert say_main(["-o", str(tmp_path / "a.wav")], client=client) == 2
    assert say_main(["Hi.", "--language", "xx", "-o", str(tmp_path / "a.wav")],
                    client=client) == 2


def test_say_failed_job_exits_1(client, tmp_path, capsys):
    assert say_main(["FAIL this", "-o", str(tmp_path / "a.wav")], client=client) == 1
    assert "synthesis_failed" in capsys.readouterr().err


def test_say_sections_file_writes_each_section(client, tmp_path, capsys):
    sections = tmp_path / "sections.json"
    sections.write_text(json.dumps([
        {"id": "one", "text": "First."}, {"id": "two", "text": "Second."},
        {"id": "bad", "text": "FAIL"},
    ]))
    out = tmp_path / "out"
    code = say_main(["--sections-file", str(sections), "-o", str(out)], client=client)
    captured = capsys.readouterr()
    assert code == 1  # one section failed
    assert sorted(p.name for p in out.iterdir()) == ["one.wav", "two.wav"]
    assert sf.info(out / "one.wav").samplerate == 24_000
    assert "2/3 sections" in captured.out and "FAILED bad" in captured.err


def test_census_exit_codes(fake, client, capsys):
    assert census_main(["--probes", "2"], client=client) == 0
    assert "1 build(s)" in capsys.readouterr().out
    fake.add_worker("old", stale_worker)
    assert census_main(["--probes", "4", "--json"], client=client) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["stale"] is True and len(report["groups"]) == 2
    assert census_main(["--probes", "0"], client=client) == 2


def test_the_router_maps_configuration_errors_to_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("RUNPOD_ENDPOINT_ID", "abc")
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    assert cli_main(["health"]) == 2
    assert "RUNPOD_API_KEY" in capsys.readouterr().err


def test_a_refused_key_exits_2_without_printing_it(fake, client, capsys):
    fake.fail("runsync", 401)  # health jobs (no work) are submitted with /runsync
    assert health_main([], client=client) == 2
    captured = capsys.readouterr()
    assert "AuthenticationError" in captured.err
    assert API_KEY not in captured.err + captured.out
