"""Puts the CoreML stand-in at the runtime's seams in every Python process the tests start.

On PYTHONPATH only while ``tests.runtime.standin.activate`` is in force, which also sets the
environment variable checked here; the compile child (``python -m retinaface_coreml compile``)
then compiles with the stand-in, as a real child would with the CoreML EP.
"""

import os

if os.environ.get("RETINAFACE_COREML_STANDIN"):
    from tests.runtime import standin

    standin.install()
