"""Listening-test design (blinding, per-rater seeded order), the SQLite store and sessions."""

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from honora_tts.qa import listening


@pytest.fixture
def clips(clip_dir: Path) -> list[listening.Clip]:
    return listening.clips_from_directory(clip_dir)


def test_directory_layout_names_conditions_and_items(clips):
    assert len(clips) == 6
    assert {c.condition for c in clips} == {"baseline", "candidate"}
    assert {c.item for c in clips} == {"greeting", "question", "numbers"}


def test_manifest_round_trip(clips, tmp_path):
    tagged = [listening.Clip(c.path, c.condition, c.item, text="hi", voice="v",
                             synthesis_s=1.25, version={"model_name": "tiny-xtts"})
              for c in clips]
    listening.write_manifest(tagged, clips[0].path.parent.parent)
    again = listening.clips_from_directory(clips[0].path.parent.parent)
    assert sorted(again, key=str) == sorted(tagged, key=str)
    assert listening.synthesized_by_random_weights(again)
    assert not listening.synthesized_by_random_weights(clips)


def test_empty_directory_is_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no clips"):
        listening.clips_from_directory(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        listening.clips_from_directory(tmp_path / "missing")


def test_mos_design_is_reproducible_per_rater_and_seed(clips):
    first = listening.design_session(clips, "ann", "mos", seed=7)
    again = listening.design_session(list(reversed(clips)), "ann", "mos", seed=7)
    assert [t.trial_id for t in first.trials] == [t.trial_id for t in again.trials]
    assert first.session_id == again.session_id
    other_rater = listening.design_session(clips, "bob", "mos", seed=7)
    other_seed = listening.design_session(clips, "ann", "mos", seed=8)
    orders = {tuple(t.trial_id for t in d.trials) for d in (first, other_rater, other_seed)}
    assert len(orders) == 3
    assert other_rater.session_id != first.session_id
    # every clip exactly once
    assert Counter(t.stimuli[0].path for t in first.trials) == Counter(c.path for c in clips)


def test_design_hides_conditions(clips):
    design = listening.design_session(clips, "ann", "mos", seed=1)
    for trial in design.trials:
        visible = [trial.trial_id, trial.stimuli[0].stimulus_id, design.session_id]
        assert not any(cond in text for text in visible for cond in ("baseline", "candidate"))
    ids = {t.stimuli[0].stimulus_id for t in design.trials}
    assert len(ids) == len(clips)
    # stimulus ids are the same for every rater, so analyses can join on them
    other = listening.design_session(clips, "bob", "mos", seed=99)
    assert {t.stimuli[0].stimulus_id for t in other.trials} == ids


def test_ab_design_pairs_conditions_per_item_with_random_sides(clips):
    design = listening.design_session(clips, "ann", "ab", seed=3)
    assert len(design.trials) == 3  # 3 items x one pair of 2 conditions
    for trial in design.trials:
        assert len(trial.stimuli) == 2
        assert {s.condition for s in trial.stimuli} == {"baseline", "candidate"}
        assert len({s.item for s in trial.stimuli}) == 1
    sides = Counter()
    for seed in range(40):
        for trial in listening.design_session(clips, "ann", "ab", seed).trials:
            sides[trial.stimuli[0].condition] += 1
    assert sides["baseline"] > 20 and sides["candidate"] > 20


def test_ab_needs_two_conditions(clip_dir):
    only = [c for c in listening.clips_from_directory(clip_dir) if c.condition == "baseline"]
    with pytest.raises(ValueError, match="at least two conditions"):
        listening.design_session(only, "ann", "ab", 1)


def test_bad_design_arguments(clips):
    with pytest.raises(ValueError, match="test_type"):
        listening.design_session(clips, "ann", "mushra", 1)
    with pytest.raises(ValueError, match="rater"):
        listening.design_session(clips, "  ", "mos", 1)
    with pytest.raises(ValueError, match="more than one clip"):
        listening.design_session(clips + clips[:1], "ann", "mos", 1)


def test_session_stores_every_field_and_resumes(clips, tmp_path):
    db = tmp_path / "ratings.sqlite"
    store = listening.RatingStore(db)
    design = listening.design_session(clips, "ann", "mos", seed=5)
    ticks = iter([100.0, 100.0, 103.5, 103.5, 110.0, 110.0])
    session = listening.ListeningSession(design, store, clock=lambda: next(ticks),
                                         app_version={"git_sha": "abc"})
    first_trial = session.current
    session.start_trial()
    session.record_play(0)
    session.record_play(0)
    rating = session.rate(4)
    assert rating.plays == 2 and rating.elapsed_s == pytest.approx(3.5)
    session.rate(2)

    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = con.execute("SELECT * FROM ratings ORDER BY id").fetchall()
    assert len(rows) == 2
    row = rows[0]
    assert (row["rater"], row["session"], row["trial"]) == ("ann", design.session_id, 0)
    assert row["trial_id"] == first_trial.trial_id
    assert row["stimulus"] == first_trial.stimuli[0].stimulus_id
    assert row["hidden_condition"] == first_trial.stimuli[0].condition
    assert (row["score"], row["plays"], row["elapsed_s"]) == (4.0, 2, 3.5)
    assert row["rated_at"].endswith("+00:00")
    assert json.loads(row["versions"])["app"] == {"git_sha": "abc"}

    resumed = listening.ListeningSession(design, listening.RatingStore(db))
    assert resumed.resumed_from == 2 and resumed.completed == 2
    assert resumed.current == design.trials[2]
    while not resumed.done:
        resumed.rate(3)
    assert len(store.ratings(rater="ann")) == len(clips)
    with pytest.raises(RuntimeError, match="rated already"):
        resumed.rate(3)


def test_store_ignores_a_second_answer_to_the_same_trial(clips, tmp_path):
    store = listening.RatingStore(tmp_path / "r.sqlite")
    design = listening.design_session(clips, "ann", "mos", seed=1)
    first = listening.ListeningSession(design, store).rate(5)
    assert not store.record(first)
    assert len(store.ratings()) == 1


def test_invalid_answers_are_refused(clips, tmp_path):
    store = listening.RatingStore(tmp_path / "r.sqlite")
    mos = listening.ListeningSession(listening.design_session(clips, "ann", "mos", 1), store)
    for bad in (0, 6, 3.5, "4", True):
        with pytest.raises(ValueError):
            mos.rate(bad)
    ab = listening.ListeningSession(listening.design_session(clips, "ann", "ab", 1), store)
    with pytest.raises(ValueError):
        ab.rate(5)
    with pytest.raises(IndexError):
        ab.record_play(2)
    assert store.ratings().empty


def test_ab_rating_records_both_stimuli(clips, tmp_path):
    store = listening.RatingStore(tmp_path / "r.sqlite")
    design = listening.design_session(clips, "ann", "ab", seed=2)
    session = listening.ListeningSession(design, store)
    trial = session.current
    session.record_play(1)
    session.rate("B")
    row = store.ratings().iloc[0]
    assert row["score"] == 0.0 and row["choice"] == "B"
    assert row["hidden_condition"] == trial.stimuli[0].condition
    assert row["hidden_condition_b"] == trial.stimuli[1].condition
    assert row["stimulus_b"] == trial.stimuli[1].stimulus_id
    assert (row["plays"], row["plays_b"]) == (0, 1)


def test_simulated_raters_fill_every_trial(clips, tmp_path):
    store = listening.RatingStore(tmp_path / "r.sqlite")
    written = listening.simulate_raters(clips, store, 3, "mos", seed=4)
    ratings = store.ratings()
    assert written == len(ratings) == 3 * len(clips)
    assert set(ratings["rater"]) == {"simulated-1", "simulated-2", "simulated-3"}
    assert all(listening.is_simulated(r) for r in ratings["rater"])
    assert set(ratings["score"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
