"""Interactive panels (ipywidgets) that re-run the model and redraw.

- :func:`sequence_explorer`: one scenario's sequence diagram and state timeline, with loss,
  delay, TIME_WAIT length and who closes first as controls. It draws SVG straight from the
  Trace (:mod:`timewait.svgdiagram`), so an update takes milliseconds; ``.figure()`` gives
  the matplotlib version (:mod:`timewait.plots`) for saving.
- :func:`sweep_explorer`: Monte Carlo estimates with confidence intervals: an old duplicate
  accepted, a lost final ACK answered with a reset, or (``provoked-reset``) a new
  incarnation disturbed by an old duplicate or by the late reset it provoked.
- :func:`port_budget_calculator`: TIME_WAIT population, ceiling rate, time to exhaustion.

Each returns an object with ``.widget`` (the panel; the object also displays itself in a
notebook) and ``.update()``, which recomputes and redraws. Invalid input is shown as a
message in the panel, never as a traceback.
"""
from __future__ import annotations

import base64
import html
import io

import ipywidgets as W

from .model.portbudget import LINUX_PORT_RANGE, port_budget
from .model.scenarios import SCENARIOS, simulate
from .svgdiagram import sequence_svg, timeline_svg

EXPLORER_SCENARIOS = ("four-way-close", "merged-close", "simultaneous-close", "lost-fin",
                      "lost-final-ack")


def _message(text: str, kind: str = "error") -> str:
    colour = {"error": "#D55E00", "ok": "#009E73", "info": "#0072B2"}[kind]
    return (f'<div style="border-left:4px solid {colour};padding:4px 8px;margin:4px 0">'
            f"{html.escape(text)}</div>")


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=72)
    FigureCanvasAgg(fig)
    # The panel places its axes itself; tight_layout would cost a full extra draw.
    fig.tight_layout = lambda *args, **kwargs: None
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _img(fig, alt: str) -> str:
    data = base64.b64encode(_png(fig)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


_SCROLLS = 'style="overflow-x:auto;max-width:100%"'


def _columns(*columns) -> W.HBox:
    """Columns of controls side by side, wrapping into one on a narrow screen (a phone). Each
    control's label takes its natural width: the default 80 px cuts longer ones ("TIME_WAI...")."""
    for control in (c for column in columns for c in column):
        control.style.description_width = "initial"
    return W.HBox([W.VBox(c) for c in columns], layout=W.Layout(flex_flow="row wrap"))


class _Panel:
    widget: W.Widget

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)

    def _observe(self, controls):
        for c in controls:
            c.observe(lambda change: self.update(), names="value")

    def update(self):
        try:
            self._update()
        except Exception as exc:  # shown to the reader; a traceback would help nobody here
            self.status.value = _message(f"Invalid input: {exc}")
            self.ok = False
        else:
            self.ok = True


class SequenceExplorer(_Panel):
    """Sequence diagram and state timeline of one close scenario."""

    def __init__(self, scenario="lost-final-ack", closer="client", loss=0.0, final_ack_losses=1,
                 delay=0.001, time_wait_msl=2.0, msl=30.0, merged=False, seed=0):
        self.scenario = W.Dropdown(options=EXPLORER_SCENARIOS, value=scenario, description="scenario")
        self.closer = W.Dropdown(options=("client", "server"), value=closer,
                                 description="closes first")
        self.loss = W.FloatSlider(value=loss, min=0, max=0.9, step=0.05, description="loss",
                                  tooltip="probability that any segment is lost")
        self.final_ack_losses = W.IntSlider(value=final_ack_losses, min=0, max=9,
                                            description="final ACKs lost")
        self.delay = W.FloatText(value=delay, description="delay (s)", step=0.001)
        # A step of 0.01 MSL, shown with two decimals, so a short TIME_WAIT such as 0.01 MSL
        # (an initial value of the course's notebooks) is one the slider can show and return to.
        self.time_wait_msl = W.FloatSlider(value=time_wait_msl, min=0, max=2, step=0.01,
                                           readout_format=".2f", description="TIME_WAIT (MSL)")
        self.msl = W.FloatText(value=msl, description="MSL (s)")
        self.merged = W.Checkbox(value=merged, description="merged FIN/ACK")
        self.seed = W.IntText(value=seed, description="seed")
        self.status = W.HTML()
        # The diagram is SVG written straight from the Trace (timewait.svgdiagram): about a
        # millisecond per redraw, where matplotlib + PNG took over 150 ms.
        self.diagram = W.HTML()
        controls = [self.scenario, self.closer, self.loss, self.final_ack_losses, self.delay,
                    self.time_wait_msl, self.msl, self.merged, self.seed]
        self.widget = W.VBox([_columns(controls[:5], controls[5:]), self.status, self.diagram])
        self.result = None
        self._observe(controls)
        self.update()

    def figure(self):
        """The current result drawn with matplotlib (:mod:`timewait.plots`), for saving as
        an image; the panel itself shows the SVG rendering."""
        from .plots import sequence_diagram, state_timeline
        r = self.result
        fig = _figure(7.5, 2.4 + 0.42 * max(len(r.trace), 1))
        ax1 = fig.add_axes([0.02, 0.30, 0.96, 0.68])
        ax2 = fig.add_axes([0.12, 0.06, 0.84, 0.16])
        sequence_diagram(r.trace, ax=ax1, states=r.timeline)
        until = max(r.settle_time * 1.2, r.settle_time + 0.05)
        state_timeline(r.timeline, ax=ax2, until=until)
        ax2.set_xlim(0, until)
        return fig

    def params(self) -> dict:
        name = self.scenario.value
        wanted = dict(closer=self.closer.value, loss=self.loss.value,
                      final_ack_losses=self.final_ack_losses.value, delay=self.delay.value,
                      time_wait_msl=self.time_wait_msl.value, msl=self.msl.value,
                      merged=self.merged.value, seed=self.seed.value)
        if name == "simultaneous-close":
            wanted["closer"] = "both"
        allowed = SCENARIOS[name]["params"]
        return {k: v for k, v in wanted.items() if k in allowed}

    def _update(self):
        r = self.result = simulate(self.scenario.value, **self.params())
        until = max(r.settle_time * 1.2, r.settle_time + 0.05)
        # Wider than a phone: the pictures scroll sideways at full size, their text legible.
        self.diagram.value = (f"<div {_SCROLLS}>{sequence_svg(r.trace, states=r.timeline)}</div>"
                              f"<div {_SCROLLS}>{timeline_svg(r.timeline, until=until)}</div>")
        ends = ", ".join(f"{k}: {v}" for k, v in r.end_states.items())
        self.status.value = _message(f"outcome: {r.outcome} ({r.explanation}); end states: {ends}",
                                     "error" if r.outcome == "peer-reset" else "ok")


class SweepExplorer(_Panel):
    """Monte Carlo estimates with 95 % intervals.

    ``old-duplicate`` and ``provoked-reset`` are drawn against TIME_WAIT length, one curve
    per chosen ISN policy (with the reconnect delay and timestamps as set); ``reset``
    against the final-ACK loss rate, one curve per chosen TIME_WAIT length."""

    SWEEPS = ("old-duplicate", "provoked-reset", "reset")
    TW_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    # The late reset matters up to 2 MSL, so this grid runs past it.
    PROVOKED_TW_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
    LOSS_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)

    def __init__(self, sweep="old-duplicate", trials=20_000, seed=0):
        self.sweep = W.Dropdown(options=self.SWEEPS, value=sweep,
                                description="estimate")
        self.isn = W.SelectMultiple(options=("fixed", "clock", "random"),
                                    value=("fixed", "clock", "random"), description="ISN policy",
                                    rows=3)
        self.reconnect_delay = W.FloatText(value=0.0, description="reconnect (s)")
        self.timestamps = W.Checkbox(value=False, description="timestamps (PAWS)")
        self.time_wait_msl = W.SelectMultiple(options=(0.0, 0.01, 0.1, 1.0, 2.0),
                                              value=(0.0, 0.01, 1.0), rows=3,
                                              description="TIME_WAIT (MSL)")
        self.trials = W.IntText(value=trials, description="trials")
        self.seed = W.IntText(value=seed, description="seed")
        self.status = W.HTML()
        # A PNG inside an <img> with alt text (ipywidgets' Image widget has no alt attribute).
        self.image = W.HTML()
        controls = [self.sweep, self.isn, self.reconnect_delay, self.timestamps,
                    self.time_wait_msl, self.trials, self.seed]
        self.widget = W.VBox([_columns(controls[:4], controls[4:]), self.status, self.image])
        self.fig = _figure(7, 4)
        self.result = None
        self._observe(controls)
        self.update()

    def _update(self):
        from .model.sweeps import old_duplicate_sweep, provoked_reset_sweep, reset_sweep
        from .plots import describe_sweep, sweep_curves
        trials = self.trials.value
        if not (1 <= trials <= 2_000_000):
            raise ValueError(f"trials: must be between 1 and 2000000, got {trials}")
        if self.sweep.value in ("old-duplicate", "provoked-reset"):
            if not self.isn.value:
                raise ValueError("isn: choose at least one ISN policy")
            if self.sweep.value == "old-duplicate":
                r = old_duplicate_sweep(self.TW_GRID, (self.reconnect_delay.value,),
                                        self.isn.value, trials, timestamps=self.timestamps.value,
                                        seed=self.seed.value)
                ylabel = "P(old duplicate accepted)"
            else:
                r = provoked_reset_sweep(self.PROVOKED_TW_GRID, self.isn.value,
                                         (self.reconnect_delay.value,), trials,
                                         timestamps=self.timestamps.value, seed=self.seed.value)
                ylabel = "P(new incarnation disturbed)"
            x, group, xlabel = "time_wait_msl", "isn", "TIME_WAIT length (MSL)"
        else:
            if not self.time_wait_msl.value:
                raise ValueError("time_wait_msl: choose at least one TIME_WAIT length")
            r = reset_sweep(self.LOSS_GRID, self.time_wait_msl.value, trials, seed=self.seed.value)
            x, group, xlabel = "final_ack_loss", "time_wait_msl", "final-ACK loss rate"
            ylabel = "P(peer sees a reset)"
        self.result = r
        self.fig.clf()
        ax = self.fig.add_subplot(111)
        self.fig.subplots_adjust(left=0.12, bottom=0.14, right=0.97, top=0.95)
        sweep_curves(r, x, group, ax=ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        self.image.value = _img(self.fig, describe_sweep(r, x, group, xlabel, ylabel))
        text = f"{r.trials_total:,} simulated closes in {r.seconds * 1e3:.0f} ms"
        if r.name == "provoked-reset":
            text += (f"; new incarnations disturbed: {sum(row['accepted'] for row in r.rows):,} "
                     f"by the old data, {sum(row['reset'] for row in r.rows):,} by a late reset")
        self.status.value = _message(text, "info")


class PortBudgetCalculator(_Panel):
    """Port range, TIME_WAIT length and connection rate -> what TIME_WAIT costs."""

    def __init__(self, rate=1000.0, time_wait=60.0, port_range=LINUX_PORT_RANGE):
        self.low = W.IntText(value=port_range[0], description="lowest port")
        self.high = W.IntText(value=port_range[1], description="highest port")
        self.time_wait = W.FloatText(value=time_wait, description="TIME_WAIT (s)")
        self.rate = W.FloatText(value=rate, description="conn/s")
        self.status = W.HTML()
        self.output = W.HTML()
        controls = [self.low, self.high, self.time_wait, self.rate]
        self.widget = W.VBox([_columns(controls[:2], controls[2:]), self.status, self.output])
        self.budget = None
        self._observe(controls)
        self.update()

    def _update(self):
        self.output.value = ""
        b = self.budget = port_budget(self.rate.value, self.time_wait.value,
                                      (self.low.value, self.high.value))
        self.output.value = "<pre>" + html.escape(b.text()) + "</pre>"
        self.status.value = _message("ports run out" if b.exhausted else "within budget",
                                     "error" if b.exhausted else "ok")


def sequence_explorer(**kwargs) -> SequenceExplorer:
    return SequenceExplorer(**kwargs)


def sweep_explorer(**kwargs) -> SweepExplorer:
    return SweepExplorer(**kwargs)


def port_budget_calculator(**kwargs) -> PortBudgetCalculator:
    return PortBudgetCalculator(**kwargs)
