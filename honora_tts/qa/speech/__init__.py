"""Speech measures: does a clip speak its text, whole, undistorted, in the right voice?

One concept per module:

- :mod:`.languages`: per-language facts (XTTS's split limits, espeak-ng voices, number words).
- :mod:`.text_normalization`: the normalisation applied before WER/CER (Whisper's English
  normaliser; numbers, currency, times) and the spoken form speaking rates count.
- :mod:`.predicted_quality`: DNSMOS P.835 and P.808 (``speechmos``, ONNX on the CPU).
- :mod:`.asr`: speech recognisers behind one interface (faster-whisper with the installed
  Whisper tiny.en, found without settings; pocketsphinx the weak fallback, with its
  forced-alignment text check).
- :mod:`.intelligibility`: WER and CER (``jiwer``), and where the transcript stops short of
  the text or goes on after it.
- :mod:`.repetition`: a phrase said again and again in a transcript (a loop).
- :mod:`.completeness`: duration against the text's speaking-rate bounds; audio after the last
  recognised word.
- :mod:`.thresholds`: the calibrated thresholds (``calibration.json``), per recogniser, and
  which recogniser is trusted to judge text for which language.
- :mod:`.clip_measures`: every measure of one clip, each naming its backend and model.
- :mod:`.speech_verdict`: one verdict per clip with its evidence, and the text check apart.
- :mod:`.espeak`, :mod:`.piper_voice`, :mod:`.degradations`: clips spoken by espeak-ng and
  Piper's neural voice, and the degraded kinds made from them.
- :mod:`.calibration_clips`, :mod:`.calibration`, :mod:`.calibration_report`:
  ``honora-tts calibrate-speech``: the labelled clips, the thresholds measured on them, and
  the tables and plots in ``docs/speech_checks.md``.
- :mod:`.speaks_check`: the "speaks" check of deploy verification.
- :mod:`.golden_set`, :mod:`.release_gate`, :mod:`.noise_floor`, :mod:`.gate_run`,
  :mod:`.judges`: ``honora-tts gate``, baseline against candidate, with tolerances from the
  build's own noise and the judge models pinned by hash.
- :mod:`.commands`: ``honora-tts check-audio``, ``gate`` and ``calibrate-speech``.

Method and calibration: ``docs/speech_checks.md``.
"""
