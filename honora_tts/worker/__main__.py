"""``python -m honora_tts.worker``: the RunPod worker (see :mod:`honora_tts.worker.start`)."""

from honora_tts.worker.start import main

main()
