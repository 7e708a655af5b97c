"""What only a GPU would show, checked where the CPU can: attention split under CUDA's
grid limit gives the same result, and rotary tables keep q and k in autocast's dtype."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hwm_core.model import masked_hwm
from hwm_core.model.masked_hwm import SDPA_MAX_BATCH, Attention, attention, rotary_tables


def test_attention_in_chunks_equals_one_call():
    torch.manual_seed(0)
    q, k, v = (torch.randn(10, 2, 3, 8) for _ in range(3))
    for causal in (False, True):
        whole = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        for limit in (1, 3, 4, 10, 64):
            chunked = attention(q, k, v, causal=causal, dropout_p=0.0, max_batch=limit)
            assert torch.equal(chunked, whole), (causal, limit)
    assert SDPA_MAX_BATCH == 65_535  # the flash and memory-efficient kernels' grid axis


def test_the_model_never_hands_sdpa_more_sequences_than_the_limit(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention

    def recorded(q, k, v, **kwargs):
        calls.append(q.shape[0])
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(masked_hwm.F, "scaled_dot_product_attention", recorded)
    monkeypatch.setattr(masked_hwm, "SDPA_MAX_BATCH", 3)  # read at each call: a small limit shows the split
    layer = Attention(16, 2, causal=True, dropout=0.0).eval()
    x = torch.randn(7, 4, 16)
    with torch.no_grad():
        split = layer(x)
        monkeypatch.setattr(masked_hwm, "SDPA_MAX_BATCH", 100)
        whole = layer(x)
    assert calls == [3, 3, 1, 7]
    assert torch.allclose(split, whole, atol=1e-6)


def test_rotary_tables_take_the_dtype_of_q_and_k_under_autocast(monkeypatch):
    dtypes = []
    real = F.scaled_dot_product_attention

    def recorded(q, k, v, **kwargs):
        dtypes.append((q.dtype, k.dtype, v.dtype))
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(masked_hwm.F, "scaled_dot_product_attention", recorded)
    layer = Attention(16, 2, causal=False, dropout=0.0)
    rope = rotary_tables(torch.arange(4)[:, None], 8)  # fp32 tables, as the model's buffers are
    x = torch.randn(3, 4, 16)  # fp32 activations, as a LayerNorm under autocast gives
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x, rope)
    assert dtypes == [(torch.bfloat16,) * 3]  # fp32 tables would have promoted q and k to fp32
