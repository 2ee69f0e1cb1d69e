"""Interactive panels (ipywidgets) that re-run the model and redraw.

- :func:`sequence_explorer`: one scenario's sequence diagram and state timeline, with loss,
  delay, TIME_WAIT length and who closes first as controls. It draws SVG straight from the
  Trace (:mod:`timewait.svgdiagram`), so an update takes milliseconds; ``.figure()`` gives
  the matplotlib version (:mod:`timewait.plots`) for saving.
- :func:`sweep_explorer`: Monte Carlo estimates with confidence intervals: an old duplicate
  accepted, a lost final ACK answered with a reset, or (``provoked-reset``) a new
  incarnation disturbed by an old duplicate or by the late reset it provoked. It draws an
  SVG chart (:mod:`timewait.svgchart`) and needs neither numpy nor matplotlib: without
  numpy (a web page's Pyodide) its sweeps run in plain Python with fewer trials, and the
  panel says how many.
- :func:`port_budget_calculator`: TIME_WAIT population, ceiling rate, time to exhaustion.

Each returns an object with ``.widget`` (the panel; the object also displays itself in a
notebook) and ``.update()``, which recomputes and redraws. Invalid input is shown as a
message in the panel, never as a traceback.
"""

from __future__ import annotations

import html

import ipywidgets as W

from .model import sweeps
from .model.portbudget import LINUX_PORT_RANGE, port_budget
from .model.scenarios import get as get_scenario
from .model.scenarios import simulate
from .svgchart import sweep_svg
from .svgdiagram import sequence_svg, timeline_svg

EXPLORER_SCENARIOS = ("four-way-close", "merged-close", "simultaneous-close", "lost-fin", "lost-final-ack")


def _message(text: str, kind: str = "error") -> str:
    colour = {"error": "#D55E00", "ok": "#009E73", "info": "#0072B2"}[kind]
    return (
        f'<div style="border-left:4px solid {colour};padding:4px 8px;margin:4px 0">{html.escape(text)}</div>'
    )


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # The panel places its axes itself (the plots lay out only figures they make).
    fig = Figure(figsize=(width, height), dpi=72, layout="none")
    FigureCanvasAgg(fig)
    return fig


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

    def __init__(
        self,
        scenario="lost-final-ack",
        closer="client",
        loss=0.0,
        final_ack_losses=1,
        delay=0.001,
        time_wait_msl=2.0,
        msl=30.0,
        merged=False,
        seed=0,
    ):
        self.scenario = W.Dropdown(options=EXPLORER_SCENARIOS, value=scenario, description="scenario")
        self.closer = W.Dropdown(options=("client", "server"), value=closer, description="closes first")
        self.loss = W.FloatSlider(
            value=loss,
            min=0,
            max=0.9,
            step=0.05,
            description="loss",
            tooltip="probability that any segment is lost",
        )
        self.final_ack_losses = W.IntSlider(
            value=final_ack_losses, min=0, max=9, description="final ACKs lost"
        )
        self.delay = W.FloatText(value=delay, description="delay (s)", step=0.001)
        # A step of 0.01 MSL, shown with two decimals, so a short TIME_WAIT such as 0.01 MSL
        # (an initial value of the course's notebooks) is one the slider can show and return to.
        self.time_wait_msl = W.FloatSlider(
            value=time_wait_msl, min=0, max=2, step=0.01, readout_format=".2f", description="TIME_WAIT (MSL)"
        )
        self.msl = W.FloatText(value=msl, description="MSL (s)")
        self.merged = W.Checkbox(value=merged, description="merged FIN/ACK")
        self.seed = W.IntText(value=seed, description="seed")
        self.status = W.HTML()
        # The diagram is SVG written straight from the Trace (timewait.svgdiagram): about a
        # millisecond per redraw, where matplotlib + PNG took over 150 ms.
        self.diagram = W.HTML()
        controls = [
            self.scenario,
            self.closer,
            self.loss,
            self.final_ack_losses,
            self.delay,
            self.time_wait_msl,
            self.msl,
            self.merged,
            self.seed,
        ]
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
        wanted = dict(
            closer=self.closer.value,
            loss=self.loss.value,
            final_ack_losses=self.final_ack_losses.value,
            delay=self.delay.value,
            time_wait_msl=self.time_wait_msl.value,
            msl=self.msl.value,
            merged=self.merged.value,
            seed=self.seed.value,
        )
        if name == "simultaneous-close":
            wanted["closer"] = "both"
        allowed = get_scenario(name).allowed
        return {k: v for k, v in wanted.items() if k in allowed}

    def _update(self):
        r = self.result = simulate(self.scenario.value, **self.params())
        until = max(r.settle_time * 1.2, r.settle_time + 0.05)
        # Wider than a phone: the pictures scroll sideways at full size, their text legible.
        self.diagram.value = (
            f"<div {_SCROLLS}>{sequence_svg(r.trace, states=r.timeline)}</div>"
            f"<div {_SCROLLS}>{timeline_svg(r.timeline, until=until)}</div>"
        )
        ends = ", ".join(f"{k}: {v}" for k, v in r.end_states.items())
        self.status.value = _message(
            f"outcome: {r.outcome} ({r.explanation}); end states: {ends}",
            "error" if r.outcome == "peer-reset" else "ok",
        )


class SweepExplorer(_Panel):
    """Monte Carlo estimates with 95 % intervals.

    ``old-duplicate`` and ``provoked-reset`` are drawn against TIME_WAIT length, one curve
    per chosen ISN policy (with the reconnect delay and timestamps as set); ``reset``
    against the final-ACK loss rate, one curve per chosen TIME_WAIT length. A control the
    chosen estimate does not use is disabled, so none seems to do nothing.

    ``backend`` is the sweeps' (:mod:`timewait.model.sweeps`): numpy where it is installed,
    else plain Python. Plain Python runs at most :attr:`PYTHON_TRIALS` simulated closes a
    chart, so each point gets fewer trials than asked when the grid is large; the status
    line says how many each point had, and the intervals widen accordingly."""

    SWEEPS = ("old-duplicate", "provoked-reset", "reset")
    TW_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    # The late reset matters up to 2 MSL, so this grid runs past it.
    PROVOKED_TW_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
    LOSS_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
    # Plain Python's simulated closes a chart, by estimate: an old-duplicate close costs about
    # twice a reset one and a provoked-reset close three times, so that each chart is redrawn
    # in a comparable time (README, "Live panels", measures it in the browser).
    PYTHON_TRIALS = {"old-duplicate": 30_000, "provoked-reset": 20_000, "reset": 60_000}

    def __init__(self, sweep="old-duplicate", trials=20_000, seed=0, backend=None):
        self.backend = sweeps._backend(backend)
        self.sweep = W.Dropdown(options=self.SWEEPS, value=sweep, description="estimate")
        self.isn = W.SelectMultiple(
            options=("fixed", "clock", "random"),
            value=("fixed", "clock", "random"),
            description="ISN policy",
            rows=3,
        )
        self.reconnect_delay = W.FloatText(value=0.0, description="reconnect (s)")
        self.timestamps = W.Checkbox(value=False, description="timestamps (PAWS)")
        self.time_wait_msl = W.SelectMultiple(
            options=(0.0, 0.01, 0.1, 1.0, 2.0), value=(0.0, 0.01, 1.0), rows=5, description="TIME_WAIT (MSL)"
        )
        self.trials = W.IntText(value=trials, description="trials")
        self.seed = W.IntText(value=seed, description="seed")
        self.status = W.HTML()
        # SVG written straight from the result (timewait.svgchart), with its alt text.
        self.chart = W.HTML()
        controls = [
            self.sweep,
            self.isn,
            self.reconnect_delay,
            self.timestamps,
            self.time_wait_msl,
            self.trials,
            self.seed,
        ]
        self.widget = W.VBox([_columns(controls[:4], controls[4:]), self.status, self.chart])
        self.result = None
        self.trials_per_point = None
        self._observe(controls)
        self.update()

    def _grid_size(self) -> int:
        if self.sweep.value == "reset":
            return len(self.LOSS_GRID) * len(self.time_wait_msl.value)
        grid = self.TW_GRID if self.sweep.value == "old-duplicate" else self.PROVOKED_TW_GRID
        return len(grid) * len(self.isn.value)

    def _per_point(self, asked: int) -> int:
        """Trials per point: as asked, or with plain Python at most the estimate's
        PYTHON_TRIALS over the grid, rounded down to two significant digits."""
        if self.backend == "numpy":
            return asked
        cap = max(1, self.PYTHON_TRIALS[self.sweep.value] // self._grid_size())
        if cap >= 100:
            unit = 10 ** (len(str(cap)) - 2)
            cap = cap // unit * unit
        return min(asked, cap)

    def _labels(self) -> tuple:
        """(x, group, xlabel, ylabel) of the chosen estimate."""
        if self.sweep.value == "reset":
            return "final_ack_loss", "time_wait_msl", "final-ACK loss rate", "P(peer sees a reset)"
        ylabel = (
            "P(old duplicate accepted)"
            if self.sweep.value == "old-duplicate"
            else "P(new incarnation disturbed)"
        )
        return "time_wait_msl", "isn", "TIME_WAIT length (MSL)", ylabel

    def _update(self):
        reset = self.sweep.value == "reset"
        for control in (self.isn, self.reconnect_delay, self.timestamps):
            control.disabled = reset
        self.time_wait_msl.disabled = not reset
        asked = self.trials.value
        if not (1 <= asked <= 2_000_000):
            raise ValueError(f"trials: must be between 1 and 2000000, got {asked}")
        if reset and not self.time_wait_msl.value:
            raise ValueError("time_wait_msl: choose at least one TIME_WAIT length")
        if not reset and not self.isn.value:
            raise ValueError("isn: choose at least one ISN policy")
        trials = self._per_point(asked)
        common = dict(seed=self.seed.value, backend=self.backend)
        if self.sweep.value == "old-duplicate":
            r = sweeps.old_duplicate_sweep(
                self.TW_GRID,
                isn=self.isn.value,
                reconnect_delay=(self.reconnect_delay.value,),
                trials=trials,
                timestamps=self.timestamps.value,
                **common,
            )
        elif self.sweep.value == "provoked-reset":
            r = sweeps.provoked_reset_sweep(
                self.PROVOKED_TW_GRID,
                isn=self.isn.value,
                reconnect_delay=(self.reconnect_delay.value,),
                trials=trials,
                timestamps=self.timestamps.value,
                **common,
            )
        else:
            r = sweeps.reset_sweep(
                self.LOSS_GRID, time_wait_msl=self.time_wait_msl.value, trials=trials, **common
            )
        self.result, self.trials_per_point = r, trials
        x, group, xlabel, ylabel = self._labels()
        self.chart.value = f"<div {_SCROLLS}>{sweep_svg(r, x, group, xlabel, ylabel)}</div>"
        text = f"{trials:,} trials per point, {r.trials_total:,} simulated closes in {r.seconds * 1e3:.0f} ms"
        if trials < asked:
            text += (
                f" ({asked:,} asked: without numpy, as in this web page, the sweeps run "
                f"in plain Python, at most {self.PYTHON_TRIALS[self.sweep.value]:,} simulated closes a "
                "chart, so the 95 % intervals are wider)"
            )
        if r.name == "provoked-reset":
            text += (
                f"; new incarnations disturbed: {sum(row['accepted'] for row in r.rows):,} "
                f"by the old data, {sum(row['reset'] for row in r.rows):,} by a late reset"
            )
        self.status.value = _message(text, "info")

    def figure(self):
        """The current result drawn with matplotlib (:func:`timewait.plots.sweep_curves`),
        for saving as an image; the panel itself shows the SVG chart."""
        from .plots import sweep_curves

        x, group, xlabel, ylabel = self._labels()
        fig = _figure(7, 4)
        ax = fig.add_subplot(111)
        fig.subplots_adjust(left=0.12, bottom=0.14, right=0.97, top=0.95)
        sweep_curves(self.result, x, group, ax=ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        return fig


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
        b = self.budget = port_budget(
            self.rate.value, self.time_wait.value, (self.low.value, self.high.value)
        )
        self.output.value = "<pre>" + html.escape(b.text()) + "</pre>"
        self.status.value = _message(
            "ports run out" if b.exhausted else "within budget", "error" if b.exhausted else "ok"
        )


def sequence_explorer(**kwargs) -> SequenceExplorer:
    return SequenceExplorer(**kwargs)


def sweep_explorer(**kwargs) -> SweepExplorer:
    return SweepExplorer(**kwargs)


def port_budget_calculator(**kwargs) -> PortBudgetCalculator:
    return PortBudgetCalculator(**kwargs)
