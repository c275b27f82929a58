#!/usr/bin/env python3
"""Peer renders of chat templates by Hugging Face transformers (used by TetherModelTests).

  hf_chat_template.py JOBS.json    render every case in one process (importing transformers is
                                   most of the cost); print a JSON list with one result per case,
                                   {"text": rendered} or {"error": "ExceptionType: message"}

JOBS.json: {"templates": {NAME: SOURCE}, "cases": [{"template": NAME, "messages": [...],
            "add_generation_prompt": bool, "bos_token"?: str, "eos_token"?: str,
            "tools"?: [...], "extra"?: {...}, "tokenizer_dir"?: DIR}]}

Each case goes through `PreTrainedTokenizerFast.apply_chat_template(..., tokenize=False)`, the API
users call, on a tokenizer that defines only the given special tokens (its vocabulary is
irrelevant to rendering), or through `AutoTokenizer.from_pretrained(tokenizer_dir)` with the
directory's own template and special tokens.
"""
import json
import sys

from tokenizers import Tokenizer, models
from transformers import AutoTokenizer, PreTrainedTokenizerFast


def tokenizer_for(case):
    special = {k: case[k] for k in ("bos_token", "eos_token") if k in case}
    backend = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, **special)


def render(templates, case):
    if "tokenizer_dir" in case:  # a real tokenizer directory, with its own template and special tokens
        tokenizer = AutoTokenizer.from_pretrained(case["tokenizer_dir"])
    else:
        tokenizer = tokenizer_for(case)
        tokenizer.chat_template = templates[case["template"]]
    try:
        text = tokenizer.apply_chat_template(
            case["messages"], tools=case.get("tools"), tokenize=False,
            add_generation_prompt=case["add_generation_prompt"], **case.get("extra", {}))
        return {"text": text}
    except Exception as e:  # the error is the peer's answer, compared by the test
        return {"error": f"{type(e).__name__}: {e}"}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        jobs = json.load(f)
    print(json.dumps([render(jobs["templates"], case) for case in jobs["cases"]], ensure_ascii=True))
