"""RunPod serverless entry point (the file RunPod's docs and the Dockerfile run). All logic lives
in :mod:`honora_tts.worker`; ``python -m honora_tts.worker`` does the same.

Local checks (RunPod's official paths):
    python worker/handler.py --test_input '{"input": {"action": "health"}}'
    python worker/handler.py --rp_serve_api --rp_api_port 8000
"""

from honora_tts.worker import main

if __name__ == "__main__":
    main()
