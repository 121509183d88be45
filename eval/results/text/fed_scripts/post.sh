#!/bin/bash
# post.sh CORPUS SWEEP_N : sweep + samples + FED spread + novelty for runs/${CORPUS}_seqgan_fed
# Run from anywhere; paths are relative to the checkout. Environment (defaults in brackets):
#   SEQGAN_KIT_DATA [../shared/corpora]  ENC_ROOT: word2vec encoder runs [runs/enc]  WORK: scratch [runs/fed]
#   $WORK/$CORPUS/test.txt and test2000.txt come from dump_splits.py ENC_RUN $WORK/$CORPUS.
set -u
C=$1; N=$2
cd "$(dirname "$0")/../../../.."
export PYTHONPATH=$PWD SEQGAN_KIT_DATA=${SEQGAN_KIT_DATA:-$PWD/../shared/corpora} OMP_NUM_THREADS=1
RUN=runs/${C}_seqgan_fed; ENC=${ENC_ROOT:-runs/enc}/${C}_word2vec; OUT=eval/results/text/${C}_fed
W=${WORK:-runs/fed}/$C
mkdir -p $W
T=0.5,0.75,1.0,1.25,1.5
mkdir -p $OUT
/usr/bin/time -f "sweep n=$N wall %e s" seqgan-kit eval sweep $RUN/generator_mle_best.safetensors $RUN --temperatures $T -n $N --encoder $ENC --out $OUT
if [ "$N" != 2000 ]; then
  /usr/bin/time -f "sweep n=2000 wall %e s" seqgan-kit eval sweep $RUN/generator_mle_best.safetensors $RUN --temperatures $T -n 2000 --encoder $ENC --out $OUT/n2000
fi
for m in mle seqgan; do
  if [ $m = mle ]; then G=$RUN/generator_mle_best.safetensors; else G=$RUN; fi
  for s in 0 1; do
    for n in $(printf "2000\n$N\n" | sort -u); do
      f=$W/${m}_n${n}_s$s.txt
      [ -f $f ] || seqgan-kit sample $G -n $n --seed $s --temperature 1.0 --out $f
      grep -v '^\s*$' $f > ${f%.txt}.clean.txt
      echo "$m n=$n seed=$s lines $(wc -l < $f) nonempty $(wc -l < ${f%.txt}.clean.txt)"
      seqgan-kit eval fed --encoder $ENC --hyp ${f%.txt}.clean.txt --ref $W/test.txt --hyp-run $RUN --json > $W/fed_${m}_n${n}_s$s.json
    done
  done
  seqgan-kit eval novelty --encoder $ENC --hyp $W/${m}_n2000_s0.clean.txt --hyp-run $RUN --json > $OUT/novelty_${m}.json
done
seqgan-kit eval novelty --encoder $ENC --hyp $W/test2000.txt --json > $OUT/novelty_test.json
# FED between the two sample seeds of one model (pure sample-to-sample distance at n=2000)
for m in mle seqgan; do
  seqgan-kit eval fed --encoder $ENC --hyp $W/${m}_n2000_s1.clean.txt --ref $W/${m}_n2000_s0.clean.txt --json > $W/fed_${m}_s1_vs_s0.json
done
seqgan-kit eval fed --encoder $ENC --hyp $W/seqgan_n2000_s0.clean.txt --ref $W/mle_n2000_s0.clean.txt --json > $W/fed_seqgan_vs_mle_s0.json
cp $RUN/metrics.jsonl $OUT/metrics_${C}_seqgan.jsonl
cp $RUN/curves.png $OUT/curves_${C}_seqgan.png
echo done
