#!/usr/bin/env bash
# Reproduces Sutra Studio's embedded default model, data/models/sutra-kjv-mini, from scratch,
# with this project's own tools only:
#   1. the King James Bible text from Debian's bible-kjv package (public domain),
#      prepared by data/tools/prepare_corpus.py (train / held-out chapters, chat rows);
#   2. a byte-level BPE tokenizer trained by `sutra tokenizer-train`;
#   3. a Llama-architecture model (about 7M parameters) trained from a fresh initialisation
#      with `sutra train` (method full) on the text;
#   4. a short instruction-tuning run (method full) on chat rows, so it follows the template;
#   5. the result converted to F16 by `sutra export` and copied into data/models/.
# usage: data/make-default-model.sh [BUILD_DIR] [WORK_DIR]
# Run time on 2 cores: see data/README.md (measured). Everything is seeded and deterministic
# for a given thread count.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(realpath -m "${2:-build/default-model}")
sutra=$PWD/$build/sutra
[[ -x $sutra ]] || { echo "build first: cmake -B $build && cmake --build $build" >&2; exit 1; }
command -v bible >/dev/null || { echo "needs Debian's bible-kjv (packaging/install-deps.sh)" >&2; exit 1; }
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-512}
threads=${SUTRA_THREADS:-2}
name=sutra-kjv-mini
# REUSE_PRETRAIN=1 keeps an earlier run's pre-trained model (stage 3) and redoes the rest.
if [[ -z "${REUSE_PRETRAIN:-}" ]]; then
  rm -rf "$work"
else
  rm -rf "$work/instruct" "$work/export"
fi
mkdir -p "$work/base"
t0=$(date +%s)

echo "== corpus"
python3 data/tools/prepare_corpus.py "$work"

echo "== tokenizer"
"$sutra" tokenizer-train --input "$work/corpus.txt" --vocab-size 4096 \
  --special "<|endoftext|>" --special "<|im_start|>" --special "<|im_end|>" \
  --out "$work/base/tokenizer.json"
ids() { "$sutra" tokenize "$work/base/tokenizer.json" --text "$1" | tr -d '[]'; }
eot=$(ids "<|endoftext|>"); ims=$(ids "<|im_start|>"); ime=$(ids "<|im_end|>")

cat > "$work/base/tokenizer_config.json" <<JSON
{
  "bos_token": "<|endoftext|>",
  "eos_token": "<|im_end|>",
  "pad_token": "<|endoftext|>",
  "unk_token": null,
  "add_bos_token": false,
  "model_max_length": 512,
  "chat_template": "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\\\n' + message['content'] + '<|im_end|>' + '\\\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\\\n' }}{% endif %}"
}
JSON
cat > "$work/base/config.json" <<JSON
{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "vocab_size": 4096,
  "hidden_size": 256,
  "intermediate_size": 768,
  "num_hidden_layers": 8,
  "num_attention_heads": 8,
  "num_key_value_heads": 2,
  "head_dim": 32,
  "max_position_embeddings": 512,
  "rms_norm_eps": 1e-5,
  "rope_theta": 10000.0,
  "hidden_act": "silu",
  "tie_word_embeddings": true,
  "bos_token_id": $eot,
  "eos_token_id": [$ime, $eot],
  "pad_token_id": $eot,
  "torch_dtype": "float32"
}
JSON
cat > "$work/base/generation_config.json" <<JSON
{
  "bos_token_id": $eot,
  "eos_token_id": [$ime, $eot],
  "pad_token_id": $eot,
  "do_sample": true,
  "temperature": 0.7,
  "top_p": 0.9,
  "max_new_tokens": 128
}
JSON

echo "== pre-training (full, from a fresh initialisation)"
cat > "$work/pretrain.json" <<JSON
{
  "model": "base", "data": "corpus.txt", "output_dir": "$work/pretrain",
  "method": "full", "optimizer": "adamw", "lr": 0.003, "weight_decay": 0.1,
  "betas": [0.9, 0.95], "schedule": "cosine", "warmup_steps": 100,
  "epochs": ${PRETRAIN_EPOCHS:-3}, "micro_batch_size": 16, "grad_accum": 1, "seq_len": 256,
  "max_grad_norm": 1.0, "shuffle": true, "seed": 1611, "save_every": 200,
  "keep_checkpoints": 2, "threads": $threads, "init_std": 0.02, "log_every": 20
}
JSON
if [[ -n "${REUSE_PRETRAIN:-}" && -f "$work/pretrain/model/model.safetensors" ]]; then
  echo "(reusing $work/pretrain/model)"
else
  "$sutra" train "$work/pretrain.json" --quiet
fi

echo "== instruction tuning (full)"
cat > "$work/instruct.json" <<JSON
{
  "model": "$work/pretrain/model", "data": "instruct.jsonl", "output_dir": "$work/instruct",
  "method": "full", "optimizer": "adamw", "lr": 0.001, "weight_decay": 0.0,
  "schedule": "cosine", "warmup_steps": 20, "epochs": ${INSTRUCT_EPOCHS:-3}, "micro_batch_size": 16,
  "seq_len": 256, "packing": true, "max_grad_norm": 1.0, "shuffle": true, "seed": 1611,
  "save_every": 0, "threads": $threads, "log_every": 20
}
JSON
"$sutra" train "$work/instruct.json" --quiet

echo "== export (F16) into data/models/$name"
"$sutra" export "$work/instruct" --merged "$work/export" --dtype f16
rm -rf "data/models/$name.new"
mkdir -p "data/models/$name.new"
cp "$work/export/config.json" "$work/export/model.safetensors" "data/models/$name.new/"
cp "$work/base/tokenizer.json" "$work/base/tokenizer_config.json" "$work/base/generation_config.json" \
   "data/models/$name.new/"
rm -rf "data/models/$name"
mv "data/models/$name.new" "data/models/$name"

echo "== held-out perplexity"
"$sutra" eval "data/models/$name" --data "$work/heldout.txt" | tee "$work/heldout-eval.json"
echo "done in $(( $(date +%s) - t0 )) s"
