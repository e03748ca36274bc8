"""How often a model's careful greedy judgments work out the right answer, and copy each response right.

PYTHONPATH=. python bench/miniworld_working.py /tmp/mini/b4 [n_items]
"""
import json, os, re, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from grm.config import MiniWorldConfig
from grm.miniworld.families import TASKS
from grm.miniworld.world import generate_items
from grm.shuffling import identity
from miniworld_kit import prompts_for, generate, mode_of

torch.set_num_threads(1)
d, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
tok = AutoTokenizer.from_pretrained(d); model = AutoModelForCausalLM.from_pretrained(d).eval()
items = generate_items(MiniWorldConfig(eval_items=n), 'eval')
outs, _ = generate(model, tok, [prompts_for(i, identity(len(i['responses']))) for i in items], 0.0)
careful = working = copied = copies = 0
for it, o in zip(items, outs):
    if mode_of(o) != 'careful':
        continue
    careful += 1
    m = json.loads(it['meta']); t = TASKS[m['task']]
    working += t.working(m['args'], m['answer']) in o
    said = re.findall(r'Response (\d+): (.*?), a', o)
    copies += len(it['responses'])
    copied += sum(1 for i, s in said if int(i) <= len(it['responses']) and it['responses'][int(i) - 1] == s)
print(f'{d}: careful greedy {careful}/{len(items)}; right working {100*working/max(careful,1):.1f}%; '
      f'responses copied right {100*copied/max(copies,1):.1f}%')
