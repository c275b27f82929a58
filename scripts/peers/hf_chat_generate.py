#!/usr/bin/env python3
"""Greedy chat generation with transformers, the peer of ChatGenerationParityTests.

  hf_chat_generate.py DIR JOBS_JSON   JOBS_JSON: a list of {"messages": [...], "max_new_tokens": N}
Prints one JSON list: per job {"prompt_ids", "new_ids", "text"}, where prompt_ids come from
apply_chat_template(add_generation_prompt=True) and new_ids from generate(do_sample=False), which
stops at generation_config's eos_token_id (the end-of-turn token).
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    directory, jobs = sys.argv[1], json.loads(sys.argv[2])
    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    results = []
    for job in jobs:
        enc = tokenizer.apply_chat_template(job["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=False, max_new_tokens=job["max_new_tokens"])
        new = out[0, enc["input_ids"].shape[1]:].tolist()
        results.append({"prompt_ids": enc["input_ids"][0].tolist(), "new_ids": new,
                        "text": tokenizer.decode(new, skip_special_tokens=True)})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
