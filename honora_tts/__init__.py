"""honora-tts: verified XTTS-v2 voice cloning on RunPod serverless."""
