#!/usr/bin/env python3
"""ON the GPU machine: the floors under one DiT forward, measured piece by piece with PyTorch.

Times, at the exact shapes of the benchmark configs (1.3B at 832x480x81, 14B at 1280x720x81), the self-attention
through each backend PyTorch offers (cuDNN, flash) and through an experimental Triton kernel, in the layout the
engine hands them, plus the block GEMMs with and without the GELU in the GEMM epilogue. The sum of the
pieces times the block count is what a forward cannot beat without a faster piece; the engine's measured
forward minus that sum is our own overhead. Prints one JSON line per measurement and a table at the end.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

OUT = os.environ.get("OUT", ".")
dev = "cuda"
torch.manual_seed(0)
rows = []


def bench(fn, warm=3, reps=10):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    times.sort()
    return times[len(times) // 2]


def record(**kw):
    rows.append(kw)
    print(json.dumps(kw), flush=True)


# ---- an experimental Triton attention (non-causal, head dim 128, [B, S, H, d] strided) -------------------
try:
    import triton
    import triton.language as tl

    @triton.jit
    def _attn_fwd(Q, K, V, O, sqb, sqs, sqh, skb, sks, skh, svb, svs, svh, sob, sos, soh, H, SQ, SK, qk_scale,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr):
        pid_m = tl.program_id(0)
        bh = tl.program_id(1)
        b = bh // H
        h = bh % H
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, D)
        offs_n = tl.arange(0, BLOCK_N)
        q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqs + offs_d[None, :], mask=offs_m[:, None] < SQ,
                    other=0.0)
        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, D], tl.float32)
        kb = K + b * skb + h * skh
        vb = V + b * svb + h * svh
        full = (SK // BLOCK_N) * BLOCK_N
        for start in range(0, full, BLOCK_N):
            n = start + offs_n
            k = tl.load(kb + n[None, :] * sks + offs_d[:, None])
            s = tl.dot(q, k) * qk_scale
            m_new = tl.maximum(m_i, tl.max(s, 1))
            p = tl.math.exp2(s - m_new[:, None])
            alpha = tl.math.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            v = tl.load(vb + n[:, None] * svs + offs_d[None, :])
            acc = tl.dot(p.to(v.dtype), v, acc)
            m_i = m_new
        if full < SK:
            n = full + offs_n
            k = tl.load(kb + n[None, :] * sks + offs_d[:, None], mask=n[None, :] < SK, other=0.0)
            s = tl.dot(q, k) * qk_scale
            s = tl.where(n[None, :] < SK, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            p = tl.math.exp2(s - m_new[:, None])
            alpha = tl.math.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            v = tl.load(vb + n[:, None] * svs + offs_d[None, :], mask=n[:, None] < SK, other=0.0)
            acc = tl.dot(p.to(v.dtype), v, acc)
            m_i = m_new
        acc = acc / l_i[:, None]
        tl.store(O + b * sob + h * soh + offs_m[:, None] * sos + offs_d[None, :], acc.to(O.dtype.element_ty),
                 mask=offs_m[:, None] < SQ)

    def triton_attn(q, k, v, bm, bn, warps, stages):  # q/k/v [B, S, H, d]
        B, S, H, d = q.shape
        o = torch.empty_like(q)
        grid = (triton.cdiv(S, bm), B * H)
        _attn_fwd[grid](q, k, v, o, q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
                        v.stride(0), v.stride(1), v.stride(2), o.stride(0), o.stride(1), o.stride(2), H, S,
                        k.shape[1], 1.4426950408889634 / math.sqrt(d), BLOCK_M=bm, BLOCK_N=bn, D=d,
                        num_warps=warps, num_stages=stages)
        return o
except Exception as e:  # noqa: BLE001
    print("triton unavailable:", e, file=sys.stderr)
    triton_attn = None

print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name(0),
      file=sys.stderr)

configs = [("1.3B", 1536, 8960, 12, 30, 32760), ("14B", 5120, 13824, 40, 4, 75600)]
only = os.environ.get("FLOOR_MODELS")
for name, D, Fd, H, L, N in configs:
    if only and name not in only.split(","):
        continue
    d = D // H
    att_flops = 4.0 * N * N * D
    qkv = torch.randn(1, N, 3 * D, device=dev, dtype=torch.bfloat16)
    q = torch.randn(1, N, H, d, device=dev, dtype=torch.bfloat16)  # as rmsnorm_rope writes it
    k = torch.randn(1, N, H, d, device=dev, dtype=torch.bfloat16)
    v = qkv[:, :, 2 * D:].view(1, N, H, d)  # a strided view of the QKV GEMM output, as the engine passes it
    ref = None
    for label, fn in [
        ("cudnn_engine_layout", lambda: torch.ops.aten._scaled_dot_product_cudnn_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), None, False)[0]),
        ("cudnn_bhsd_contig", None),
        ("flash_engine_layout", lambda: torch.ops.aten._scaled_dot_product_flash_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))[0]),
    ]:
        if fn is None:
            qc, kc, vc = (t.transpose(1, 2).contiguous() for t in (q, k, v))
            fn = lambda: torch.ops.aten._scaled_dot_product_cudnn_attention(qc, kc, vc, None, False)[0]  # noqa: E731
        try:
            s = bench(fn)
            record(model=name, what="attn_" + label, seconds=s, tflops=att_flops / s / 1e12, per_forward=s * L)
            if ref is None:
                ref = fn().transpose(1, 2).float()
        except Exception as e:  # noqa: BLE001
            record(model=name, what="attn_" + label, error=str(e)[:200])
    if triton_attn is not None and os.environ.get("FLOOR_TRITON", "1") == "1":
        for bm, bn, warps, stages in [(128, 64, 8, 3), (128, 128, 8, 2), (128, 64, 4, 3), (64, 64, 4, 3),
                                      (128, 128, 8, 3), (128, 64, 8, 4)]:
            try:
                got = triton_attn(q, k, v, bm, bn, warps, stages).float()
                err = ((got - ref).norm() / ref.norm()).item()
                s = bench(lambda: triton_attn(q, k, v, bm, bn, warps, stages))
                record(model=name, what=f"attn_triton_m{bm}_n{bn}_w{warps}_s{stages}", seconds=s,
                       tflops=att_flops / s / 1e12, per_forward=s * L, rel_err_vs_cudnn=err)
            except Exception as e:  # noqa: BLE001
                record(model=name, what=f"attn_triton_m{bm}_n{bn}_w{warps}_s{stages}", error=str(e)[:300])
    del q, k, v, qkv
    # cross-attention: N queries over 512 text rows
    qx = torch.randn(1, N, H, d, device=dev, dtype=torch.bfloat16)
    kx = torch.randn(1, 512, H, d, device=dev, dtype=torch.bfloat16)
    vx = torch.randn(1, 512, H, d, device=dev, dtype=torch.bfloat16)
    s = bench(lambda: torch.ops.aten._scaled_dot_product_cudnn_attention(
        qx.transpose(1, 2), kx.transpose(1, 2), vx.transpose(1, 2), None, False)[0])
    record(model=name, what="cross_attn_cudnn", seconds=s, tflops=4.0 * N * 512 * D / s / 1e12, per_forward=s * L)
    del qx, kx, vx
    # block GEMMs (bias in the epilogue, as at::linear does)
    x = torch.randn(N, D, device=dev, dtype=torch.bfloat16)
    xf = torch.randn(N, Fd, device=dev, dtype=torch.bfloat16)
    total = 0.0
    for label, K_, N_, inp in [("qkv", D, 3 * D, x), ("o", D, D, x), ("cross_q", D, D, x), ("cross_o", D, D, x),
                               ("ffn0", D, Fd, x), ("ffn2", Fd, D, xf)]:
        w = torch.randn(N_, K_, device=dev, dtype=torch.bfloat16) / math.sqrt(K_)
        bias = torch.randn(N_, device=dev, dtype=torch.bfloat16)
        s = bench(lambda: F.linear(inp, w, bias))
        total += s
        record(model=name, what="gemm_" + label, seconds=s, tflops=2.0 * N * K_ * N_ / s / 1e12, per_forward=s * L)
        if label == "ffn0":
            s_sep = bench(lambda: F.gelu(F.linear(inp, w, bias), approximate="tanh"))
            s_epi = bench(lambda: torch.ops.aten._addmm_activation(bias, inp, w.t(), use_gelu=True))
            a = F.gelu(F.linear(inp, w, bias), approximate="tanh").float()
            bb = torch.ops.aten._addmm_activation(bias, inp, w.t(), use_gelu=True).float()
            exact = F.gelu(inp.float() @ w.float().t() + bias.float(), approximate="tanh")
            record(model=name, what="ffn0_gelu_separate", seconds=s_sep, per_forward=s_sep * L,
                   rel_err=((a - exact).norm() / exact.norm()).item())
            record(model=name, what="ffn0_gelu_epilogue", seconds=s_epi, per_forward=s_epi * L,
                   rel_err=((bb - exact).norm() / exact.norm()).item())
    record(model=name, what="gemm_block_total", seconds=total, per_forward=total * L)
    del x, xf
    torch.cuda.empty_cache()

with open(os.path.join(OUT, "floors.jsonl"), "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
print("\n%-6s %-36s %10s %8s %12s" % ("model", "what", "seconds", "TFLOP/s", "per forward"))
for r in rows:
    if "error" in r:
        print("%-6s %-36s ERROR %s" % (r["model"], r["what"], r["error"][:80]))
    else:
        print("%-6s %-36s %10.5f %8s %12.4f" % (r["model"], r["what"], r["seconds"],
                                                "%.0f" % r["tflops"] if "tflops" in r else "-", r["per_forward"]))
