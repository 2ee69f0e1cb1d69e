"""Why TCP Waits: the course library.

Real TCP experiments on the reader's own kernel, run inside a private user+network
namespace (:mod:`timewait.experiments`), and a sans-IO model of connection termination
(:mod:`timewait.model`) for what the kernel cannot show.
"""

__version__ = "0.1.0"
