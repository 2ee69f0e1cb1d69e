"""Sphinx extension: the ``tcp-state-diagram`` directive draws RFC 9293's state diagram from
the course model's transition table (``timewait.statediagram``), as inline SVG with its
caption, so the picture on the site is always the model's own."""

from docutils import nodes
from docutils.parsers.rst import Directive


class StateDiagram(Directive):
    has_content = True  # the caption

    def run(self):
        from timewait.statediagram import state_diagram_svg

        figure = nodes.figure(classes=["course-state-diagram"])
        # The diagram fills the column down to its least width (620 px, its smallest text
        # 10 px high), so it fits the desktop theme's column (672 px); on a narrower screen
        # (a phone) the frame scrolls sideways, with the scroll cue.
        frame = '<div class="timewait-figure-frame" style="overflow-x:auto">'
        figure += nodes.raw("", frame + state_diagram_svg() + "</div>", format="html")
        if self.content:
            figure += nodes.caption(text=" ".join(self.content))
        return [figure]


def setup(app):
    app.add_directive("tcp-state-diagram", StateDiagram)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
