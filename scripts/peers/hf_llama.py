#!/usr/bin/env python3
"""Peer checks of Tether checkpoints against Hugging Face transformers (used by TetherModelTests).

  hf_llama.py JOBS_JSON    run a list of jobs in one process (importing transformers once is
                           most of the cost), print a JSON list with one result per job:

  ["logits", DIR, IDS, NEW]        load DIR with AutoModelForCausalLM.from_pretrained (F32); result
                                   {"logits": [T][V] for IDS, "greedy": NEW greedy tokens, no stop,
                                    "class": model class name, "model_type": config.model_type}
  ["random", DIR, SEED, IDS, NEW]  save a random tiny LlamaForCausalLM (safetensors) to DIR, then
                                   as "logits" on DIR
  ["family", DIR, SEED, IDS, NEW, CONFIG, SAVE]
                                   save a random model of CONFIG (AutoConfig.for_model kwargs, with
                                   "model_type") to DIR, weights ~ N(0, 0.3²), norms ~ U(0.5, 1.5),
                                   biases ~ N(0, 0.3²) so logits are far from uniform; SAVE may set
                                   "dtype" ("bfloat16", "float16") and "max_shard_size"; then as
                                   "logits" on DIR
"""
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM


def logits(directory, ids, new_tokens):
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    ids = torch.tensor([ids])
    with torch.no_grad():
        out = model(ids).logits[0]
        greedy = model.generate(ids, max_new_tokens=new_tokens, do_sample=False,
                                eos_token_id=None, pad_token_id=0)[0, ids.shape[1]:]
    return {"logits": out.tolist(), "greedy": greedy.tolist(),
            "class": type(model).__name__, "model_type": model.config.model_type}


def random_model(directory, seed, ids, new_tokens):
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64,
                         rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # non-trivial norm weights, so a mix-up of norms would show
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    model.save_pretrained(directory, safe_serialization=True)
    return logits(directory, ids, new_tokens)


def family_model(directory, seed, ids, new_tokens, config, save):
    torch.manual_seed(seed)
    kwargs = dict(config)
    model_type = kwargs.pop("model_type")
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **kwargs)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.3)
    if "dtype" in save:
        model = model.to(getattr(torch, save["dtype"]))
    model.save_pretrained(directory, safe_serialization=True,
                          **({"max_shard_size": save["max_shard_size"]} if "max_shard_size" in save else {}))
    return logits(directory, ids, new_tokens)


if __name__ == "__main__":
    jobs = {"logits": logits, "random": random_model, "family": family_model}
    print(json.dumps([jobs[job[0]](*job[1:]) for job in json.loads(sys.argv[1])]))
