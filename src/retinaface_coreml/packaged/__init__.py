"""One runtime layer for every packaged model: manifest check, bucket choice by input shapes,
the shipped CoreML cache, the detached compile child, the swap on the caller's thread, the
back-off (backends.py, cache.py, compiler.py, compile_process.py), and onnxruntime's session
interface on top (session.py), adopted with one line (install.py,
``retinaface_coreml.onnxruntime``). Nothing here knows faces."""
