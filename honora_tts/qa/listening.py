"""Listening tests: the clips, a blinded trial order per rater, and the ratings store.

A *clip* is one audio file made under a *condition* (an engine, a build, a parameter set) for an
*item* (a text spoken in a voice); the same item exists under several conditions. Raters never
see conditions: a trial shows "clip 3 of 12" and stimuli carry opaque ids. The trial order is
drawn from a random generator seeded by (seed, rater, test type), so it differs between raters,
and is the same again for a rater who comes back: that is what makes sessions resumable.

Every rating is appended to a SQLite file (one row per trial) with the rater, session, trial,
stimulus ids, hidden conditions, score, plays, time spent, wall-clock time and the versions of
the builds that made the clips.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from honora_tts.audio import OUTPUT_FORMATS

if TYPE_CHECKING:
    from honora_tts.client import EndpointClient

TestType = Literal["mos", "ab"]
TEST_TYPES: tuple[str, ...] = ("mos", "ab")
AUDIO_SUFFIXES = tuple(row.suffix for row in OUTPUT_FORMATS.values())
MANIFEST_NAME = "manifest.csv"

#: MOS: the ACR scale of ITU-T P.800.
MOS_LABELS = {1: "Bad", 2: "Poor", 3: "Fair", 4: "Good", 5: "Excellent"}
#: A/B: the score stored for each answer.
AB_SCORES = {"A": 1.0, "none": 0.5, "B": 0.0}


# ------------------------------------------------------------------------------------ clips


@dataclass(frozen=True)
class Clip:
    """One audio file of a listening test. ``condition`` is hidden from raters."""

    path: Path
    condition: str
    item: str
    text: str = ""
    voice: str = ""
    reference: Path | None = None
    synthesis_s: float | None = None
    version: dict[str, Any] | None = None

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["path"] = str(self.path)
        row["reference"] = str(self.reference) if self.reference else ""
        row["version"] = json.dumps(self.version, sort_keys=True) if self.version else ""
        return row


def clips_table(clips: Iterable[Clip]) -> pd.DataFrame:
    """The clips as a table (one row per clip), e.g. for :func:`audio_metrics.measure_clips`."""
    return pd.DataFrame([clip.to_row() for clip in clips])


def clips_from_directory(root: str | Path) -> list[Clip]:
    """Clips found under ``root``: listed in ``manifest.csv`` (columns ``path``, ``condition``,
    ``item`` and optionally ``text``, ``voice``, ``reference``, ``synthesis_s``, ``version``;
    paths relative to ``root``) or, without a manifest, laid out as ``<condition>/<item>.wav``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"clip directory {root} does not exist")
    manifest = root / MANIFEST_NAME
    clips = _clips_from_manifest(root, manifest) if manifest.exists() else [
        Clip(path=path, condition=path.parent.name, item=path.stem)
        for path in sorted(root.glob("*/*"))
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file()
    ]
    if not clips:
        raise ValueError(
            f"no clips under {root}: expected {MANIFEST_NAME} or <condition>/<item>.wav files"
        )
    missing = [str(c.path) for c in clips if not c.path.is_file()]
    if missing:
        raise FileNotFoundError(f"clips listed but missing: {', '.join(missing[:5])}")
    return clips


def _clips_from_manifest(root: Path, manifest: Path) -> list[Clip]:
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    clips = []
    for number, row in enumerate(rows, start=2):
        for required in ("path", "condition", "item"):
            if not (row.get(required) or "").strip():
                raise ValueError(f"{manifest}:{number}: column {required!r} is empty")
        reference = (row.get("reference") or "").strip()
        synthesis = (row.get("synthesis_s") or "").strip()
        version = (row.get("version") or "").strip()
        clips.append(Clip(
            path=_resolve(root, row["path"].strip()),
            condition=row["condition"].strip(),
            item=row["item"].strip(),
            text=row.get("text") or "",
            voice=row.get("voice") or "",
            reference=_resolve(root, reference) if reference else None,
            synthesis_s=float(synthesis) if synthesis else None,
            version=json.loads(version) if version else None,
        ))
    return clips


def _resolve(root: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else root / candidate


def write_manifest(clips: Iterable[Clip], root: str | Path) -> Path:
    """Write ``manifest.csv`` for ``clips`` under ``root`` (paths relative where possible)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    columns = ["path", "condition", "item", "text", "voice", "reference", "synthesis_s",
               "version"]
    path = root / MANIFEST_NAME
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for clip in clips:
            row = clip.to_row()
            for key in ("path", "reference"):
                if row[key] and Path(row[key]).is_relative_to(root):
                    row[key] = str(Path(row[key]).relative_to(root))
            row["synthesis_s"] = "" if clip.synthesis_s is None else f"{clip.synthesis_s:.4f}"
            writer.writerow({key: row[key] for key in columns})
    return path


@dataclass(frozen=True)
class ConditionSpec:
    """How one condition's clips are made: which endpoint (a client) and synthesis overrides."""

    name: str
    client: EndpointClient
    params: Mapping[str, Any] = field(default_factory=dict)


#: Keys of a condition's settings that choose its endpoint; every other key is a synthesis
#: parameter (``temperature``, ``top_p``, ``speed``, ``max_new_tokens``, ...).
ENDPOINT_KEYS = ("endpoint", "api_base")


def condition_specs(conditions: Mapping[str, Mapping[str, Any]], default_client: EndpointClient,
                    *, max_new_tokens: int = 0) -> list[ConditionSpec]:
    """Notebook parameters -> :class:`ConditionSpec` list. Each condition maps to synthesis
    parameters, plus ``endpoint`` (and ``api_base``) when it is another build or endpoint; its
    API key comes from ``RUNPOD_API_KEY``. ``max_new_tokens`` bounds every condition that does
    not set its own (0: no bound)."""
    from honora_tts.qa.connection import connect

    if not conditions:
        raise ValueError("no conditions: give at least one, e.g. {'current': {}}")
    specs = []
    for name, settings in conditions.items():
        settings = dict(settings or {})
        endpoint = str(settings.pop("endpoint", "") or "")
        api_base = str(settings.pop("api_base", "") or "")
        client = connect(endpoint, api_base) if endpoint else default_client
        if max_new_tokens and "max_new_tokens" not in settings:
            settings["max_new_tokens"] = int(max_new_tokens)
        specs.append(ConditionSpec(str(name), client, settings))
    return specs


def generate_clips(conditions: Iterable[ConditionSpec], texts: Iterable[str],
                   voices: Iterable[str | Path | None], out_dir: str | Path, *,
                   language: str = "en", progress: bool = True) -> list[Clip]:
    """Synthesize every text × voice under every condition through the endpoint client and
    write ``<out_dir>/<condition>/<item>.wav`` plus ``manifest.csv``. ``None`` as a voice means
    the worker's default voice."""
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    specs, text_list, voice_list = list(conditions), list(texts), list(voices)
    if not specs or not text_list or not voice_list:
        raise ValueError("generate_clips needs at least one condition, one text and one voice")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"condition names must be unique, got {names}")
    jobs = list(itertools.product(specs, enumerate(text_list), voice_list))
    clips = []
    for spec, (number, text), voice in tqdm(jobs, desc="synthesizing clips", unit="clip",
                                           disable=not progress):
        voice_path = Path(voice) if voice else None
        voice_name = voice_path.stem if voice_path else "default"
        item = f"text{number + 1}-{voice_name}"
        result = spec.client.synthesize(text, voice=voice_path, language=language,
                                        params=dict(spec.params) or None)
        path = result.save(out_dir / _safe(spec.name) / f"{item}.{result.format}")
        execution = result.timings.execution_ms
        synthesis_s = (execution if execution is not None else result.timings.client_ms) / 1000
        clips.append(Clip(
            path=path, condition=spec.name, item=item, text=text, voice=voice_name,
            reference=voice_path, synthesis_s=synthesis_s,
            version=result.version.model_dump(mode="json"),
        ))
    write_manifest(clips, out_dir)
    return clips


def _safe(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".")
    return cleaned or "condition"


def synthesized_by_random_weights(clips: Iterable[Clip]) -> bool:
    """True when any clip was made by the tiny model (random weights: the audio is noise)."""
    return any("tiny" in str((clip.version or {}).get("model_name") or "").lower()
               for clip in clips)


# ----------------------------------------------------------------------------------- design


@dataclass(frozen=True)
class Stimulus:
    """A clip as a rater meets it: an opaque id; condition and version stay hidden."""

    stimulus_id: str
    path: Path
    condition: str
    item: str
    version: dict[str, Any] | None = None


@dataclass(frozen=True)
class Trial:
    """One rating to make: one stimulus (MOS) or two, presented as A then B (A/B)."""

    index: int
    trial_id: str
    test_type: str
    item: str
    stimuli: tuple[Stimulus, ...]


@dataclass(frozen=True)
class SessionDesign:
    """A rater's trials in their randomized order. ``session_id`` is derived from everything that
    shapes the order, so the same rater, clips, test type and seed find the same session again."""

    rater: str
    test_type: str
    seed: int
    session_id: str
    trials: tuple[Trial, ...]


def stimulus_id(clip: Clip) -> str:
    """An id that is stable across raters and machines but does not reveal the condition."""
    digest = hashlib.sha256(f"{clip.condition}\0{clip.item}\0{clip.path.name}".encode())
    return "s" + digest.hexdigest()[:11]


def design_session(clips: Iterable[Clip], rater: str, test_type: str, seed: int) -> SessionDesign:
    """The blinded, randomized trial list of one rater.

    MOS: every clip once. A/B: for each item, every pair of its conditions once, with the side
    each condition plays on drawn at random. Trial order is shuffled. Same arguments, same
    design; another rater, another order."""
    if test_type not in TEST_TYPES:
        raise ValueError(f"test_type must be one of {TEST_TYPES}, got {test_type!r}")
    rater = rater.strip()
    if not rater:
        raise ValueError("a rater id is required (any name or code that identifies the listener)")
    clip_list = sorted(clips, key=lambda c: (c.item, c.condition, str(c.path)))
    if not clip_list:
        raise ValueError("no clips to rate")
    keys = [(c.item, c.condition) for c in clip_list]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"more than one clip for (item, condition): {duplicates[:3]}")
    rng = random.Random(f"{seed}:{rater}:{test_type}")
    stimuli = {(c.item, c.condition): Stimulus(stimulus_id(c), c.path, c.condition, c.item,
                                               c.version) for c in clip_list}
    groups: list[tuple[str, tuple[Stimulus, ...]]]
    if test_type == "mos":
        groups = [(c.item, (stimuli[(c.item, c.condition)],)) for c in clip_list]
    else:
        groups = []
        by_item: dict[str, list[Stimulus]] = {}
        for clip in clip_list:
            by_item.setdefault(clip.item, []).append(stimuli[(clip.item, clip.condition)])
        for item, members in by_item.items():
            for pair in itertools.combinations(members, 2):
                ordered = pair if rng.random() < 0.5 else (pair[1], pair[0])
                groups.append((item, ordered))
        if not groups:
            raise ValueError("an A/B test needs items present under at least two conditions")
    rng.shuffle(groups)
    fingerprint = json.dumps([seed, rater, test_type, sorted(s.stimulus_id for s in
                                                             stimuli.values())])
    session_id = f"{test_type}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:10]}"
    trials = tuple(
        Trial(index=i, trial_id="t" + hashlib.sha256(
            "|".join(s.stimulus_id for s in group).encode()).hexdigest()[:10],
            test_type=test_type, item=item, stimuli=group)
        for i, (item, group) in enumerate(groups)
    )
    return SessionDesign(rater, test_type, int(seed), session_id, trials)


# ------------------------------------------------------------------------------------ store


@dataclass(frozen=True)
class Rating:
    """One stored answer. A/B: ``score`` 1.0 (A preferred), 0.5 (no preference), 0.0 (B)."""

    rater: str
    session: str
    trial: int
    trial_id: str
    test_type: str
    item: str
    stimulus: str
    hidden_condition: str
    score: float
    choice: str
    plays: int
    elapsed_s: float
    rated_at: str
    versions: dict[str, Any]
    stimulus_b: str | None = None
    hidden_condition_b: str | None = None
    plays_b: int | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rater TEXT NOT NULL,
    session TEXT NOT NULL,
    trial INTEGER NOT NULL,
    trial_id TEXT NOT NULL,
    test_type TEXT NOT NULL CHECK (test_type IN ('mos', 'ab')),
    item TEXT NOT NULL,
    stimulus TEXT NOT NULL,
    hidden_condition TEXT NOT NULL,
    stimulus_b TEXT,
    hidden_condition_b TEXT,
    score REAL NOT NULL,
    choice TEXT NOT NULL,
    plays INTEGER NOT NULL,
    plays_b INTEGER,
    elapsed_s REAL NOT NULL,
    rated_at TEXT NOT NULL,
    versions TEXT NOT NULL,
    UNIQUE (rater, session, trial_id)
)
"""
_COLUMNS = ("rater", "session", "trial", "trial_id", "test_type", "item", "stimulus",
            "hidden_condition", "stimulus_b", "hidden_condition_b", "score", "choice", "plays",
            "plays_b", "elapsed_s", "rated_at", "versions")


class RatingStore:
    """Ratings appended to a SQLite file; safe to share between raters' kernels (WAL mode,
    one short transaction per rating). A trial is stored once per rater and session."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30.0)

    def record(self, rating: Rating) -> bool:
        """Append ``rating``; False (nothing written) when that trial was already rated."""
        _validate(rating)
        values = asdict(rating)
        values["versions"] = json.dumps(rating.versions, sort_keys=True, default=str)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._connect() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO ratings ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                [values[c] for c in _COLUMNS],
            )
            return cursor.rowcount == 1

    def rated_trial_ids(self, rater: str, session: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute("SELECT trial_id FROM ratings WHERE rater = ? AND session = ?",
                              (rater, session)).fetchall()
        return {row[0] for row in rows}

    def ratings(self, *, rater: str | None = None, session: str | None = None,
                test_type: str | None = None) -> pd.DataFrame:
        """Stored ratings, oldest first, with ``versions`` decoded."""
        clauses, args = [], []
        for column, value in (("rater", rater), ("session", session), ("test_type", test_type)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as db:
            frame = pd.read_sql_query(f"SELECT * FROM ratings{where} ORDER BY id", db,
                                      params=args)
        frame["versions"] = frame["versions"].map(json.loads)
        return frame


def _validate(rating: Rating) -> None:
    if rating.test_type == "mos":
        if rating.score not in MOS_LABELS:
            raise ValueError(f"a MOS score is an integer from 1 to 5, got {rating.score!r}")
    elif rating.test_type == "ab":
        if rating.score not in AB_SCORES.values() or rating.stimulus_b is None:
            raise ValueError("an A/B rating needs two stimuli and a score of 1, 0.5 or 0")
    else:
        raise ValueError(f"unknown test type {rating.test_type!r}")
    if rating.plays < 0 or not math.isfinite(rating.elapsed_s) or rating.elapsed_s < 0:
        raise ValueError("plays and elapsed_s must not be negative")


# ---------------------------------------------------------------------------------- session


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ListeningSession:
    """A rater working through a design: what is next, and recording answers. Trials already in
    the store for this rater and session are skipped, so a session resumes where it stopped."""

    def __init__(self, design: SessionDesign, store: RatingStore,
                 clock: Callable[[], float] = time.monotonic,
                 app_version: Mapping[str, Any] | None = None) -> None:
        self.design = design
        self.store = store
        self._clock = clock
        self._app_version = dict(app_version or _app_version())
        done = store.rated_trial_ids(design.rater, design.session_id)
        self._pending = [t for t in design.trials if t.trial_id not in done]
        self.resumed_from = len(design.trials) - len(self._pending)
        self._shown_at = clock()
        self._plays = [0, 0]

    @property
    def total(self) -> int:
        return len(self.design.trials)

    @property
    def completed(self) -> int:
        return self.total - len(self._pending)

    @property
    def done(self) -> bool:
        return not self._pending

    @property
    def current(self) -> Trial | None:
        return self._pending[0] if self._pending else None

    @property
    def plays(self) -> tuple[int, ...]:
        trial = self.current
        return tuple(self._plays[: len(trial.stimuli)]) if trial else ()

    def start_trial(self) -> None:
        """Mark the moment the current trial was shown (elapsed time counts from here)."""
        self._shown_at = self._clock()
        self._plays = [0, 0]

    def record_play(self, slot: int) -> None:
        """Count one play of the current trial's stimulus ``slot`` (0 = the clip or A, 1 = B)."""
        trial = self.current
        if trial is None or not 0 <= slot < len(trial.stimuli):
            raise IndexError(f"no stimulus {slot} in the current trial")
        self._plays[slot] += 1

    def rate(self, answer: int | str) -> Rating:
        """Store the answer to the current trial and move on. MOS: 1-5; A/B: "A", "B", "none"."""
        trial = self.current
        if trial is None:
            raise RuntimeError("every trial of this session is rated already")
        first = trial.stimuli[0]
        second = trial.stimuli[1] if len(trial.stimuli) > 1 else None
        if trial.test_type == "mos":
            if isinstance(answer, bool) or not isinstance(answer, int) or answer not in MOS_LABELS:
                raise ValueError(f"a MOS answer is 1 to 5, got {answer!r}")
            score, choice = float(answer), str(answer)
        else:
            if answer not in AB_SCORES:
                raise ValueError(f"an A/B answer is one of {list(AB_SCORES)}, got {answer!r}")
            score, choice = AB_SCORES[str(answer)], str(answer)
        versions: dict[str, Any] = {"app": self._app_version, "A": first.version}
        if second is not None:
            versions["B"] = second.version
        rating = Rating(
            rater=self.design.rater, session=self.design.session_id, trial=trial.index,
            trial_id=trial.trial_id, test_type=trial.test_type, item=trial.item,
            stimulus=first.stimulus_id, hidden_condition=first.condition, score=score,
            choice=choice, plays=self._plays[0],
            elapsed_s=max(0.0, self._clock() - self._shown_at), rated_at=now_iso(),
            versions=versions,
            stimulus_b=second.stimulus_id if second else None,
            hidden_condition_b=second.condition if second else None,
            plays_b=self._plays[1] if second else None,
        )
        self.store.record(rating)
        self._pending.pop(0)
        self.start_trial()
        return rating


def _app_version() -> dict[str, Any]:
    from honora_tts.version import git_sha, package_version

    return {"package_version": package_version(), "git_sha": git_sha()}


def simulate_raters(clips: Iterable[Clip], store: RatingStore, raters: int, test_type: str,
                    seed: int) -> int:
    """Dry run: ``raters`` simulated listeners (ids ``simulated-1`` ...) answer every trial at
    random (seeded), so the analysis can be checked before real listeners take the test.
    Their rows are ordinary rows named as simulated; drop them before reporting. Returns the
    number of rows written."""
    clip_list = list(clips)
    written = 0
    for number in range(1, raters + 1):
        design = design_session(clip_list, f"simulated-{number}", test_type, seed)
        session = ListeningSession(design, store, app_version={"simulated": True})
        rng = random.Random(f"simulated:{seed}:{number}")
        while not session.done:
            answer: int | str = (rng.randint(1, 5) if test_type == "mos"
                                 else rng.choice(list(AB_SCORES)))
            session.rate(answer)
            written += 1
    return written


def is_simulated(rater: str) -> bool:
    return rater.startswith("simulated-")
