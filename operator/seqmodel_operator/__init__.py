"""The seqmodel operator: SeqTrainingJob resources become batch Jobs that train or test on GPU nodes.

Start it with `python -m seqmodel_operator` (see `__main__.py` for flags). `handlers.py` holds kopf's
handlers, which hand each event to a reconciler in `reconcilers/`; `kube.py` is the one module that talks to the API server, and everything
else (spec checks, rendering, status) is pure functions.
"""
