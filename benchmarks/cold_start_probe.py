"""Run as a script by P8 (``python cold_start_probe.py``, not ``-m``: the package's own imports
must not count as interpreter start). Does what ``worker/handler.py`` does before its first job,
phase by phase, and prints one JSON line of wall-clock timestamps (``time.time()``)."""

import json
import sys
import time

marks = {"main": time.time()}


def mark(name: str) -> None:
    marks[name] = time.time()


def main() -> None:
    import runpod  # noqa: F401 - the worker's first import

    mark("runpod")
    from honora_tts import model as xtts_model
    from honora_tts import worker

    mark("honora_worker")
    xtts_model.skip_unused_sklearn_import()
    import TTS.tts.models.xtts  # noqa: F401 - what loading the model imports

    mark("coqui_tts")
    model = xtts_model.load_model("tiny")
    mark("model_load")
    adapter = worker.build_adapter(loader=lambda: model)  # default voice latents, one generation
    mark("warm_up")
    answer = adapter.handle({"id": "cold-1", "input": {
        "text": "Hello.", "language": "en", "params": {"max_new_tokens": 8, "seed": 1},
    }})
    mark("first_job")
    if answer.get("status") != "ok":
        raise SystemExit(f"first job failed: {answer.get('error')}")
    print(json.dumps({"marks": marks, "model": model.name}), flush=True)


if __name__ == "__main__":
    sys.stdin.close()
    main()
