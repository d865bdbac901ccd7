"""Encoder hparams: which encoder, and the built-in transformer's shape."""

from seqmodel.components import builtin_names
from seqmodel.hparam import Hparam, HparamGroup

HPARAMS = HparamGroup(
    "model",
    [
        Hparam("encoder", "transformer", str,
               "the encoder: transformer or a class as package.module:Class (a seqmodel.model.base.EncoderBase)",
               "enc", builtins=builtin_names("encoder")),
        Hparam("d_model", 128, int, "embedding width (every encoder's output width)", "dm", minimum=1),
        Hparam("n_layers", 4, int, "transformer encoder layers", "nl", minimum=1),
        Hparam("n_heads", 4, int, "attention heads (must divide d_model)", "nh", minimum=1),
        Hparam("d_ff", 512, int, "feed-forward width", "ff", minimum=1),
        Hparam("dropout", 0.0, float, "dropout probability of the embeddings and of each residual branch", "do",
               minimum=0.0, maximum=1.0),
        Hparam("attention_dropout", 0.0, float, "dropout probability of the attention weights; above 0 the CPU "
               "(and older GPUs) leave the fused attention kernel, several times slower", "ado",
               minimum=0.0, maximum=1.0),
        Hparam("positional_encoding", "rope", str, "positional encoding: rope (rotary: attention scores depend on "
               "relative offsets), or sinusoidal or learned vectors added to the embeddings", "pe",
               choices=("sinusoidal", "learned", "rope")),
        Hparam("conv_kernel", 9, int, "width of a convolution over token embeddings that gives the "
               "transformer k-mer features (0: none)", "ck", minimum=0),
    ],
)
