"""How often a model's careful greedy judgments work out the right answer, and copy each response right.

PYTHONPATH=. python bench/miniworld_working.py /tmp/mini/b4 [n_items]
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from grm.config import MiniWorldConfig
from grm.miniworld.world import generate_items
from grm.shuffling import identity
from miniworld_kit import prompts_for, generate, working_stats

torch.set_num_threads(1)
d, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
tok = AutoTokenizer.from_pretrained(d); model = AutoModelForCausalLM.from_pretrained(d).eval()
items = generate_items(MiniWorldConfig(eval_items=n), 'eval')
outs, _ = generate(model, tok, [prompts_for(i, identity(len(i['responses']))) for i in items], 0.0)
st = working_stats((it, o, identity(len(it['responses']))) for it, o in zip(items, outs))
print(f"{d}: careful greedy {st['careful']}/{st['items']}; right working {st['working right %']:.1f}%; "
      f"responses copied right {st['copied right %']:.1f}%")
