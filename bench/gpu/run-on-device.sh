#!/usr/bin/env bash
# One call on the lent GPU machine (packed by bench/gpu/pack.sh): synthetic Llama-shaped GGUF files, then on each file
# the GPU's logits against the CPU's, llama.cpp's Vulkan llama-bench and `exo bench --backend vulkan` (prefill 512,
# decode 128, a batch of 8) and its per-kernel profile (decode of one sequence and of 8). JSON lines and profiles land in $OUT.
#   SMALL=1   only the Llama 3.2 1B body (b1-q4_0), for a short call;  MODELS="b8-q4_0 ..." to choose files
set -uo pipefail
G=$(cd "$(dirname "$0")" && pwd); W=/tmp/gpuanchor; R=$OUT; mkdir -p $W
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
for f in $G/bench/gpu/blobs/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
mkdir -p /tmp/x && tar xJf $G/exo.tar.xz -C /tmp/x; E=/tmp/x/exo/exo
$E devices
[ -x $W/vk-build/llama-bench ] || tar xJf $G/bench/gpu/blobs/vk.tar.xz -C $W
B8="--dim 4096 --layers 32 --ffn 14336 --heads 32 --kv-heads 8 --vocab 1000 --ctx 4096"
M=${MODELS:-$([ "${SMALL:-}" ] && echo b1-q4_0 || echo b8-q4_0)}
log "models: $M"
for m in $M; do
  [ -f $W/$m.gguf ] && continue
  case $m in b1-*) shape="--preset bench-1b" ;; b8-*) shape=$B8 ;; *) echo "unknown model $m" >&2; exit 2 ;; esac
  python3 $G/bench/llamacpp/make_gguf.py --out $W/$m.gguf $shape --type ${m#*-} > /dev/null &
done
wait
ls -la $W/*.gguf
log "correctness: GPU logits against the CPU's"
m1=${M%% *}
timeout 60 $E logits --model $W/$m1.gguf --save /tmp/cpu.json --tokens 16 | tail -1
timeout 60 $E logits --model $W/$m1.gguf --backend vulkan --compare /tmp/cpu.json | tail -1
for m in $M; do
  log "llama.cpp vulkan $m"
  (cd $W/vk-build/lib && timeout 60 ../llama-bench -m $W/$m.gguf -ngl 99 -p 512 -n 128 -r 2 -o jsonl 2>>$R/vulkan.stderr) | sed "s/^{/{\"file\":\"$m\",/" >> $R/vulkan.jsonl
  grep "\"$m\"" $R/vulkan.jsonl | grep -o '"n_prompt": [0-9]*\|"n_gen": [0-9]*\|"avg_ts": [0-9.]*' | tr '\n' ' '; echo
  log "exo $m"
  timeout 60 $E bench --backend vulkan --pp 512 --tg 128 --batch 8 --json --bandwidth-mb 2048 --model $W/$m.gguf | sed "s/^{/{\"file\":\"$m\",/" | tee -a $R/engine.jsonl
  timeout 60 $E bench --backend vulkan --pp 512 --tg 32 --batch 8 --json --bandwidth-mb 256 --profile --model $W/$m.gguf 2> $R/profile-$m.txt > /dev/null
  grep -A14 "^decode\|^batch" $R/profile-$m.txt
done
log done
