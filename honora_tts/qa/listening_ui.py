"""The listening-test screen: an ipywidgets UI over a :class:`~honora_tts.qa.listening.ListeningSession`.

Players are ``ipywidgets.Audio`` widgets fed the files' bytes unchanged: they do not autoplay,
loop or normalise (``IPython.display.Audio`` would peak-normalise arrays by default). Raters see
"clip 3 of 12" and A/B, never the conditions. Clicking a rating stores it and shows the next trial;
progress survives a restarted kernel because the session skips trials already stored.

Plays are counted in the browser: a small script listens for ``play`` events of the players and
writes them into a hidden text widget, which syncs back to the kernel. Front ends that do not run
notebook JavaScript still work, with plays recorded as 0.
"""

from __future__ import annotations

import html
import uuid
from pathlib import Path

import ipywidgets as widgets

from honora_tts.audio import OUTPUT_FORMATS
from honora_tts.qa.listening import AB_SCORES, MOS_LABELS, ListeningSession, Trial

#: ``ipywidgets.Audio`` formats by file suffix (the MIME subtype the browser is given).
AUDIO_FORMATS = {row.suffix: row.media_type.split("/")[1] for row in OUTPUT_FORMATS.values()}
AB_BUTTONS = (("A", "A is better"), ("none", "No preference"), ("B", "B is better"))
NOISE_WARNING = (
    "These clips were made by the <b>tiny model with random weights</b>: the audio is noise, "
    "not speech. Rate it only to test the listening-test tooling; the scores mean nothing."
)

_PLAY_BRIDGE_JS = """
(function () {
  if (window.__honoraPlayBridge) { return; }
  window.__honoraPlayBridge = true;
  var count = 0;
  document.addEventListener('play', function (event) {
    var el = event.target;
    if (!el || !el.classList) { return; }
    var name = Array.prototype.find.call(el.classList, function (c) {
      return c.indexOf('honora-player-') === 0;
    });
    if (!name) { return; }
    var parts = name.split('-');
    var box = document.querySelector('.honora-play-log-' + parts[2] + ' input');
    if (!box) { return; }
    count += 1;
    box.value = parts[3] + ':' + count;
    box.dispatchEvent(new Event('input', {bubbles: true}));
  }, true);
})();
"""


def noise_warning_html() -> str:
    """The banner shown wherever random-weights clips are played."""
    return ('<div style="border:2px solid #c00;background:#fee;padding:8px;font-size:1.1em">'
            f"&#9888; {NOISE_WARNING}</div>")


def audio_player(path: Path, css_class: str | None = None) -> widgets.Audio:
    """A player for ``path`` that neither autoplays, loops nor normalises."""
    fmt = AUDIO_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot play {path.name}: use one of {', '.join(AUDIO_FORMATS)}")
    player = widgets.Audio(value=path.read_bytes(), format=fmt, autoplay=False, loop=False,
                           controls=True)
    if css_class:
        player.add_class(css_class)
    return player


class ListeningTestUI:
    """Blinded trials, players, rating buttons and progress for one rater's session.

    Drive it by hand (``display(ui.widget)``) or from code: ``ui.rating_buttons[i].click()``
    answers the current trial; ``ui.record_play(slot)`` counts a play as the browser would."""

    def __init__(self, session: ListeningSession, *, noise_warning: bool = False,
                 title: str = "Listening test") -> None:
        self.session = session
        self._uid = uuid.uuid4().hex[:10]
        self.title = widgets.HTML(f"<h3>{html.escape(title)}</h3>")
        self.instructions = widgets.HTML(self._instructions())
        self.warning = widgets.HTML(noise_warning_html() if noise_warning else "")
        self.progress = widgets.IntProgress(value=0, min=0, max=max(session.total, 1),
                                            description="Progress")
        self.progress_label = widgets.Label()
        self.trial_label = widgets.HTML()
        self.players_box = widgets.HBox()
        self.players: list[widgets.Audio] = []
        self.rating_buttons = self._make_buttons()
        self.status = widgets.HTML()
        self.play_log = widgets.Text(value="", continuous_update=True,
                                     layout=widgets.Layout(display="none"))
        self.play_log.add_class(f"honora-play-log-{self._uid}")
        self.play_log.observe(self._on_play_logged, names="value")
        self.widget = widgets.VBox([
            self.title, self.warning, self.instructions,
            widgets.HBox([self.progress, self.progress_label]),
            self.trial_label, self.players_box, widgets.HBox(self.rating_buttons), self.status,
            self.play_log,
        ])
        self.widget.add_class("honora-listening-test")
        if session.resumed_from:
            self.status.value = (f"Resumed: {session.resumed_from} of {session.total} trials "
                                 "were already rated.")
        self._show_current()

    # ---------------------------------------------------------------------------- display

    def _ipython_display_(self) -> None:
        self.display()

    def display(self) -> None:
        """Show the UI and install the play counter in the browser."""
        from IPython.display import Javascript, display

        display(self.widget)
        display(Javascript(_PLAY_BRIDGE_JS))

    def _instructions(self) -> str:
        if self.session.design.test_type == "mos":
            scale = ", ".join(f"{k} = {v}" for k, v in MOS_LABELS.items())
            return (f"<p>Play the clip (as often as you like), then rate its overall quality: "
                    f"{scale}. Use headphones at a fixed, comfortable volume.</p>")
        return ("<p>Play clips A and B (as often as you like), then say which one sounds "
                "better, or that you have no preference. Use headphones.</p>")

    def _make_buttons(self) -> list[widgets.Button]:
        labels: list[tuple[int | str, str]]
        if self.session.design.test_type == "mos":
            labels = [(score, f"{score} · {label}") for score, label in MOS_LABELS.items()]
        else:
            labels = [(answer, text) for answer, text in AB_BUTTONS]
        buttons = []
        for answer, text in labels:
            button = widgets.Button(description=text, layout=widgets.Layout(width="auto"),
                                    tooltip=f"rate: {text}")
            button.add_class(f"honora-rate-{answer}")
            button.on_click(lambda _button, answer=answer: self.answer(answer))
            buttons.append(button)
        return buttons

    def _show_current(self) -> None:
        session = self.session
        self.progress.value = session.completed
        self.progress_label.value = f"{session.completed} of {session.total} rated"
        trial = session.current
        if trial is None:
            self._show_done()
            return
        self.trial_label.value = self._trial_heading(trial)
        self.players = [
            audio_player(stimulus.path, f"honora-player-{self._uid}-{slot}")
            for slot, stimulus in enumerate(trial.stimuli)
        ]
        names = ["Clip"] if len(self.players) == 1 else ["A", "B"]
        self.players_box.children = [
            widgets.VBox([widgets.HTML(f"<b>{name}</b>"), player])
            for name, player in zip(names, self.players, strict=True)
        ]
        session.start_trial()

    def _trial_heading(self, trial: Trial) -> str:
        number = self.session.completed + 1
        return f"<h4>Trial {number} of {self.session.total}</h4>" + (
            "" if trial.test_type == "mos" else "<p>Which is better, A or B?</p>")

    def _show_done(self) -> None:
        self.trial_label.value = (
            f"<h4>Done: all {self.session.total} trials are rated. Thank you!</h4>"
        )
        self.players = []
        self.players_box.children = []
        for button in self.rating_buttons:
            button.disabled = True

    # ---------------------------------------------------------------------------- actions

    @property
    def done(self) -> bool:
        return self.session.done

    def answer(self, answer: int | str) -> None:
        """Rate the current trial (MOS 1-5, or "A", "B", "none") and show the next one."""
        if self.session.done:
            return
        if self.session.design.test_type == "ab" and answer not in AB_SCORES:
            raise ValueError(f"an A/B answer is one of {list(AB_SCORES)}, got {answer!r}")
        rating = self.session.rate(answer)
        self.status.value = f"Saved trial {rating.trial + 1}."
        self._show_current()

    def record_play(self, slot: int) -> None:
        """Count a play of stimulus ``slot`` (0 = clip or A, 1 = B) of the current trial."""
        if not self.session.done:
            self.session.record_play(slot)

    def _on_play_logged(self, change: dict) -> None:
        slot_text = str(change.get("new") or "").split(":", 1)[0]
        if slot_text.isdigit():
            trial = self.session.current
            if trial is not None and int(slot_text) < len(trial.stimuli):
                self.record_play(int(slot_text))
