#!/usr/bin/env bash
# One call on the lent GPU machine (packed by bench/gpu/pack.sh) runs whatever of .gpu/one it was given: synthetic
# Llama-shaped GGUF files (kept in /tmp/gpuanchor while the machine stays warm), then on each file llama.cpp's Vulkan
# llama-bench (with llama/), and each exo build's GPU logits against its CPU's, `exo bench --backend vulkan` (prefill
# 512, decode 128, a batch of 8) and its per-kernel profile (decode of one sequence and of 8) (with exo/ or exo-*/).
# JSON lines and profiles land in $OUT.
#   SMALL=1   only the Llama 3.2 1B body (b1-q4_0), for a short call;  MODELS="b8-q4_0 ..." to choose files
set -uo pipefail
C=$(cd "$(dirname "$0")" && pwd); G=$(dirname "$C"); W=/tmp/gpuanchor; R=$OUT; mkdir -p $W
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
for f in $C/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
B8="--dim 4096 --layers 32 --ffn 14336 --heads 32 --kv-heads 8 --vocab 1000 --ctx 4096"
M=${MODELS:-$([ "${SMALL:-}" ] && echo b1-q4_0 || echo b8-q4_0)}
log "models: $M"
for m in $M; do
  [ -f $W/$m.gguf ] && continue
  case $m in b1-*) shape="--preset bench-1b" ;; b8-*) shape=$B8 ;; *) echo "unknown model $m" >&2; exit 2 ;; esac
  python3 $C/make_gguf.py --out $W/$m.gguf $shape --type ${m#*-} > /dev/null &
done
wait
ls -la $W/*.gguf
if [ -f $G/llama/vk.tar.xz ]; then
  [ -x $W/vk-build/llama-bench ] || tar xJf $G/llama/vk.tar.xz -C $W
  for m in $M; do
    log "llama.cpp vulkan $m"
    (cd $W/vk-build/lib && timeout 60 ../llama-bench -m $W/$m.gguf -ngl 99 -p 512 -n 128 -r 2 -o jsonl 2>>$R/vulkan.stderr) | sed "s/^{/{\"file\":\"$m\",/" >> $R/vulkan.jsonl
    grep "\"$m\"" $R/vulkan.jsonl | grep -o '"n_prompt": [0-9]*\|"n_gen": [0-9]*\|"avg_ts": [0-9.]*' | tr '\n' ' '; echo
  done
fi
for d in $G/exo $G/exo-*; do
  [ -f $d/exo.tar.xz ] || continue
  n=$(basename $d); rm -rf /tmp/x/$n; mkdir -p /tmp/x/$n && tar xJf $d/exo.tar.xz -C /tmp/x/$n; E=/tmp/x/$n/exo/exo
  log "$n: $(cat $d/commit.txt)"
  $E devices
  log "correctness: GPU logits against the CPU's"
  m1=${M%% *}
  timeout 60 $E logits --model $W/$m1.gguf --save /tmp/cpu.json --tokens 16 | tail -1
  timeout 60 $E logits --model $W/$m1.gguf --backend vulkan --compare /tmp/cpu.json | tail -1
  for m in $M; do
    log "$n $m"
    timeout 60 $E bench --backend vulkan --pp 512 --tg 128 --batch 8 --json --bandwidth-mb 2048 --model $W/$m.gguf | sed "s/^{/{\"file\":\"$m\",\"build\":\"$n\",/" | tee -a $R/engine.jsonl
    [ "${PROFILE:-1}" = 1 ] || continue
    timeout 60 $E bench --backend vulkan --pp 512 --tg 32 --batch 8 --json --bandwidth-mb 256 --profile --model $W/$m.gguf 2> $R/profile-$n-$m.txt > /dev/null
    grep -A14 "^decode\|^batch" $R/profile-$n-$m.txt
  done
done
log done
