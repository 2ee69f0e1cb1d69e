"""The course's panels live in a web page: ipywidgets talking to the page's widget manager.

On the static site a reader can make a panel live. The page loads Pyodide and the course
library (all served by the site itself) and calls :func:`start`, which builds the panel as
a notebook would. Its widgets reach the page the way they reach JupyterLab, through the
``comm`` package: :func:`install` makes ``comm.create_comm`` return a :class:`PageComm`,
which hands each Jupyter widget message (``comm_open``, ``comm_msg``, ``comm_close``) to a
JavaScript function of the page; the page passes them to @jupyter-widgets/html-manager,
the widget manager that already draws the stored snapshots, and sends the reader's changes
back with :func:`receive`. ipywidgets and the panels are unchanged; no kernel is involved.

No build of numpy or matplotlib for Pyodide is on a package registry, so the site serves
neither and every panel (:data:`PANELS`) runs without them: the sequence explorer and the
sweep explorer draw SVG, and the sweep explorer's sweeps run in plain Python, with fewer
trials than numpy would run in the notebook (its status line says how many).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Optional

import comm
from comm.base_comm import BaseComm

from . import widgets

# The panels a page can make live, by the name of the function a notebook calls.
PANELS = {
    "sequence_explorer": widgets.sequence_explorer,
    "sweep_explorer": widgets.sweep_explorer,
    "port_budget_calculator": widgets.port_budget_calculator,
}
# A panel a page cannot make live, by that name, and why: shown beside its snapshot.
NOT_IN_PAGE: dict = {}

_send: Optional[Callable] = None
_panels: list = []  # the panels started, kept alive while the page shows them


class PageComm(BaseComm):
    """A comm whose messages go to the page (``send(msg_type, comm_id, json_text)``)."""

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        if buffers:
            raise ValueError(
                "buffers: the course's panels send none; binary buffers are not passed to the page"
            )
        message = {"data": data or {}, "metadata": metadata or {}}
        if msg_type == "comm_open":
            message["target_name"] = keys.get("target_name", self.target_name)
        _send(msg_type, self.comm_id, json.dumps(message))


def install(send: Callable) -> None:
    """Route every new comm to the page through ``send``."""
    global _send
    _send = send
    comm.create_comm = lambda **kwargs: PageComm(**kwargs)


def start(name: str, kwargs_json: str) -> str:
    """Build panel ``name`` with the keyword arguments a notebook gave it (JSON) and return
    the model id of its root widget, for the page to display."""
    if name not in PANELS:
        raise ValueError(f"name: one of {', '.join(sorted(PANELS))}, got {name!r}")
    if _send is None:
        raise RuntimeError("install(send) first: the page has not connected its widget manager")
    kwargs = json.loads(kwargs_json)
    if "port_range" in kwargs:  # JSON has no tuples
        kwargs["port_range"] = tuple(kwargs["port_range"])
    panel = PANELS[name](**kwargs)
    _panels.append(panel)
    return panel.widget.model_id


def receive(comm_id: str, data_json: str) -> None:
    """A message from the page's widget manager (a control the reader moved)."""
    target = comm.get_comm_manager().get_comm(comm_id)
    if target is None:
        raise ValueError(f"comm_id: no open comm {comm_id!r}")
    target.handle_msg(
        {"content": {"comm_id": comm_id, "data": json.loads(data_json)}, "metadata": {}, "buffers": []}
    )
