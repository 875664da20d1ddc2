"""Quality assurance: the logic behind the notebooks, importable and tested.

- :mod:`~honora_tts.qa.verification`: deploy verification (census table, checks,
  troubleshooting, verdict, summary) — notebook 01; :mod:`~honora_tts.qa.verify_command` runs it as
  ``honora-tts verify``.
- :mod:`~honora_tts.qa.listening`, :mod:`~honora_tts.qa.listening_ui`,
  :mod:`~honora_tts.qa.statistics`, :mod:`~honora_tts.qa.audio_metrics`: listening tests
  (clips, blinded designs, SQLite ratings, the ipywidgets UI, MOS and A/B statistics,
  objective measures) — notebook 02.
- :mod:`~honora_tts.qa.latency`: latency campaigns and their plots — notebook 03.
- :mod:`~honora_tts.qa.speech`: speech measures and one verdict per clip (does it speak its
  text?), the speaks check of notebook 01, the release gate — notebook 04, ``honora-tts
  check-audio``, ``gate`` and ``calibrate-speech``.
- :mod:`~honora_tts.qa.notebook_runner`: papermill with checked parameters, HTML export.
- :mod:`~honora_tts.qa.connection`, :mod:`~honora_tts.qa.reference_voice`,
  :mod:`~honora_tts.qa.artifacts`: the endpoint a notebook talks to, a synthetic reference voice,
  writing results under ``artifacts/<notebook>/``.

Submodules are imported on demand: importing this package loads nothing heavy.
"""
