#!/usr/bin/env bash
# gguf-llamacpp-check.sh: exports models to GGUF with `sutra gguf-export` and checks that
# llama.cpp reads them as we compute them. Runs only when LLAMA_CPP_BIN names a folder with
# llama.cpp's binaries (llama-perplexity required; llama-tokenize and llama-quantize used when
# present); otherwise prints why it skips and exits 0 (77 with --strict-skip, ctest's skip code).
#
#   LLAMA_CPP_BIN=/path/to/llama.cpp/build/bin tests/gguf-llamacpp-check.sh [SUTRA_BINARY]
#   (TYPES="f32 q8_0" to limit the types, THREADS=N)
#
# For each model and type: llama-perplexity computes the perplexity of a text and saves its
# log-probabilities (--kl-divergence-base); `sutra eval --llamacpp-logits` runs our model on
# llama.cpp's own tokens, once on the weights of the GGUF file itself (--gguf-weights: what
# llama.cpp must reproduce) and once on the original f32 weights (the quantization's cost),
# and reports both perplexities and KL(llama.cpp || ours) per token.
# Models: hf-refs llama-tiny (transformers' weights; vocabulary = the first 512 tokens of the
# hf-refs SentencePiece-style tokenizer), and random models shaped by configs written here with
# real tokenizers from ../shared/testdata: GPT-2 (byte-level BPE), a Qwen2 config (q/k/v biases,
# tied embeddings) with a byte-level BPE, a Llama-3 rope-scaling config with Phi-3's tokenizer
# and chat template (llama.cpp must list <|end|> among its end-of-generation tokens).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
shared=${SUTRA_SHARED:-$root/../shared/testdata}
sutra=${1:-${SUTRA_CLI:-$root/build/sutra}}
skip_code=0
[[ "${2:-}" == "--strict-skip" ]] && skip_code=77

if [[ -z "${LLAMA_CPP_BIN:-}" ]]; then
  echo "gguf-llamacpp-check: skipped: set LLAMA_CPP_BIN to a folder with llama.cpp's binaries"
  exit $skip_code
fi
L=$LLAMA_CPP_BIN
for need in "$L/llama-perplexity" "$sutra"; do
  [[ -x "$need" ]] || { echo "gguf-llamacpp-check: skipped: $need not found"; exit $skip_code; }
done
[[ -d "$shared/hf-refs" ]] || { echo "gguf-llamacpp-check: skipped: no $shared"; exit $skip_code; }
command -v python3 >/dev/null || { echo "gguf-llamacpp-check: skipped: python3 needed"; exit $skip_code; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
threads=${THREADS:-2}
types=${TYPES:-"f32 f16 bf16 q8_0 q6_k q4_k q4_0"}
fail=0

# evaluation text: the shared READMEs and our docs (several thousand tokens)
cat "$shared"/README.md "$shared"/hf-refs/README.md "$shared"/tokenizers/README.md \
  "$root"/docs/*.md > "$work/text.txt"

# ---- models ----
mk_llama_tiny () {
  local d=$work/llama-tiny
  mkdir -p "$d"
  for f in config.json generation_config.json model.safetensors; do
    ln -s "$shared/hf-refs/llama-tiny/$f" "$d/$f"
  done
  # the first 512 tokens of a SentencePiece-style BPE (ids, merges and added tokens below 512)
  python3 - "$shared/hf-refs/tokenizers/spm-bpe-bytefallback/tokenizer.json" "$d/tokenizer.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); m = t["model"]; n = 512
m["vocab"] = {k: v for k, v in m["vocab"].items() if v < n}
m["merges"] = [g for g in m["merges"]
               if all(p in m["vocab"] for p in g) and "".join(g) in m["vocab"]]
t["added_tokens"] = [a for a in t["added_tokens"] if a["id"] < n]
json.dump(t, open(sys.argv[2], "w"), ensure_ascii=False)
PY
  echo "$d"
}

write_cfg () {   # name model_type arch hidden heads kv ffn layers tie extra-json
  cat > "$work/$1.json" <<JSON
{"architectures": ["$3"], "model_type": "$2", "hidden_size": $4, "num_attention_heads": $5,
 "num_key_value_heads": $6, "intermediate_size": $7, "num_hidden_layers": $8,
 "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "hidden_act": "silu",
 "tie_word_embeddings": $9, "vocab_size": 1000, "bos_token_id": 1, "eos_token_id": 2 ${10}}
JSON
}

mk_random () {   # name config tokenizer-dir
  local d=$work/$1 vocab
  vocab=$(python3 -c "
import json
t = json.load(open('$3/tokenizer.json'))
print(max([max(t['model']['vocab'].values())] + [a['id'] for a in t['added_tokens']]) + 1)")
  # std 0.08: peaked enough that a wrong layout shows, tame enough for f32 rounding to stay small
  "$sutra" init-random "$work/$2.json" --out "$d" --vocab "$vocab" --std 0.08 --seed 3 \
    --tokenizer "$3" >/dev/null 2>"$work/init.err" || { cat "$work/init.err" >&2; return 1; }
  echo "$d"
}

write_cfg gpt2cfg llama LlamaForCausalLM 256 4 2 512 2 false ', "rope_theta": 10000.0'
write_cfg qwencfg qwen2 Qwen2ForCausalLM 256 4 2 512 2 true ', "rope_theta": 1000000.0'
write_cfg l3cfg llama LlamaForCausalLM 256 4 1 768 2 false \
  ', "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}'

models=("$(mk_llama_tiny)")
models+=("$(mk_random gpt2 gpt2cfg "$shared/tokenizers/gpt2")")
models+=("$(mk_random qwen2 qwencfg "$shared/hf-refs/tokenizers/bpe-bytelevel")")
models+=("$(mk_random phi3 l3cfg "$shared/tokenizers/phi-3-mini")")

# KL(llama.cpp || ours, both on the file's weights) bound per type: f32/f16 agree to rounding;
# ggml's CPU matmuls round the activations too (to bf16 for bf16 weights, to q8_0 / q8_K blocks
# for quantized ones), hence the larger bounds. A wrong layout, scale packing or permutation
# gives tenths to nats (compare the kl_f32 column: what a 4-bit quantization alone costs).
declare -A kl_bound=([f32]=1e-5 [f16]=1e-5 [bf16]=2e-4 [q8_0]=2e-3 [q6_k]=3e-3 [q4_k]=3e-3 [q4_0]=2e-3)

echo "ppl/kl columns: our model on the GGUF's own (dequantized) weights vs llama.cpp on the file;"
echo "kl_f32 / dppl_f32: against our original f32 model (what the quantization costs)"
printf '%-10s %-5s %-10s %11s %11s %9s %9s %9s %6s %9s %9s\n' model type pre ppl_sutra ppl_llama \
  kl_mean kl_p99 kl_max top1 kl_f32 dppl_f32
first_type=${types%% *}
for d in "${models[@]}"; do
  [[ -d "$d" ]] || { echo "FAIL: could not build a model"; fail=1; continue; }
  name=$(basename "$d")
  for t in $types; do
    g=$work/$name-$t.gguf
    if ! "$sutra" gguf-export "$d" --out "$g" --type "$t" >/dev/null 2>"$work/err"; then
      echo "FAIL $name $t: export: $(grep -v 'merge ignored' "$work/err")"; fail=1; continue
    fi
    read -r pre bos < <("$sutra" gguf-info "$g" --json | python3 -c "
import json, sys
m = json.load(sys.stdin)['metadata']
pre = m.get('tokenizer.ggml.pre', '\"-\"').strip('\"')
bos = m.get('tokenizer.ggml.bos_token_id', '-1') if m.get('tokenizer.ggml.add_bos_token') == 'true' else '-1'
print(pre, bos)")
    if ! "$L/llama-perplexity" -m "$g" -f "$work/text.txt" -c 128 -b 128 -t "$threads" --chunks 8 \
         --kl-divergence-base "$work/$name-$t.kld" > "$work/$name-$t.log" 2>&1; then
      echo "FAIL $name $t: llama-perplexity: $(grep -iE 'error|failed' "$work/$name-$t.log" | head -3)"
      fail=1; continue
    fi
    ppl_l=$(grep -oE 'Final estimate: PPL = [0-9.e+-]+' "$work/$name-$t.log" | awk '{print $5}')
    src=$("$sutra" eval "$d" --llamacpp-logits "$work/$name-$t.kld" --bos "$bos") || { fail=1; continue; }
    same=$("$sutra" eval "$d" --llamacpp-logits "$work/$name-$t.kld" --bos "$bos" --gguf-weights "$g") \
      || { fail=1; continue; }
    python3 - "$src" "$same" "$name" "$t" "$pre" "${ppl_l:-nan}" "${kl_bound[$t]}" <<'PY' || fail=1
import json, math, sys
r, s = json.loads(sys.argv[1]), json.loads(sys.argv[2])
name, t, pre, ppl_l, bound = sys.argv[3:8]
print("%-10s %-5s %-10s %11.3f %11.3f %9.2e %9.2e %9.2e %6.3f %9.2e %9.2e" % (name, t, pre,
      s["perplexity"], s["llamacpp_perplexity"], s["kl_mean"], s["kl_p99"], s["kl_max"],
      s["top1_agreement"], r["kl_mean"], abs(r["perplexity"] / r["llamacpp_perplexity"] - 1)))
bad = []
if s["kl_mean"] > float(bound):
    bad.append("KL(llama.cpp || ours on the file's weights) %.3g above %s" % (s["kl_mean"], bound))
if not math.isnan(float(ppl_l)) and abs(float(ppl_l) / s["llamacpp_perplexity"] - 1) > 1e-3:
    bad.append("llama.cpp printed PPL %s, its logits file says %.4f" % (ppl_l, s["llamacpp_perplexity"]))
if bad:
    print("FAIL: %s %s: %s" % (name, t, "; ".join(bad)))
    sys.exit(1)
PY
    [[ $t == "$first_type" ]] || continue
    # once per model: llama.cpp's end-of-generation tokens, and its tokenization of the text
    "$L/llama-perplexity" -m "$g" -f "$work/text.txt" -c 128 -b 128 -t "$threads" --chunks 1 -v \
      > "$work/$name.vlog" 2>&1
    eog=$(sed -n "/printing all EOG tokens/,/cache size/p" "$work/$name.vlog" |
          grep -oE -- "- [0-9]+ \('[^']*'\)" | sed 's/^- //' | awk '!seen[$0]++' | tr '\n' ' ')
    echo "           EOG tokens listed by llama.cpp: ${eog:-none}"
    if [[ $name == phi3 && $eog != *"<|end|>"* ]]; then
      echo "FAIL: phi3: llama.cpp does not stop on <|end|>"; fail=1
    fi
    if [[ -x "$L/llama-tokenize" ]] && "$sutra" tokenize --help >/dev/null 2>&1; then
      head -c 3000 "$work/text.txt" > "$work/tok.txt"
      theirs=$("$L/llama-tokenize" -m "$g" -f "$work/tok.txt" --ids --log-disable 2>/dev/null |
               tail -1 | tr -d '[] ')
      ours=$("$sutra" tokenize "$d" --text-file "$work/tok.txt" --add-special 2>/dev/null | tr -d '[] ')
      if [[ -n "$ours" && "$theirs" == "$ours" ]]; then
        echo "           tokenization of 3000 bytes: identical ($(echo "$ours" | tr ',' '\n' | wc -l) tokens)"
      else
        echo "FAIL: $name: llama.cpp tokenizes the text differently"; fail=1
      fi
    fi
  done
done

# our q8_0 / q4_0 bytes are ggml's reference quantizers': llama-quantize, run on our f32 file,
# must write the same bytes for every tensor it quantizes to that type
if [[ -x "$L/llama-quantize" && -f "$work/gpt2-f32.gguf" ]]; then
  for t in q8_0 q4_0; do
    up=$(echo "$t" | tr a-z A-Z)
    "$L/llama-quantize" "$work/gpt2-f32.gguf" "$work/gpt2-lq-$t.gguf" "$up" "$threads" \
      > "$work/lq.log" 2>&1 || { echo "FAIL: llama-quantize $t"; fail=1; continue; }
    "$sutra" gguf-export "${models[1]}" --out "$work/gpt2-ours-$t.gguf" --type "$t" >/dev/null 2>&1
    python3 - "$sutra" "$work/gpt2-ours-$t.gguf" "$work/gpt2-lq-$t.gguf" "$t" <<'PY' || fail=1
import json, subprocess, sys
sutra, a, b, t = sys.argv[1:5]
def load(p):
    j = json.loads(subprocess.check_output([sutra, "gguf-info", p, "--json"]))
    return {x["name"]: x for x in j["tensors"]}, open(p, "rb").read(), j["data_offset"]
ta, da, oa = load(a)
tb, db, ob = load(b)
same = differ = 0
for n, x in ta.items():
    y = tb.get(n)
    if not y or x["type"] != t or y["type"] != t:
        continue
    if da[oa + x["offset"]:][:x["bytes"]] == db[ob + y["offset"]:][:y["bytes"]]:
        same += 1
    else:
        differ += 1
print("           llama-quantize %s: %d tensors byte-identical to ours, %d differ" % (t, same, differ))
sys.exit(1 if differ or not same else 0)
PY
  done
fi

# our k-quant dequantizers read ggml's own q4_K / q6_K: llama-quantize --pure quantizes our f32
# file, our model runs the weights it wrote, llama.cpp runs the same file
if [[ -x "$L/llama-quantize" && -f "$work/phi3-f32.gguf" ]]; then
  for q in Q4_K_S Q6_K; do
    f=$work/phi3-lq-$q.gguf
    "$L/llama-quantize" --pure "$work/phi3-f32.gguf" "$f" "$q" "$threads" > "$work/lq.log" 2>&1 ||
      { echo "FAIL: llama-quantize $q"; fail=1; continue; }
    "$L/llama-perplexity" -m "$f" -f "$work/text.txt" -c 128 -b 128 -t "$threads" --chunks 8 \
      --kl-divergence-base "$work/lq.kld" > "$work/lq.log" 2>&1 || { echo "FAIL: perplexity $q"; fail=1; continue; }
    js=$("$sutra" eval "${models[3]}" --llamacpp-logits "$work/lq.kld" --bos -1 --gguf-weights "$f") ||
      { fail=1; continue; }
    python3 - "$js" "$q" <<'PY' || fail=1
import json, sys
r = json.loads(sys.argv[1])
print("           llama-quantize --pure %s read by our dequantizer: KL %.2e (top-1 %.3f)" %
      (sys.argv[2], r["kl_mean"], r["top1_agreement"]))
sys.exit(0 if r["kl_mean"] < 3e-3 else 1)
PY
  done
fi

if ((fail)); then
  echo "gguf-llamacpp-check: FAILED"
  exit 1
fi
echo "gguf-llamacpp-check: all checks passed"
