"""Prototype of SPCT's rejective fine-tuning on the miniature world: sample the base model on train items,
accept by the paper's rules (grm.rules.rft_acceptance), fine-tune on the accepted trajectories, re-measure.

PYTHONPATH=. python bench/miniworld_rft.py --base /tmp/mini/b3 --out /tmp/mini/rft3 --rounds 2
"""
import argparse, collections, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from grm.config import MiniWorldConfig, BootstrapConfig, TrainerConfig
from grm.miniworld.world import generate_items
from grm.miniworld.bootstrap import Example, encode, pretrain
from grm.rules import rft_acceptance, Trajectory
from grm.shuffling import permutation, shown, shown_index
from miniworld_kit import prompts_for, generate, score, evaluate, mode_of
ap = argparse.ArgumentParser()
ap.add_argument('--base', default='/tmp/mini/b1'); ap.add_argument('--out', default='/tmp/mini/rft1')
ap.add_argument('--train', type=int, default=600); ap.add_argument('--n', type=int, default=3)
ap.add_argument('--temp', type=float, default=1.0); ap.add_argument('--steps', type=int, default=60)
ap.add_argument('--bs', type=int, default=16); ap.add_argument('--lr', type=float, default=5e-4)
ap.add_argument('--eval', type=int, default=300); ap.add_argument('--threads', type=int, default=2)
ap.add_argument('--rounds', type=int, default=1); ap.add_argument('--k', type=int, default=8)
ap.add_argument('--seed', type=int, default=None, help="tiny.yaml's world for this seed (default: the default world)")
a = ap.parse_args()
torch.set_num_threads(a.threads)
tok = AutoTokenizer.from_pretrained(a.base); model = AutoModelForCausalLM.from_pretrained(a.base)
if a.seed is None:
    world = MiniWorldConfig(train_items=a.train, eval_items=a.eval)
else:
    from grm.config import load_config
    world = load_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'configs', 'tiny.yaml'),
                        [f'seed={a.seed}']).data.miniworld.model_copy(update={'train_items': a.train, 'eval_items': a.eval})
train = generate_items(world, 'train'); ev = generate_items(world, 'eval')
for rnd in range(a.rounds):
    model.eval()
    chats, meta = [], []
    for ii, it in enumerate(train):
        n = len(it['responses'])
        for j in range(a.n):
            p = permutation(n, rnd, 'rft', ii, j); chats.append(prompts_for(it, p)); meta.append((ii, p, False))
        if n > 1:
            p = permutation(n, rnd, 'rft', ii, 'hint'); chats.append(prompts_for(it, p, hint=shown_index(it['best'], p))); meta.append((ii, p, True))
    t0 = time.time(); texts, nt = generate(model, tok, chats, a.temp, seed=rnd); ts = time.time() - t0
    by = collections.defaultdict(list)
    for c, t, (ii, p, h) in zip(chats, texts, meta):
        ok, orig, corr = score(train[ii], t, p); by[ii].append((c, t, h, ok, corr))
    acc = []; stats = collections.Counter()
    for ii, rows in by.items():
        dec = rft_acceptance([Trajectory(h, ok, corr) for _, _, h, ok, corr in rows])
        for (c, t, h, ok, corr), d in zip(rows, dec):
            stats[(('hint' if h else 'plain'), d.reject_reason or 'accepted', mode_of(t))] += 1
            if d.accepted: acc.append(Example(c, t, mode_of(t), True))
    print(f'round {rnd}: sampled {len(texts)} in {ts:.0f}s ({nt/ts:,.0f} tok/s); accepted {len(acc)}')
    for k_, v in sorted(stats.items()): print('  ', k_, v)
    sc = BootstrapConfig(train=TrainerConfig(learning_rate=a.lr, batch_size=a.bs, per_device_batch_size=a.bs, max_steps=a.steps, warmup_ratio=0.1))
    enc = encode(tok, acc, 512)
    t1 = time.time(); r = pretrain(model, tok, enc, sc, seed=rnd); print(f'sft {a.steps} steps {time.time()-t1:.0f}s', r)
model.save_pretrained(a.out); tok.save_pretrained(a.out)
out, greedy = evaluate(model, tok, ev, k=a.k, do_sampling=a.k > 0)
print('EVAL', {k: v for k, v in out.items() if k != 'table'})
for k_, v in sorted(out['table'].items()): print(k_, v)
