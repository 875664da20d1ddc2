"""The listening-test widgets driven from code: ratings land in SQLite, the order is blinded and
the same for a rater who comes back, players neither autoplay, loop nor normalise."""

from pathlib import Path

import ipywidgets as widgets
import pytest

from honora_tts.qa import listening
from honora_tts.qa.listening_ui import ListeningTestUI, audio_player


@pytest.fixture
def clips(clip_dir: Path) -> list[listening.Clip]:
    return listening.clips_from_directory(clip_dir)


def make_ui(clips, db: Path, rater: str = "ann", test_type: str = "mos", seed: int = 1,
            **kwargs) -> ListeningTestUI:
    design = listening.design_session(clips, rater, test_type, seed)
    return ListeningTestUI(listening.ListeningSession(design, listening.RatingStore(db)),
                           **kwargs)


def button(ui: ListeningTestUI, text: str) -> widgets.Button:
    return next(b for b in ui.rating_buttons if b.description.startswith(text))


def test_players_play_the_file_unchanged(clips):
    player = audio_player(clips[0].path)
    assert isinstance(player, widgets.Audio)
    assert player.autoplay is False and player.loop is False and player.controls is True
    assert player.value == clips[0].path.read_bytes()  # no normalisation, no re-encoding
    assert player.format == "wav"
    with pytest.raises(ValueError, match="cannot play"):
        audio_player(clips[0].path.with_suffix(".txt"))


def test_clicking_ratings_stores_rows_in_trial_order(clips, tmp_path):
    db = tmp_path / "ratings.sqlite"
    ui = make_ui(clips, db)
    expected = [t.stimuli[0].path for t in ui.session.design.trials]
    shown = []
    for score in (5, 1, 3):
        shown.append(ui.session.current.stimuli[0].path)
        assert ui.players[0].value == shown[-1].read_bytes()
        button(ui, str(score)).click()
    assert shown == expected[:3]
    assert ui.progress.value == 3 and ui.progress_label.value == f"3 of {len(clips)} rated"
    rows = listening.RatingStore(db).ratings()
    assert list(rows["score"]) == [5.0, 1.0, 3.0]
    assert list(rows["trial"]) == [0, 1, 2]
    assert list(rows["hidden_condition"]) == [t.stimuli[0].condition
                                              for t in ui.session.design.trials[:3]]


def test_screen_never_shows_conditions(clips, tmp_path):
    ui = make_ui(clips, tmp_path / "r.sqlite")
    for _ in range(len(clips)):
        texts = [ui.trial_label.value, ui.instructions.value, ui.status.value,
                 ui.progress_label.value] + [b.description for b in ui.rating_buttons]
        assert not any(c in t for t in texts for c in ("baseline", "candidate"))
        ui.rating_buttons[2].click()
    assert ui.done


def test_order_is_reproducible_per_seed_and_differs_between_raters(clips, tmp_path):
    databases = iter(range(100))

    def order(rater: str, seed: int) -> list[Path]:
        db = tmp_path / f"{next(databases)}.sqlite"  # a fresh store: nothing to resume
        ui = make_ui(clips, db, rater=rater, seed=seed)
        paths = []
        while not ui.done:
            paths.append(ui.session.current.stimuli[0].path)
            ui.rating_buttons[0].click()
        return paths

    assert order("ann", 1) == order("ann", 1)
    assert order("ann", 1) != order("bob", 1)
    assert sorted(order("bob", 1)) == sorted(c.path for c in clips)


def test_reopening_resumes_after_the_last_rated_trial(clips, tmp_path):
    db = tmp_path / "r.sqlite"
    ui = make_ui(clips, db)
    button(ui, "4").click()
    button(ui, "2").click()
    again = make_ui(clips, db)
    assert again.session.completed == 2 and "Resumed" in again.status.value
    assert again.session.current == again.session.design.trials[2]
    assert again.players[0].value == again.session.design.trials[2].stimuli[0].path.read_bytes()
    while not again.done:
        again.rating_buttons[0].click()
    assert all(b.disabled for b in again.rating_buttons)
    assert again.players == [] and "Done" in again.trial_label.value
    assert len(listening.RatingStore(db).ratings()) == len(clips)


def test_plays_reported_by_the_browser_are_counted(clips, tmp_path):
    db = tmp_path / "r.sqlite"
    ui = make_ui(clips, db, test_type="ab")
    # what the play-counter script writes when the browser fires 'play' on player A, then B
    ui.play_log.value = "0:1"
    ui.play_log.value = "1:2"
    ui.play_log.value = "1:3"
    ui.play_log.value = "7:4"  # no such player: ignored
    button(ui, "A is better").click()
    row = listening.RatingStore(db).ratings().iloc[0]
    assert (row["plays"], row["plays_b"], row["score"]) == (1, 2, 1.0)
    assert ui.session.plays == (0, 0)  # the next trial starts from zero
    assert all(f"honora-player-{ui._uid}-{i}" in p._dom_classes for i, p in enumerate(ui.players))


def test_ab_screen_has_two_players_and_three_answers(clips, tmp_path):
    ui = make_ui(clips, tmp_path / "r.sqlite", test_type="ab")
    assert len(ui.players) == 2
    assert [b.description for b in ui.rating_buttons] == ["A is better", "No preference",
                                                           "B is better"]
    button(ui, "No preference").click()
    assert listening.RatingStore(tmp_path / "r.sqlite").ratings().iloc[0]["score"] == 0.5


def test_noise_warning_only_for_random_weights(clips, tmp_path):
    loud = make_ui(clips, tmp_path / "a.sqlite", noise_warning=True)
    quiet = make_ui(clips, tmp_path / "b.sqlite", noise_warning=False)
    assert "random weights" in loud.warning.value and "noise" in loud.warning.value
    assert quiet.warning.value == ""
