"""The encoder and heads: shapes, bidirectional attention, positional encodings, config checks."""

from __future__ import annotations

import pytest
import torch

from seqmodel.hparam import HparamError, registry
from seqmodel.model.encoder import Encoder, EncoderConfig
from seqmodel.model.heads import MaskedTokenHead, MultiLabelHead

CFG = dict(n_tokens=6, seq_len=12, d_model=16, n_layers=2, n_heads=4, d_ff=32, dropout=0.0)


def encoder(**changes: object) -> Encoder:
    torch.manual_seed(0)
    return Encoder(EncoderConfig(**{**CFG, **changes})).eval()


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_encoder_maps_tokens_to_one_vector_per_position(positions: str) -> None:
    tokens = torch.randint(6, (3, 12), dtype=torch.uint8)
    assert encoder(positional_encoding=positions)(tokens).shape == (3, 12, 16)


def test_attention_is_bidirectional() -> None:
    model = encoder()
    tokens = torch.full((1, 12), 2)
    changed = tokens.clone()
    changed[0, -1] = 5
    # the first position sees the last one: a causal mask would leave it unchanged
    assert not torch.allclose(model(tokens)[0, 0], model(changed)[0, 0])


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_positions_tell_equal_tokens_apart(positions: str) -> None:
    out = encoder(positional_encoding=positions)(torch.full((1, 12), 3))
    assert not torch.allclose(out[0, 0], out[0, 5])


def test_only_learned_positions_are_weights() -> None:
    assert "positions.table" not in encoder(positional_encoding="sinusoidal").state_dict()
    assert "positions.table" in encoder(positional_encoding="learned").state_dict()


def test_longer_input_than_seq_len_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than the encoder's seq_len 12"):
        encoder()(torch.zeros(1, 13, dtype=torch.long))


def test_heads_that_do_not_divide_d_model_name_the_hparam() -> None:
    with pytest.raises(HparamError, match="'n_heads' must divide d_model"):
        EncoderConfig(**{**CFG, "n_heads": 3})


def test_config_from_hparams_uses_the_registry_names() -> None:
    hp = registry().parse_dict({"d_model": 32, "n_heads": 2, "seq_len": 50, "positional_encoding": "learned"})
    cfg = EncoderConfig.from_hparams(hp, n_tokens=6)
    assert (cfg.d_model, cfg.n_heads, cfg.seq_len, cfg.positional_encoding) == (32, 2, 50, "learned")


def test_heads_shapes() -> None:
    hidden = torch.randn(4, 12, 16)
    assert MaskedTokenHead(16, 6)(hidden[:, :3].reshape(-1, 16)).shape == (12, 6)
    assert MultiLabelHead(16, 3)(hidden).shape == (4, 3)


def test_multilabel_head_sees_a_single_position() -> None:
    """Max pooling: one strong position anywhere in the window moves the window's logits."""
    head = MultiLabelHead(4, 1)
    hidden = torch.zeros(1, 100, 4)
    spiked = hidden.clone()
    spiked[0, 37] = 5.0
    assert head(spiked).item() != pytest.approx(head(hidden).item(), abs=0.05)
