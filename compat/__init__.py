"""Conformance harness: the app's own ``retinaface.py`` (pyfaceau 1.4.1) against our classes.

``make compat`` builds ``.venv-compat`` (``compat/setup_env.py``), installs our wheel into it and
runs ``python -m compat``. Importing this package imports nothing heavy.
"""
