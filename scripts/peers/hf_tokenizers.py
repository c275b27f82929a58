#!/usr/bin/env python3
"""Peer checks of Tether's tokenizer against Hugging Face `tokenizers` (used by TetherModelTests).

  hf_tokenizers.py JOBS_JSON   run a list of jobs in one process, print a JSON list with one
                               result per job:

  ["train", DIR, STYLE, CORPUS_JSON, VOCAB]
        train a byte-level BPE with tokenizers' BpeTrainer on the strings in CORPUS_JSON and save
        DIR/tokenizer.json + DIR/tokenizer_config.json. STYLE is the family it imitates:
          llama3  Split(Llama 3 regex) + ByteLevel, ignore_merges, <|begin_of_text|> added by
                  TemplateProcessing, merges written in the "a b" string form
          qwen2   NFC, Split(Qwen2 regex, one digit per piece) + ByteLevel, ChatML specials, no BOS
          digits  Digits(individual) + ByteLevel(add_prefix_space, GPT-2 regex), <s> </s>
        result: {"vocab_size": N}
  ["encode", TOKENIZER_JSON, CORPUS_JSON]
        result: [{"ids": ..., "text": decode(ids, skip_special_tokens=False),
                  "skipped": decode(ids, skip_special_tokens=True)}, ...] (add_special_tokens=True)
  ["bench", TOKENIZER_JSON, TEXT_FILE, REPEATS]
        encode the file's lines with encode_batch_fast (no offsets: Tether computes none either;
        run with TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1 for one thread); result
        {"mb_per_s": best of REPEATS, "tokens": N}
"""
import json
import os
import sys
import time

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def train(directory, style, corpus_path, vocab_size):
    with open(corpus_path, encoding="utf-8") as f:
        corpus = json.load(f)
    tok = Tokenizer(models.BPE(ignore_merges=(style == "llama3")))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if style == "llama3":
        specials, bos, config = ["<|begin_of_text|>", "<|end_of_text|>"], "<|begin_of_text|>", \
            {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated"), byte_level])
    elif style == "qwen2":
        specials, bos, config = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, \
            {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2), behavior="isolated"), byte_level])
    elif style == "digits":
        specials, bos, config = ["<s>", "</s>"], "<s>", {"bos_token": "<s>", "eos_token": "</s>"}
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    else:
        raise SystemExit(f"unknown style {style}")
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    steps = [processors.ByteLevel(trim_offsets=False)]
    if bos is not None:
        steps.append(processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                   special_tokens=[(bos, tok.token_to_id(bos))]))
    tok.post_processor = processors.Sequence(steps)
    os.makedirs(directory, exist_ok=True)
    data = json.loads(tok.to_str())
    if style == "llama3":
        data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    with open(os.path.join(directory, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", **config}, f)
    return {"vocab_size": tok.get_vocab_size()}


def encode(tokenizer_path, corpus_path):
    tok = Tokenizer.from_file(tokenizer_path)
    with open(corpus_path, encoding="utf-8") as f:
        corpus = json.load(f)
    out = []
    for text in corpus:
        ids = tok.encode(text).ids
        out.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                    "skipped": tok.decode(ids, skip_special_tokens=True)})
    return out


def bench(tokenizer_path, text_path, repeats):
    tok = Tokenizer.from_file(tokenizer_path)
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    size = len(text.encode("utf-8"))
    best, tokens = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        encodings = tok.encode_batch_fast(lines, add_special_tokens=False)
        best = min(best, time.perf_counter() - start)
        tokens = sum(len(e.ids) for e in encodings)
    return {"mb_per_s": size / best / 1e6, "tokens": tokens}


def main():
    results = []
    for job in json.loads(sys.argv[1]):
        kind, args = job[0], job[1:]
        if kind == "train":
            results.append(train(*args))
        elif kind == "encode":
            results.append(encode(*args))
        elif kind == "bench":
            results.append(bench(*args))
        else:
            raise SystemExit(f"unknown job {kind}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
