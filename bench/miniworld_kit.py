"""Probe helpers for the miniature world: HF generation and scoring with the project's parsing, rules and voting.

Not the pipeline's judge stage: a self-contained harness to size the miniature world (see grm/miniworld/README.md).
"""
import collections
import json
import time
from pathlib import Path

import torch
from grm.parsing import parse_scores, GRADED, BINARY
from grm.rules import is_correct, item_truth, rft_acceptance, Trajectory
from grm.voting import vote
from grm.shuffling import permutation, shown, to_original, identity
from grm.prompts import grm_prompt, as_chat, Templates
from grm.miniworld.families import TASKS
from grm.miniworld import teacher
from grm.miniworld.teacher import is_shortcut

TEMPL = Templates.load({'grm': 'templates/miniworld_grm.txt', 'single': 'templates/miniworld_single.txt', 'response': 'templates/miniworld_response.txt'},
                       base_dir=Path(__file__).resolve().parents[1] / 'configs')

def prompts_for(item, perm, hint=None):
    resp = shown(item['responses'], perm)
    return as_chat(grm_prompt(item['conversation'], resp, TEMPL, binary=len(resp) == 1, hint_best=hint))

@torch.no_grad()
def generate(model, tok, chats, temperature, max_new=120, bs=64, seed=0):
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = [None] * len(texts); ntok = 0
    torch.manual_seed(seed)
    for s in range(0, len(order), bs):
        idx = order[s:s + bs]
        enc = tok([texts[i] for i in idx], return_tensors='pt', padding=True, add_special_tokens=False)
        kw = dict(do_sample=True, temperature=temperature, top_p=1.0) if temperature > 0 else dict(do_sample=False)
        g = model.generate(**enc, max_new_tokens=max_new, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **kw)
        g = g[:, enc['input_ids'].shape[1]:]
        for r, i in enumerate(idx):
            ids = g[r].tolist()
            if tok.eos_token_id in ids: ids = ids[:ids.index(tok.eos_token_id)]
            ntok += len(ids)
            out[i] = tok.decode(ids, skip_special_tokens=True)
    return out, ntok

def score(item, text, perm):
    n = len(item['responses'])
    st, sc = parse_scores(text, n, BINARY if n == 1 else GRADED)
    orig = to_original(sc, perm) if sc else None
    truth = item_truth(item['label_kind'], item['best'], item['ratings'])
    return st == 'ok', orig, is_correct(orig, **truth)

def shape(item):
    return item['subset'].split('/')[1]

def mode_of(text):
    return 'shortcut' if is_shortcut(text) else 'careful'

def working_stats(judged):
    """Of (item, completion, permutation) judgments: how many are careful (not a shortcut), how often a careful
    one writes the right working (the task's working with the right answer), how often it copies a shown
    response right (`Response i: x, a ...` against the i-th response in the order it was shown), and the two
    steps after those: in judgments with the right working, how often a verdict (`a match` / `a mismatch`) is
    right for the value written, and how often the boxed scores follow the verdicts (every match above every
    mismatch; a single response's 0/1 score its verdict)."""
    n = careful = working = copied = copies = verdicts = verdicts_right = follow = follow_n = 0
    for it, text, perm in judged:
        n += 1
        if mode_of(text) != 'careful':
            continue
        careful += 1
        m = json.loads(it['meta'])
        right_working = TASKS[m['task']].working(m['args'], m['answer']) in text
        working += right_working
        resp = shown(it['responses'], perm)
        copies += len(resp)
        found = teacher.verdicts(text)
        copied += sum(1 for i, x, _, _ in found if 0 < i <= len(resp) and resp[i - 1] == x)
        if right_working:
            verdicts += len(found)
            verdicts_right += sum((x == m['answer']) == said for _, x, _, said in found)  # answer: the solved text
        said = {i: v for i, _, _, v in found if 0 < i <= len(resp)}
        _, sc = parse_scores(text, len(resp), BINARY if len(resp) == 1 else GRADED)
        if len(said) == len(resp) and sc:
            follow_n += 1
            if len(resp) == 1:
                follow += sc[0] == int(said[1])
            else:
                hi = [sc[i - 1] for i, v in said.items() if v]; lo = [sc[i - 1] for i, v in said.items() if not v]
                follow += bool(hi) and (not lo or min(hi) > max(lo))
    return {'items': n, 'careful': careful, 'working right %': 100 * working / max(careful, 1),
            'copied right %': 100 * copied / max(copies, 1),
            'verdicts right %': 100 * verdicts_right / max(verdicts, 1),
            'scores follow verdicts %': 100 * follow / max(follow_n, 1)}

def evaluate(model, tok, items, k=8, temp=0.5, max_new=120, log=print, do_sampling=True):
    t0 = time.time()
    greedy, nt = generate(model, tok, [prompts_for(it, identity(len(it['responses']))) for it in items], 0.0, max_new)
    tg = time.time() - t0
    res = collections.defaultdict(lambda: collections.defaultdict(list))
    for it, g in zip(items, greedy):
        ok, orig, c = score(it, g, identity(len(it['responses'])))
        for key in ('all', shape(it), it['subset'].split('/')[0]):
            res[key]['parse'].append(ok); res[key]['greedy'].append(c); res[key]['g_short'].append(mode_of(g) == 'shortcut')
    out = {'greedy_s': tg, 'greedy_tok': nt}
    if do_sampling:
        chats, perms = [], []
        for ii, it in enumerate(items):
            for j in range(k):
                p = permutation(len(it['responses']), 0, ii, j); perms.append(p); chats.append(prompts_for(it, p))
        t1 = time.time()
        samples, nt2 = generate(model, tok, chats, temp, max_new)
        out['sample_s'] = time.time() - t1; out['sample_tok'] = nt2
        for ii, it in enumerate(items):
            sc = []
            for j in range(k):
                ok, orig, c = score(it, samples[ii * k + j], perms[ii * k + j]); sc.append(orig)
            n = len(it['responses'])
            truth = item_truth(it['label_kind'], it['best'], it['ratings'])
            def acc(v):
                if n == 1:
                    lab = v.label()
                    return lab is not None and lab == truth['label']
                return v.best is not None and v.best == truth['best']
            v1 = acc(vote(sc[:1], n, key=str(ii))); v8 = acc(vote(sc, n, key=str(ii)))
            for key in ('all', shape(it), it['subset'].split('/')[0]):
                res[key]['v1'].append(v1); res[key]['v8'].append(v8)
                res[key]['s_parse'].append(sum(s is not None for s in sc) / k)
                res[key]['s_short'].append(sum(mode_of(samples[ii*k+j]) == 'shortcut' for j in range(k)) / k)
    table = {key: {m: round(100 * sum(v) / len(v), 1) for m, v in d.items()} | {'n': len(d['greedy'])} for key, d in res.items()}
    out['table'] = table
    return out, greedy
