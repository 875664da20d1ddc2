"""`honora-tts COMMAND ...`: each command lives with the concept it belongs to and parses its own
arguments; this module only routes."""

from __future__ import annotations

import importlib
import sys

from honora_tts.settings import SettingsError

#: name -> (module, function taking argv and returning an exit code, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "health": ("honora_tts.client.commands", "health_main", "health of the endpoint (one job)"),
    "say": ("honora_tts.client.commands", "say_main", "synthesize TEXT into an audio file"),
    "census": ("honora_tts.client.commands", "census_main", "which builds the workers run"),
    "localpod": ("honora_tts.localpod.commands", "main", "run a local RunPod-compatible endpoint"),
    "verify": ("honora_tts.qa.verify_command", "main", "deploy verification (notebook 01) + verdict"),
    "check-audio": ("honora_tts.qa.speech.commands", "check_audio_main",
                    "does an audio file speak its text? verdict + measures"),
    "gate": ("honora_tts.qa.speech.commands", "gate_main",
             "release gate: golden set, baseline vs candidate, paired deltas"),
    "calibrate-speech": ("honora_tts.qa.speech.commands", "calibrate_main",
                         "calibrate the speech checks on espeak-ng clips"),
    "build": ("honora_tts.rollout.build", "main", "docker build the worker image, tag = commit"),
    "rollout": ("honora_tts.rollout.commands", "rollout_main",
                "change the endpoint's image, watch every worker onto it, verify"),
    "rollback": ("honora_tts.rollout.commands", "rollback_main",
                 "put back the image the last rollout replaced"),
    "tiny-model": ("honora_tts.model.checkpoints", "tiny_model_main",
                   "build the offline tiny XTTS checkpoint"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: honora-tts COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, _, text) in COMMANDS.items()]
    lines += ["", "Run `honora-tts COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        from honora_tts.version import package_version

        print(f"honora-tts {package_version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"honora-tts: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, function_name, _ = COMMANDS[name]
    function = getattr(importlib.import_module(module_name), function_name)
    try:
        return int(function(rest) or 0)
    except SettingsError as exc:
        print(f"honora-tts {name}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
