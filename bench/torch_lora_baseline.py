#!/usr/bin/python3
"""Plain-PyTorch LoRA fine-tuning baseline for `sutra bench train`.

Our own small Llama written with torch.nn (no transformers, no PEFT): a SmolLM2-135M-shaped
model (hidden 576, 30 layers, 9 heads, 3 KV heads, FFN 1536, vocab 49152, tied embeddings,
RoPE, RMSNorm, SwiGLU) with random weights, the base frozen, LoRA r=8 alpha=16 on q/k/v/o/gate/
up/down, AdamW on the LoRA tensors, batch 1 x 256 tokens. Prints one JSON object with
tokens_per_s and ms_per_step, like `sutra bench train`.

Run with Debian's python3-torch:  /usr/bin/python3 bench/torch_lora_baseline.py --threads 2
(bench/train-side-by-side.sh runs it next to ours in one go.)
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    "smollm2-135m": dict(hidden=576, layers=30, heads=9, kv_heads=3, ffn=1536, vocab=49152),
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, ffn=172, vocab=512),
}


class LoRALinear(nn.Module):
    def __init__(self, d_in, d_out, r, alpha):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) * 0.02, requires_grad=False)
        self.A = nn.Parameter(torch.empty(r, d_in).uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in)))
        self.B = nn.Parameter(torch.zeros(d_out, r))
        self.scale = alpha / r

    def forward(self, x):
        return F.linear(x, self.weight) + F.linear(F.linear(x, self.A), self.B) * self.scale


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, s, r, alpha):
        super().__init__()
        d, hd = s["hidden"], s["hidden"] // s["heads"]
        self.h, self.kv, self.hd = s["heads"], s["kv_heads"], hd
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)
        self.q = LoRALinear(d, s["heads"] * hd, r, alpha)
        self.k = LoRALinear(d, s["kv_heads"] * hd, r, alpha)
        self.v = LoRALinear(d, s["kv_heads"] * hd, r, alpha)
        self.o = LoRALinear(s["heads"] * hd, d, r, alpha)
        self.gate = LoRALinear(d, s["ffn"], r, alpha)
        self.up = LoRALinear(d, s["ffn"], r, alpha)
        self.down = LoRALinear(s["ffn"], d, r, alpha)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.kv, self.hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.h // self.kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.o(y)
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, s, r, alpha):
        super().__init__()
        self.embed = nn.Parameter(torch.randn(s["vocab"], s["hidden"]) * 0.02, requires_grad=False)
        self.blocks = nn.ModuleList(Block(s, r, alpha) for _ in range(s["layers"]))
        self.norm = RMSNorm(s["hidden"])
        hd = s["hidden"] // s["heads"]
        self.inv = 1.0 / (100000.0 ** (torch.arange(0, hd, 2).float() / hd))

    def forward(self, ids):
        T = ids.shape[1]
        x = F.embedding(ids, self.embed)
        f = torch.outer(torch.arange(T).float(), self.inv)
        emb = torch.cat((f, f), dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        mask = torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        return F.linear(self.norm(x), self.embed)   # tied head


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--shape", default="smollm2-135m", choices=SHAPES)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    s = SHAPES[a.shape]
    model = Model(s, 8, 16)
    if a.dtype == "bf16":
        model = model.to(torch.bfloat16)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = (torch.arange(a.seq + 1) * 7919 + 13) % s["vocab"]
    x, y = ids[:-1].unsqueeze(0), ids[1:].unsqueeze(0)
    times = []
    for step in range(a.steps + 1):      # the first step warms up
        t0 = time.perf_counter()
        logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, s["vocab"]), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step > 0:
            times.append(time.perf_counter() - t0)
    step_s = sum(times) / len(times)
    env = "tuned-malloc" if os.environ.get("MALLOC_MMAP_THRESHOLD_") else "default"
    print(json.dumps({"bench": "torch_lora_baseline", "torch": torch.__version__, "shape": a.shape,
                      "dtype": a.dtype, "malloc": env, "threads": a.threads, "seq": a.seq,
                      "tokens_per_s": a.seq / step_s, "ms_per_step": step_s * 1e3}))


if __name__ == "__main__":
    main()
