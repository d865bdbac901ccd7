"""Submitting runs: the versioned output layout shared by every backend. Torch-free."""
