#!/usr/bin/env python3
"""Writes the seed corpora of fuzz-lora-load, fuzz-model-config, fuzz-train-config and
fuzz-trainer-state (tests/fuzz/corpus/<name>/). Every seed is written here from the formats
(PEFT adapter folders, transformers config.json files, our settings and run files); nothing is
copied from elsewhere. Re-run after changing a format:  python3 tests/fuzz/seedgen/make-seeds.py"""
import json, os, struct, random

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")
rng = random.Random(7)


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, meta=None):
    """tensors: list of (name, dtype, shape); data is random bytes of the right size."""
    size = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, dt, shape in tensors:
        n = size[dt]
        for s in shape:
            n *= s
        if dt == "F32":
            blob = struct.pack("<%df" % (n // 4), *[rng.uniform(-0.5, 0.5) for _ in range(n // 4)])
        else:
            blob = bytes(rng.randrange(0, 64) for _ in range(n))
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        blobs.append(blob)
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


# ---- fuzz-lora-load: the tiny model of fuzz-lora-load.c ----
DIMS = {"q_proj": (16, 16), "k_proj": (16, 8), "v_proj": (16, 8), "o_proj": (16, 16),
        "gate_proj": (16, 24), "up_proj": (16, 24), "down_proj": (24, 16)}
PEFT_CFG = {
    "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "tiny", "bias": "none",
    "exclude_modules": None, "fan_in_fan_out": False, "inference_mode": True,
    "init_lora_weights": True, "layer_replication": None, "layers_pattern": None,
    "layers_to_transform": None, "loftq_config": {}, "lora_alpha": 16, "lora_bias": False,
    "lora_dropout": 0.05, "megatron_config": None, "megatron_core": "megatron.core",
    "modules_to_save": None, "peft_type": "LORA", "r": 4, "rank_pattern": {}, "revision": None,
    "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM", "use_dora": False,
    "use_rslora": False}


def module(layer, name):
    part = "self_attn" if name.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
    return "model.layers.%d.%s.%s" % (layer, part, name)


def adapter(mods, r=4, dt="F32", dims=DIMS, layers=(0, 1), extra=()):
    t = []
    for L in layers:
        for m in mods:
            i, o = dims[m]
            key = "base_model.model." + module(L, m)
            t.append((key + ".lora_A.weight", dt, [r, i]))
            t.append((key + ".lora_B.weight", dt, [o, r]))
    return safetensors(t + list(extra), {"format": "pt"})


def lora_seed(name, cfg, st):
    c = json.dumps(cfg, indent=2).encode()
    put("lora-load", name, struct.pack("<H", len(c)) + c + (st or b""))


lora_seed("qv-f32", PEFT_CFG, adapter(["q_proj", "v_proj"]))
lora_seed("all-linear-bf16", dict(PEFT_CFG, target_modules="all-linear", r=2),
          adapter(list(DIMS), r=2, dt="BF16"))
lora_seed("regex-f16", dict(PEFT_CFG, target_modules=r".*\.(q|k)_proj", use_rslora=True),
          adapter(["q_proj", "k_proj"], dt="F16", layers=(1,)))
lora_seed("lm-head", dict(PEFT_CFG, target_modules=["lm_head"]),
          safetensors([("base_model.model.lm_head.lora_A.weight", "F32", [2, 16]),
                       ("base_model.model.lm_head.lora_B.weight", "F32", [40, 2])]))
lora_seed("other-base", PEFT_CFG, adapter(["q_proj", "v_proj"], dims=dict(DIMS, q_proj=(32, 32))))
lora_seed("missing-b", PEFT_CFG,
          safetensors([("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "F32", [4, 16])]))
lora_seed("extra-tensor", PEFT_CFG,
          adapter(["q_proj"], extra=[("base_model.model.model.embed_tokens.weight", "F32", [40, 16])]))
lora_seed("dora", dict(PEFT_CFG, use_dora=True), adapter(["q_proj"]))
lora_seed("no-weights", PEFT_CFG, None)

# ---- fuzz-model-config: transformers config.json files of the supported families ----
llama = {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 32,
         "initializer_range": 0.02, "intermediate_size": 64, "max_position_embeddings": 128,
         "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
         "num_key_value_heads": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
         "rope_theta": 10000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
         "transformers_version": "4.46.0", "use_cache": True, "vocab_size": 96}
put("model-config", "llama-gqa.json", json.dumps(llama, indent=2))
put("model-config", "llama3-rope.json", json.dumps(dict(
    llama, rope_scaling={"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 64, "rope_type": "llama3"},
    eos_token_id=[2, 5, 7], rope_theta=500000.0, head_dim=16, tie_word_embeddings=False), indent=2))
put("model-config", "llama-linear-v5.json", json.dumps(dict(
    {k: v for k, v in llama.items() if k not in ("rope_theta", "rope_scaling", "torch_dtype")},
    rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}, dtype="float16",
    transformers_version="5.0.0", num_key_value_heads=1, mlp_bias=True), indent=2))
put("model-config", "mistral.json", json.dumps(dict(
    llama, architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=4096,
    head_dim=8, pad_token_id=None), indent=2))
put("model-config", "qwen2.json", json.dumps(dict(
    llama, architectures=["Qwen2ForCausalLM"], model_type="qwen2", use_sliding_window=False,
    sliding_window=32768, max_window_layers=21, rope_theta=1000000.0, num_key_value_heads=4,
    hidden_act="silu", tie_word_embeddings=True), indent=2))
put("model-config", "rwkv4.json", json.dumps({
    "architectures": ["RwkvForCausalLM"], "attention_hidden_size": 32, "bos_token_id": 0,
    "context_length": 1024, "eos_token_id": 0, "hidden_size": 32, "intermediate_size": None,
    "layer_norm_epsilon": 1e-05, "model_type": "rwkv", "num_hidden_layers": 2,
    "rescale_every": 6, "tie_word_embeddings": False, "torch_dtype": "float32", "vocab_size": 64},
    indent=2))
put("model-config", "mamba.json", json.dumps({
    "architectures": ["MambaForCausalLM"], "bos_token_id": 0, "conv_kernel": 4, "eos_token_id": 0,
    "expand": 2, "hidden_act": "silu", "hidden_size": 32, "initializer_range": 0.1,
    "layer_norm_epsilon": 1e-05, "model_type": "mamba", "num_hidden_layers": 2, "pad_token_id": 0,
    "rescale_prenorm_residual": False, "residual_in_fp32": True, "state_size": 8,
    "time_step_rank": "auto", "use_bias": False, "use_conv_bias": True, "vocab_size": 64}, indent=2))
put("model-config", "unsupported.json", json.dumps({"architectures": ["GPT2LMHeadModel"],
                                                    "model_type": "gpt2", "n_embd": 32}))

# ---- fuzz-train-config: settings files as users and `sutra train` write them ----
settings = {"model": "data/models/smollm2-135m", "data": "data/datasets/sample.jsonl",
            "output_dir": "runs/first", "method": "lora", "lora_r": 8, "lora_alpha": 16,
            "lora_dropout": 0.05, "lora_targets": ["q_proj", "v_proj"], "optimizer": "adamw",
            "lr": 2e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
            "schedule": "cosine", "warmup_steps": 10, "max_steps": 100, "micro_batch_size": 4,
            "grad_accum": 2, "max_grad_norm": 1.0, "seq_len": 256, "packing": True,
            "shuffle": True, "seed": 42, "eval_every": 20, "save_every": 25,
            "keep_checkpoints": 2, "threads": 0, "val_split": 0.1}
put("train-config", "lora.json", json.dumps(settings, indent=2))
put("train-config", "qlora-strings.json", json.dumps(dict(
    {k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
     for k, v in settings.items()}, method="qlora", quant="int4", lora_targets="all-linear",
    betas="0.9,0.95"), indent=2))
put("train-config", "full-sgd.json", json.dumps({
    "model": "tiny", "data": "rows.csv", "eval_data": "eval.csv", "output_dir": "/tmp/run",
    "method": "full", "optimizer": "sgd", "momentum": 0.9, "nesterov": True,
    "schedule": "linear", "epochs": 2.5, "max_steps": 0, "loss": "mse",
    "gradient_checkpointing": True, "early_stopping_patience": 3, "stop_on_bad_row": True,
    "init_std": 0.02, "log_every": 5, "mask_prompt": False, "template": "chatml",
    "init_adapter": None}, indent=2))
put("train-config", "bad-type.json", '{"model": "m", "data": "d", "lr": [1, 2], "seq_len": true}')

# ---- fuzz-trainer-state: byte 0 = part, bytes 1..8 = step, then the file ----
def ts(part, step, text):
    return bytes([part]) + struct.pack("<q", step) + text.encode()


state = ('{\n  "format": 1,\n  "step": 4,\n  "max_steps": 8,\n  "micro_batches_done": 8,\n'
         '  "epoch": 0.842105263,\n  "dropout_rng": "9e3779b97f4a7c15",\n  "seed": 42,\n'
         '  "elapsed_s": 0.512,\n  "best_eval_loss": 3.21987391,\n  "evals_without_improvement": 0\n}\n')
put("trainer-state", "state.bin", ts(0, 0, state))
put("trainer-state", "state-no-eval.bin", ts(0, 0, state.replace("3.21987391", '"inf"')))
put("trainer-state", "opt-step.bin", ts(1, 0, "1234"))
metrics = "".join('{"step": %d, "epoch": %.6f, "loss": %.9g, "lr": %.9g, "grad_norm": %.9g, '
                  '"tokens": 120, "tokens_per_s": 5000.125, "elapsed_s": %.3f%s}\n'
                  % (s, s / 8, 3.5 - 0.1 * s, 1e-3, 0.5 + s / 10, s * 0.05,
                     ', "eval_loss": 3.2, "eval_ppl": 24.5' if s % 3 == 0 else "")
                  for s in range(1, 9))
put("trainer-state", "metrics.bin", ts(2, 4, metrics))
put("trainer-state", "metrics-torn.bin", ts(2, 6, metrics + '{"step": 9, "epoch": 1.1, "lo'))
