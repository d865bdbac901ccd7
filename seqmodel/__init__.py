"""seqmodel: train and run transformer encoders on genomic sequence.

Importing the package is cheap and torch-free: the operator image imports `seqmodel.hparam` and
`seqmodel.job` without torch installed.
"""

VERSION = "1.5.0"
__version__ = VERSION
