"""Speech measures: does a clip speak its text, whole, in the right voice?

One concept per module:

- :mod:`.languages`: per-language facts (XTTS's split limits, espeak-ng voices, number words).
- :mod:`.text_normalization`: the normalisation applied before WER/CER (case, punctuation,
  numbers).
- :mod:`.predicted_quality`: DNSMOS P.835 and P.808 (``speechmos``, ONNX on the CPU).
- :mod:`.asr`: speech recognisers behind one interface (pocketsphinx offline, faster-whisper
  when installed) and pocketsphinx's forced-alignment text check.
- :mod:`.intelligibility`: WER and CER (``jiwer``).
- :mod:`.completeness`: duration against the text's speaking-rate bounds; audio after the last
  recognised word.
- :mod:`.thresholds`: the calibrated thresholds (``calibration.json``) and which backend is
  trusted to judge text for which language.
- :mod:`.clip_measures`: every measure of one clip, each naming its backend and model.
- :mod:`.speech_verdict`: one verdict per clip with its evidence, and the text check apart.
- :mod:`.espeak`: clips spoken by espeak-ng and the degraded cases (noise, babble, cuts).
- :mod:`.calibration`: ``honora-tts calibrate-speech``: thresholds from espeak-ng clips and
  the calibration table in ``docs/speech_checks.md``.
- :mod:`.speaks_check`: the "speaks" check of deploy verification.
- :mod:`.golden_set` and :mod:`.release_gate`: ``honora-tts gate``, baseline against
  candidate.
- :mod:`.commands`: ``honora-tts check-audio``, ``gate`` and ``calibrate-speech``.

Method and calibration table: ``docs/speech_checks.md``.
"""
