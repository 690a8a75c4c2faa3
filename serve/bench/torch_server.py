"""The "what people would otherwise deploy" baseline for `bench-serve`: a
minimal Python HTTP server that scores sessions with the same distill-guard
bundle in PyTorch eager (fp32, no_grad), one request at a time per thread,
no cross-request batching.

Same API shape as `serve` (`POST /v1/score` with `{"sessions": [...]}`,
`GET /ready`). Same model: the bundle's BERT encoder weights, masked mean
pooling, and its head (hidden layer, GELU, output, sigmoid). Same session
input: up to `max_prompts` evenly spaced prompts joined with [SEP], cut to
`max_tokens` tokens (a plain cut, not the water-filling `serve` does).
Difference, in the baseline's favour: it does not compute the 36
behavioural features; it feeds their training means (zeros once
standardised).

Run: python torch_server.py BUNDLE_DIR --port 8090 --threads 2
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import BertConfig, BertModel


def evenly_spaced(n, k):
    if n <= k:
        return list(range(n))
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


class Scorer:
    def __init__(self, bundle, threads):
        torch.set_num_threads(threads)
        with open(f"{bundle}/config.json") as f:
            cfg = json.load(f)
        with open(f"{bundle}/head_config.json") as f:
            self.head_cfg = json.load(f)
        with open(f"{bundle}/threshold.json") as f:
            self.threshold = json.load(f)["threshold"]
        weights = load_file(f"{bundle}/model.safetensors")
        self.encoder = BertModel(BertConfig(**cfg), add_pooling_layer=False)
        enc = {k: v for k, v in weights.items() if not k.startswith("head.")}
        missing, unexpected = self.encoder.load_state_dict(enc, strict=False)
        assert not [m for m in missing if "position_ids" not in m], missing
        assert not unexpected, unexpected
        self.encoder.eval()
        hidden = cfg["hidden_size"]
        nf = self.head_cfg["num_features"]
        self.hidden = torch.nn.Linear(hidden + nf, self.head_cfg["hidden_dim"])
        self.hidden.load_state_dict({"weight": weights["head.hidden.weight"], "bias": weights["head.hidden.bias"]})
        self.output = torch.nn.Linear(self.head_cfg["hidden_dim"], 1)
        self.output.load_state_dict({"weight": weights["head.output.weight"], "bias": weights["head.output.bias"]})
        self.tokenizer = Tokenizer.from_file(f"{bundle}/tokenizer.json")
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.num_features = nf

    def encode(self, session):
        events = session["events"]
        keep = evenly_spaced(len(events), self.head_cfg["max_prompts"])
        text = " [SEP] ".join(events[i]["prompt"][: 8 * self.head_cfg["max_tokens"]] for i in keep)
        ids = self.tokenizer.encode(text).ids  # [CLS] ... [SEP] by the post-processor
        return ids[: self.head_cfg["max_tokens"]]

    @torch.no_grad()
    def score(self, sessions):
        encoded = [self.encode(s) for s in sessions]
        longest = max(len(e) for e in encoded)
        ids = torch.zeros((len(encoded), longest), dtype=torch.long)
        mask = torch.zeros((len(encoded), longest), dtype=torch.long)
        for i, e in enumerate(encoded):
            ids[i, : len(e)] = torch.tensor(e)
            mask[i, : len(e)] = 1
        out = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(out.dtype)
        pooled = (out * m).sum(1) / m.sum(1)
        feats = torch.zeros((len(encoded), self.num_features))
        h = torch.nn.functional.gelu(self.hidden(torch.cat([pooled, feats], 1)))
        return torch.sigmoid(self.output(h).squeeze(1)).tolist()


def handler(scorer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle's algorithm the
        # body waits for the client's delayed ACK of the headers (about
        # 40 ms on Linux), which would be charged to the baseline's model.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/ready":
                self.reply(200, {"status": "ready"})
            else:
                self.reply(404, {"error": "no route", "error_type": "not_found"})

        def do_POST(self):
            length = int(self.headers.get("content-length", 0))
            try:
                body = json.loads(self.rfile.read(length))
                sessions = body["sessions"]
            except (ValueError, KeyError) as e:
                self.reply(400, {"error": str(e), "error_type": "bad_request"})
                return
            scores = scorer.score(sessions)
            self.reply(200, {"results": [
                {"session_id": s["session_id"], "score": p, "flagged": p >= scorer.threshold,
                 "threshold": scorer.threshold}
                for s, p in zip(sessions, scores)
            ]})

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    scorer = Scorer(a.bundle, a.threads)
    # The default listen backlog (5) resets connections under 32 clients.
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", a.port), handler(scorer))
    print(f"torch baseline listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
