"""The seqmodel operator: SeqTrainingJob resources become batch Jobs that train or test on GPU nodes.

Start it with `python -m seqmodel_operator` (see `__main__.py` for flags). `main.py` wires kopf's
decorators to `handlers/`; `kube.py` is the one module that talks to the API server, and everything
else (spec checks, rendering, status) is pure functions.
"""
