#!/usr/bin/env python3
"""Peer checks of Tether's GGUF import against the `gguf` package and transformers (GGUFTests).

  gguf_peer.py make DIR     write, with the `gguf` package only (fast):
      DIR/types.gguf        one tensor of each supported type (quantized by gguf.quants.quantize,
                            Q4_K/Q6_K as random blocks with sane scales), and DIR/types.json with
                            what gguf.quants.dequantize gives for each: {name: {"type", "shape", "values"}}
      DIR/q5k.gguf          a file with a Q5_K tensor (a type Tether does not dequantize)
      DIR/tiny-a/tiny.gguf  a tiny Llama (2 layers, hidden 256, GQA, mixed tensor types) with a byte-level
                            BPE vocabulary trained by `tokenizers`, control and user-defined tokens,
                            tokenizer.ggml.pre "smollm", no BOS added
      DIR/tiny-b/tiny.gguf  the same weights, pre "llama-bpe" (Llama 3 split regex), BOS added
      DIR/corpus.json       varied text lines for tokenizer parity
  gguf_peer.py check JOBS_JSON   with transformers, one process: a JSON list, one result per job
      ["tokenizer", GGUF, IMPORTED_DIR, CORPUS_JSON]  rebuilt tokenizer.json (tokenizers) vs
            AutoTokenizer.from_pretrained(dir, gguf_file=...): {"lines", "id_mismatches", "decode_mismatches", "examples"}
      ["model", GGUF, IMPORTED_DIR, IDS]  imported model.safetensors vs transformers' dequantized state_dict
            and transformers' logits: {"max_abs_weight", "worst_tensor", "tensors", "logits"}
"""
import json
import os
import random
import sys

import numpy as np


def corpus(seed=7, lines=2000):
    rng = random.Random(seed)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "world", "don't", "it's",
             "we'll", "I'm", "THEY'RE", "naïve", "café", "Straße", "über", "東京", "日本語", "中文字符", "한국어",
             "Привет", "мир", "😀", "🚀🔥", "👩‍💻", "α+β=γ", "x_1", "foo.bar()", "def", "return", "{", "}", "=>",
             "<|im_start|>", "<|im_end|>", "<think>", "<|endoftext|>", "12345", "3.14159", "1,000,000", "\t", "  ",
             "\n", "\r\n", "   ", "...", "!!", "?", "#include", "<stdio.h>", "http://example.com/a?b=c"]
    out = []
    for i in range(lines):
        n = rng.randint(1, 14)
        parts = []
        for _ in range(n):
            r = rng.random()
            if r < 0.15:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 12))))
            elif r < 0.2:
                parts.append(" " * rng.randint(1, 6))
            else:
                parts.append(rng.choice(words))
        sep = rng.choice([" ", "", "  ", "\n", " \n "])
        out.append(sep.join(parts))
    out += ["", " ", "  leading", "trailing  ", "a\n\n\nb", "0123456789" * 5, "<|im_start|>user\nWhat is 7 + 5?<|im_end|>\n<|im_start|>assistant\n"]
    return out


def random_k_blocks(rng, qtype, rows, cols):
    """Random blocks of a k-quant with small finite f16 scales (gguf cannot quantize to these)."""
    import gguf
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // block_size, type_size), dtype=np.uint8)
    scale = lambda n: rng.uniform(0.001, 0.05, size=(rows, cols // block_size, n)).astype(np.float16).view(np.uint8)
    if qtype == gguf.GGMLQuantizationType.Q4_K:
        raw[..., 0:4] = scale(2)
    else:  # Q6_K: d is the last two bytes
        raw[..., 208:210] = scale(1)
    return raw.reshape(rows, -1)


def write_types(directory):
    import gguf
    from gguf import GGMLQuantizationType as T
    rng = np.random.default_rng(3)
    w = gguf.GGUFWriter(os.path.join(directory, "types.gguf"), "llama")
    w.add_string("test.note", "one tensor per type")
    w.add_array("test.ints", [1, -2, 3])
    w.add_array("test.strings", ["a", "bé", ""])
    w.add_float64("test.f64", 0.25)
    w.add_bool("test.flag", True)
    expected = {}
    for name, qtype, shape in [("f32", T.F32, (3, 64)), ("f16", T.F16, (2, 96)), ("bf16", T.BF16, (4, 32)),
                               ("q8_0", T.Q8_0, (3, 64)), ("q4_0", T.Q4_0, (5, 32)), ("q4_1", T.Q4_1, (2, 128)),
                               ("q4_k", T.Q4_K, (3, 256)), ("q6_k", T.Q6_K, (2, 512)), ("vector", T.Q8_0, (96,))]:
        x = rng.standard_normal(shape).astype(np.float32) * 0.5
        if qtype in (T.Q4_K, T.Q6_K):
            data = random_k_blocks(rng, qtype, shape[0], shape[1])
        elif qtype == T.F32:
            data = x
        elif qtype == T.F16:
            data = x.astype(np.float16)
        else:
            data = gguf.quants.quantize(x, qtype)
        w.add_tensor(name, data, raw_dtype=qtype)
        values = gguf.quants.dequantize(data, qtype) if qtype not in (T.F32, T.F16) else data.astype(np.float32)
        expected[name] = {"type": qtype.name, "shape": list(shape), "values": values.astype(np.float32).ravel().tolist()}
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    with open(os.path.join(directory, "types.json"), "w") as f:
        json.dump(expected, f)

    w = gguf.GGUFWriter(os.path.join(directory, "q5k.gguf"), "llama")
    w.add_tensor("blk.0.attn_q.weight", np.zeros((2, 176), dtype=np.uint8), raw_dtype=T.Q5_K)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def train_vocab(lines):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    types = [3 if t in specials else 1 for t in tokens]
    tokens.append("<think>"); types.append(4)       # user-defined: matched whole, not special
    tokens.append("<ctl with space>"); types.append(3)  # control outside the byte alphabet: not an added token
    return tokens, types, merges


def write_tiny(directory, tokens, types, merges, pre, add_bos, seed=5):
    import gguf
    from gguf import GGMLQuantizationType as T
    rng = np.random.default_rng(seed)
    hidden, layers, heads, kv_heads, ffn, vocab = 256, 2, 4, 2, 512, len(tokens)
    head_dim = hidden // heads
    os.makedirs(directory, exist_ok=True)
    w = gguf.GGUFWriter(os.path.join(directory, "tiny.gguf"), "llama")
    w.add_block_count(layers); w.add_context_length(128); w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn); w.add_head_count(heads); w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(50000.0); w.add_layer_norm_rms_eps(1e-5); w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre(pre)
    w.add_token_list(tokens); w.add_token_types(types); w.add_token_merges(merges)
    w.add_bos_token_id(1); w.add_eos_token_id(2); w.add_unk_token_id(0); w.add_pad_token_id(2)
    w.add_add_bos_token(add_bos)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")

    def tensor(name, shape, qtype, scale=0.2):
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        if qtype == T.F32:
            data = x
        elif qtype == T.F16:
            data = x.astype(np.float16)
        elif qtype in (T.Q4_K, T.Q6_K):
            data = random_k_blocks(rng, qtype, shape[0], shape[1])
        else:
            data = gguf.quants.quantize(x, qtype)
        w.add_tensor(name, data, raw_dtype=qtype)

    tensor("token_embd.weight", (vocab, hidden), T.Q8_0, 1.0)
    for l in range(layers):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", rng.uniform(0.5, 1.5, hidden).astype(np.float32))
        tensor(p + "attn_q.weight", (hidden, hidden), [T.Q4_0, T.Q4_K][l])
        tensor(p + "attn_k.weight", (kv_heads * head_dim, hidden), [T.Q4_1, T.Q6_K][l])
        tensor(p + "attn_v.weight", (kv_heads * head_dim, hidden), [T.F16, T.BF16][l])
        tensor(p + "attn_output.weight", (hidden, hidden), [T.Q8_0, T.F32][l])
        w.add_tensor(p + "ffn_norm.weight", rng.uniform(0.5, 1.5, hidden).astype(np.float32))
        tensor(p + "ffn_gate.weight", (ffn, hidden), T.Q4_1)
        tensor(p + "ffn_up.weight", (ffn, hidden), [T.Q4_K, T.Q8_0][l])
        tensor(p + "ffn_down.weight", (hidden, ffn), [T.Q6_K, T.Q4_0][l])
    w.add_tensor("output_norm.weight", rng.uniform(0.5, 1.5, hidden).astype(np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def make(directory):
    os.makedirs(directory, exist_ok=True)
    write_types(directory)
    lines = corpus()
    tokens, types, merges = train_vocab(lines[:1500])
    write_tiny(os.path.join(directory, "tiny-a"), tokens, types, merges, "smollm", False)
    write_tiny(os.path.join(directory, "tiny-b"), tokens, types, merges, "llama-bpe", True)
    with open(os.path.join(directory, "corpus.json"), "w") as f:
        json.dump(lines, f)
    print(json.dumps({"ok": True}))


def check_tokenizer(gguf_path, imported, corpus_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    lines = json.load(open(corpus_path))
    ours = Tokenizer.from_file(os.path.join(imported, "tokenizer.json"))
    theirs = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path))
    id_mismatches = decode_mismatches = 0
    examples = []
    for line in lines:
        a = ours.encode(line).ids
        b = theirs(line)["input_ids"]
        if a != b:
            id_mismatches += 1
            if len(examples) < 3:
                examples.append({"text": line, "ours": a, "transformers": b})
        if ours.decode(a, skip_special_tokens=False) != theirs.decode(b, skip_special_tokens=False):
            decode_mismatches += 1
    return {"lines": len(lines), "id_mismatches": id_mismatches, "decode_mismatches": decode_mismatches, "examples": examples}


def check_model(gguf_path, imported, ids):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path),
                                                 dtype=torch.float32).eval()
    ours = load_file(os.path.join(imported, "model.safetensors"))
    theirs = model.state_dict()
    worst, worst_name, compared = 0.0, None, 0
    for name, t in theirs.items():
        if name == "lm_head.weight" and name not in ours and model.config.tie_word_embeddings:
            continue
        if name not in ours:
            raise SystemExit(f"{name} is in transformers' model but not in the import")
        d = (ours[name].float() - t.float()).abs().max().item()
        compared += 1
        if d >= worst:
            worst, worst_name = d, name
    extra = sorted(set(ours) - set(theirs))
    if extra:
        raise SystemExit(f"import has tensors transformers lacks: {extra[:5]}")
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    return {"max_abs_weight": worst, "worst_tensor": worst_name, "tensors": compared, "logits": logits.tolist()}


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        jobs = {"tokenizer": check_tokenizer, "model": check_model}
        print(json.dumps([jobs[j[0]](*j[1:]) for j in json.loads(sys.argv[2])]))
