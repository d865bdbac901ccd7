"""The encoder and heads: shapes, bidirectional attention, positional encodings, config checks."""

from __future__ import annotations

import pytest
import torch

from seqmodel.hparam import HparamError, registry
from seqmodel.model.encoder import Encoder, EncoderConfig, RotaryPositions
from seqmodel.model.heads import MaskedTokenHead, MultiLabelHead

CFG = dict(n_tokens=6, seq_len=12, d_model=16, n_layers=2, n_heads=4, d_ff=32, dropout=0.0)


def encoder(**changes: object) -> Encoder:
    torch.manual_seed(0)
    return Encoder(EncoderConfig(**{**CFG, **changes})).eval()


@pytest.mark.parametrize("positions", ["sinusoidal", "learned", "rope"])
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
    assert encoder(positional_encoding="rope").state_dict().keys() == encoder().state_dict().keys()


def rotary_score(rope: RotaryPositions, q: torch.Tensor, k: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """The attention score of query content q at position i against key content k at position j."""
    length = rope.cos.shape[0]
    queries, keys = torch.zeros(1, 1, length, q.numel()), torch.zeros(1, 1, length, k.numel())
    queries[0, 0, i], keys[0, 0, j] = q, k
    return rope(queries)[0, 0, i] @ rope(keys)[0, 0, j]


def test_rope_scores_depend_on_the_relative_offset_only() -> None:
    torch.manual_seed(0)
    rope, q, k = RotaryPositions(seq_len=64, head_dim=8), torch.randn(8), torch.randn(8)
    for i, j in [(0, 3), (10, 2), (5, 5)]:
        scores = torch.stack([rotary_score(rope, q, k, i + shift, j + shift) for shift in (0, 7, 40)])
        assert torch.allclose(scores, scores[0].expand(3), atol=1e-5), (i, j, scores)
    assert not torch.isclose(rotary_score(rope, q, k, 0, 3), rotary_score(rope, q, k, 0, 9))
    assert torch.isclose(rotary_score(rope, q, k, 4, 4), q @ k, atol=1e-5)  # no offset: no rotation left


def test_rope_attention_sees_order() -> None:
    model = encoder(positional_encoding="rope")
    tokens = torch.tensor([[2, 3, 4, 5, 2, 3, 4, 5, 2, 3, 4, 5]])
    swapped = tokens.clone()
    swapped[0, [1, 2]] = swapped[0, [2, 1]]
    # position 0 sees the same multiset of tokens, at other offsets: rope tells them apart
    assert not torch.allclose(model(tokens)[0, 0], model(swapped)[0, 0])


def test_rope_needs_an_even_head_width() -> None:
    with pytest.raises(HparamError, match="d_model / n_heads must be even"):
        EncoderConfig(**{**CFG, "d_model": 12, "n_heads": 4, "positional_encoding": "rope"})


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
    assert MaskedTokenHead(16, 6)(hidden).shape == (4, 12, 6)
    assert MultiLabelHead(16, 3)(hidden).shape == (4, 3)


def test_multilabel_head_sees_a_single_position() -> None:
    """Max pooling: one strong position anywhere in the window moves the window's logits."""
    head = MultiLabelHead(4, 1)
    hidden = torch.zeros(1, 100, 4)
    spiked = hidden.clone()
    spiked[0, 37] = 5.0
    assert head(spiked).item() != pytest.approx(head(hidden).item(), abs=0.05)


def test_dropout_leaves_the_attention_weights_to_attention_dropout() -> None:
    """`dropout` (embeddings, residual branches) keeps attention on the fused kernel; only
    `attention_dropout` makes attention itself random."""
    x = torch.randn(2, 12, 16)
    calm = encoder(dropout=0.5).blocks[0].attn.train()
    assert torch.equal(calm(x), calm(x))
    noisy = encoder(dropout=0.0, attention_dropout=0.5).blocks[0].attn.train()
    assert not torch.equal(noisy(x), noisy(x))
