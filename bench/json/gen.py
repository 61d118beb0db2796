#!/usr/bin/env python3
"""Writes a JSON document shaped like a batch of LLM API responses.

    python3 bench/json/gen.py OUT.json [SIZE_MB]     (default 20 MB)

The document is {"object": "list", "data": [chat completion, ...]}: ids,
nested choices/messages with long content strings (ASCII prose, accented
Latin, CJK, emoji, newlines, quotes, code with backslashes), tool calls whose
arguments are JSON inside a string, some per-token logprobs (floats, small
integer arrays), usage numbers, nulls and booleans. Output is deterministic
for a given size.
"""
import json
import random
import sys

WORDS = ("the model returns a streamed answer with tokens and usage counts while "
         "latency budget matters for each request retry backoff cache schema "
         "function call arguments validation error message context window").split()
ACCENTED = "café naïve résumé über straße façade jalapeño smörgåsbord".split()
CJK = "模型 返回 流式 回答 令牌 使用 统計 東京 天気 こんにちは 世界 안녕하세요 데이터".split()
EMOJI = ["😀", "🚀", "✅", "🔥", "🤖", "📦", "👍🏽", "🇫🇷"]
MODELS = ["gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "o3-mini", "claude-3-5-sonnet"]
TOOLS = ["get_weather", "search_docs", "run_sql", "create_ticket"]


def sentence(rng):
    words = []
    for _ in range(rng.randint(6, 18)):
        r = rng.random()
        if r < 0.80:
            words.append(rng.choice(WORDS))
        elif r < 0.88:
            words.append(rng.choice(ACCENTED))
        elif r < 0.96:
            words.append(rng.choice(CJK))
        else:
            words.append(rng.choice(EMOJI))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([".", ".", "!", "?", ":"])


def content(rng):
    parts = []
    for _ in range(rng.randint(3, 12)):
        r = rng.random()
        if r < 0.75:
            parts.append(" ".join(sentence(rng) for _ in range(rng.randint(2, 6))))
        elif r < 0.85:
            parts.append('- "%s" said the %s' % (rng.choice(WORDS), rng.choice(WORDS)))
        else:
            parts.append('```python\nprint("a\\tb", path="C:\\\\tmp\\\\x")\nfor i in range(%d):\n    pass\n```'
                         % rng.randint(1, 99))
    return "\n\n".join(parts)


def ident(rng, prefix, n):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(rng.choice(alphabet) for _ in range(n))


def logprobs(rng):
    items = []
    for _ in range(rng.randint(5, 30)):
        token = rng.choice(WORDS + CJK)
        items.append({
            "token": token,
            "logprob": -rng.random() * 5,
            "bytes": list(token.encode("utf-8")),
            "top_logprobs": [{"token": rng.choice(WORDS), "logprob": -rng.random() * 9,
                              "bytes": None} for _ in range(2)],
        })
    return {"content": items, "refusal": None}


def completion(rng, i):
    choices = []
    for c in range(rng.choice([1, 1, 1, 2, 3])):
        message = {"role": "assistant", "content": content(rng), "refusal": None}
        finish = "stop"
        if rng.random() < 0.2:
            args = {"city": rng.choice(CJK + ACCENTED), "days": rng.randint(1, 14),
                    "units": "metric", "query": sentence(rng)}
            message["tool_calls"] = [{"id": ident(rng, "call_", 24), "type": "function",
                                      "function": {"name": rng.choice(TOOLS),
                                                   "arguments": json.dumps(args)}}]
            finish = "tool_calls"
        choices.append({"index": c, "message": message,
                        "logprobs": logprobs(rng) if rng.random() < 0.25 else None,
                        "finish_reason": finish})
    prompt, done = rng.randint(10, 30000), rng.randint(1, 4000)
    return {
        "id": ident(rng, "chatcmpl-", 29),
        "object": "chat.completion",
        "created": 1718000000 + i * 7,
        "model": rng.choice(MODELS),
        "system_fingerprint": ident(rng, "fp_", 10) if rng.random() < 0.7 else None,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done,
            "prompt_tokens_details": {"cached_tokens": rng.choice([0, 1024, 2048]), "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": rng.randint(0, 500), "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        },
        "service_tier": "default",
        "temperature": round(rng.random() * 2, 2),
        "top_p": rng.random(),
        "stream": False,
        "cached": rng.random() < 0.5,
    }


def main():
    out = sys.argv[1]
    target = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 20_000_000
    rng = random.Random(42)
    parts, size, i = [], 0, 0
    while size < target:
        text = json.dumps(completion(rng, i), ensure_ascii=False, separators=(",", ":"))
        parts.append(text)
        size += len(text.encode("utf-8")) + 1
        i += 1
    with open(out, "w", encoding="utf-8") as f:
        f.write('{"object":"list","data":[' + ",".join(parts) + '],"has_more":false}')


if __name__ == "__main__":
    main()
