#!/usr/bin/env python3
"""Peer checks of Tether checkpoints against Hugging Face transformers (used by TetherModelTests).

  hf_llama.py logits DIR IDS_JSON NEW    load DIR with LlamaForCausalLM.from_pretrained, print JSON
                                         {"logits": [T][V] for IDS, "greedy": NEW greedy tokens}
  hf_llama.py random DIR SEED IDS_JSON NEW   save a random tiny LlamaForCausalLM (safetensors) to DIR,
                                         then print what `logits` prints for it
"""
import json
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def logits(directory, ids_json, new_tokens):
    model = LlamaForCausalLM.from_pretrained(directory, torch_dtype=torch.float32).eval()
    ids = torch.tensor([json.loads(ids_json)])
    with torch.no_grad():
        out = model(ids).logits[0]
        greedy = model.generate(ids, max_new_tokens=int(new_tokens), do_sample=False,
                                eos_token_id=None, pad_token_id=0)[0, ids.shape[1]:]
    print(json.dumps({"logits": out.tolist(), "greedy": greedy.tolist()}))


def random_model(directory, seed, ids_json, new_tokens):
    torch.manual_seed(int(seed))
    config = LlamaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64,
                         rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # non-trivial norm weights, so a mix-up of norms would show
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    model.save_pretrained(directory, safe_serialization=True)
    logits(directory, ids_json, new_tokens)


if __name__ == "__main__":
    {"logits": logits, "random": random_model}[sys.argv[1]](*sys.argv[2:])
