"""The reconcilers, one per resource kind: what a SeqTrainingJob or SeqSweep event does. The kopf handlers
in handlers.py only hand each event to them."""
