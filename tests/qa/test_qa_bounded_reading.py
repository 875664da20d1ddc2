"""Every audio file QA reads goes through the worker's bounded decode (issue 23 #6): a decode
bomb, a device behind a clip's name, a header that hides audio; and ``gate --voice NAME`` takes
only a folder name. All cheap: each is refused before any model loads."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from honora_tts import audio
from honora_tts.qa.audio_metrics import read_audio

_SPEC = importlib.util.spec_from_file_location(
    "honora_qa_voice_support", Path(__file__).resolve().parents[1] / "voices"
    / "voice_test_support.py")
assert _SPEC is not None and _SPEC.loader is not None
voice_support = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(voice_support)
flac_dense, flac_hiding_length = voice_support.flac_dense, voice_support.flac_hiding_length


def write_tone(path: Path, frequency: float, seconds: float = 0.6, rate: int = 24_000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(audio.encode((0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32),
                                  rate, "wav"))
    return path


def test_check_audio_refuses_a_decode_bomb_by_its_header(tmp_path, capsys):
    from honora_tts.cli import main

    bomb = tmp_path / "bomb.flac"
    bomb.write_bytes(flac_dense(655_350, 8, 120))  # 0.7 MB; 2.8 GB of float32 when trusted
    assert main(["check-audio", str(bomb), "--text", "Hello there."]) == 2
    err = capsys.readouterr().err
    assert "655350 Hz" in err and "192000" in err and str(bomb) in err


def test_a_clip_that_is_a_device_is_refused_without_reading_it(tmp_path):
    clip = tmp_path / "zero.wav"
    clip.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        read_audio(clip)


def test_audio_the_header_does_not_declare_is_refused(tmp_path):
    lying = tmp_path / "lying.flac"
    lying.write_bytes(flac_hiding_length(2.0, 60.0))
    with pytest.raises(ValueError, match="more audio than its header declares"):
        read_audio(lying)


def test_size_cap_is_named(tmp_path):
    from honora_tts.voices.audio_check import UnreadableAudio, read_audio_file

    clip = write_tone(tmp_path / "tone.wav", 440, seconds=1.0)
    with pytest.raises(UnreadableAudio, match="at most 0 MiB"):
        read_audio_file(clip, max_bytes=1000)


def test_ordinary_clips_read_as_before(tmp_path):
    clip = write_tone(tmp_path / "tone.wav", 440, seconds=1.0, rate=24_000)
    samples, rate = read_audio(clip)
    expected, _ = audio.decode(clip.read_bytes())
    assert rate == 24_000 and np.allclose(samples, expected, atol=1e-4)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(audio.encode(np.zeros(0, dtype=np.float32), 24_000, "wav"))
    samples, rate = read_audio(empty)
    assert samples.size == 0 and rate == 24_000


def test_gate_refuses_a_clip_that_is_a_device(tmp_path, capsys):
    from honora_tts.cli import main

    for build in ("baseline", "candidate"):
        write_tone(tmp_path / build / "en-greeting.wav", 300)
    (tmp_path / "candidate" / "en-greeting.wav").unlink()
    (tmp_path / "candidate" / "en-greeting.wav").symlink_to("/dev/zero")
    code = main(["gate", "--baseline", str(tmp_path / "baseline"), "--candidate",
                 str(tmp_path / "candidate"), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    assert "en-greeting.wav is not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "/tmp/x", ".hidden"])
def test_gate_refuses_a_voice_name_that_is_not_a_folder_name(tmp_path, capsys, name):
    from honora_tts.cli import main

    voice = write_tone(tmp_path / "voice.wav", 200, seconds=1.0)
    out = tmp_path / "sub" / "out"
    code = main(["gate", "--baseline", "localpod", "--candidate", "localpod", "--voice",
                 f"{name}={voice}", "--out", str(out), "--quiet"])
    assert code == 2
    assert "is not a folder name" in capsys.readouterr().err
    assert not (tmp_path / "sub").exists() and not (tmp_path / "x").exists()
