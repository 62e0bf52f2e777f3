"""streaming_rec_dev: what develops and measures streaming_rec, never shipped with it.

The evaluation harness (``evaluation``), the local stack of a broker and worker processes
for tests and benchmarks (``devstack``) and the MovieLens ratings (``datasets``). It lives
in the repository only: the runtime wheel (``pip install .``) holds ``streaming_rec`` alone,
and ``streaming_rec`` never imports this package (an import-linter contract).
"""
