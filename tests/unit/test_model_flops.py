"""The analytic FLOPs count agrees with torch's own FLOP counter on a real forward pass."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from seqmodel.hparam import registry
from seqmodel.model.encoder import Encoder, EncoderConfig
from seqmodel.model.flops import forward_flops_per_token, mfu, train_flops_per_token
from seqmodel.model.heads import MaskedTokenHead


@pytest.mark.parametrize("conv_kernel", [0, 9])
def test_forward_flops_match_torch_flop_counter(conv_kernel: int) -> None:
    hp = registry().parse_dict({"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "seq_len": 40,
                                "conv_kernel": conv_kernel})
    encoder, head = Encoder(EncoderConfig.from_hparams(hp, n_tokens=6)), MaskedTokenHead(32, 6)
    tokens = torch.randint(6, (3, 40))
    with FlopCounterMode(display=False) as counter:
        hidden = encoder(tokens)
        head(hidden[:, :10].reshape(-1, 32))  # a quarter of the positions reach the head
    assert forward_flops_per_token(hp, 6, head_fraction=0.25) * tokens.numel() == pytest.approx(
        counter.get_total_flops(), rel=0.01)


def test_training_is_three_forwards_and_mfu_is_a_share_of_peak() -> None:
    hp = registry().parse_dict({})
    assert train_flops_per_token(hp, 6, 0.15) == 3 * forward_flops_per_token(hp, 6, 0.15)
    assert mfu(tokens_per_second=1e6, flops_per_token=2e8, peak_flops=1e15) == pytest.approx(0.2)
