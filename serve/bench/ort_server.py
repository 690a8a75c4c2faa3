"""A second baseline for `bench-serve`: what a team would deploy on a CPU
instead of `serve` if it took the fastest common route, ONNX Runtime with
int8 dynamic quantisation, behind a small server that batches concurrent
requests.

The model is the same bundle as `serve` and `torch_server.py` (the
bundle's encoder, masked mean pooling and its head, with the behavioural
features at their training means, as in `torch_server.py`), exported with
`torch.onnx.export` and quantised with `quantize_dynamic` (int8 weights
per output channel, activations at run time; value_info cleared first, as
`bench/baselines/quantize_onnx.py` does). Sessions are encoded as in
`torch_server.py`.

Batching, kept simple: request threads put their sessions on one queue;
one model thread takes whatever is queued (up to --max-batch sessions),
runs it as one padded batch and hands each request its scores. Nothing
waits for a batch to fill: under load the queue fills while the model
runs.

Run: python ort_server.py BUNDLE_DIR --port 8091 --threads 2 [--onnx-dir DIR]
"""
import argparse
import os
import queue
import tempfile
import threading
from http.server import ThreadingHTTPServer

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from torch_server import Scorer, handler


class Pooled(torch.nn.Module):
    """Encoder, masked mean pooling and head of a `Scorer`: the graph that
    is exported."""

    def __init__(self, scorer):
        super().__init__()
        self.encoder = scorer.encoder
        self.hidden = scorer.hidden
        self.output = scorer.output
        self.num_features = scorer.num_features

    def forward(self, input_ids, attention_mask):
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(out.dtype)
        pooled = (out * m).sum(1) / m.sum(1)
        feats = torch.zeros((pooled.shape[0], self.num_features), dtype=pooled.dtype)
        h = torch.nn.functional.gelu(self.hidden(torch.cat([pooled, feats], 1)))
        return torch.sigmoid(self.output(h).squeeze(1))


def export_int8(scorer, out_dir):
    """Writes the fp32 export and its int8 quantisation; returns the int8 path."""
    os.makedirs(out_dir, exist_ok=True)
    fp32 = os.path.join(out_dir, "serve-baseline.onnx")
    int8 = os.path.join(out_dir, "serve-baseline.int8.onnx")
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
            "scores": {0: "batch"}}
    torch.onnx.export(Pooled(scorer).eval(), (ids, mask), fp32,
                      input_names=["input_ids", "attention_mask"], output_names=["scores"],
                      dynamic_axes=axes, opset_version=18, dynamo=False)
    model = onnx.load(fp32)
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmp:
        cleared = os.path.join(tmp, "cleared.onnx")
        onnx.save(model, cleared)
        quantize_dynamic(cleared, int8, weight_type=QuantType.QInt8, per_channel=True)
    return int8


class BatchingScorer:
    """Scores sessions with the int8 model, batching concurrent requests."""

    def __init__(self, scorer, model_path, threads, max_batch):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
        self.scorer = scorer
        self.threshold = scorer.threshold
        self.max_batch = max_batch
        self.queue = queue.Queue()
        threading.Thread(target=self.run, daemon=True).start()

    def score(self, sessions):
        """Called by request threads: waits for this request's scores."""
        done = threading.Event()
        item = {"encoded": [self.scorer.encode(s) for s in sessions], "done": done}
        self.queue.put(item)
        done.wait()
        if "error" in item:
            raise item["error"]
        return item["scores"]

    def take_batch(self):
        items = [self.queue.get()]
        size = len(items[0]["encoded"])
        while size < self.max_batch:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            size += len(item["encoded"])
        return items

    def run(self):
        while True:
            items = self.take_batch()
            try:
                encoded = [e for item in items for e in item["encoded"]]
                scores = self.forward(encoded)
                at = 0
                for item in items:
                    n = len(item["encoded"])
                    item["scores"] = scores[at:at + n]
                    at += n
            except Exception as e:  # handed to every waiting request
                for item in items:
                    item["error"] = e
            for item in items:
                item["done"].set()

    def forward(self, encoded):
        longest = max(len(e) for e in encoded)
        ids = np.zeros((len(encoded), longest), dtype=np.int64)
        mask = np.zeros((len(encoded), longest), dtype=np.int64)
        for i, e in enumerate(encoded):
            ids[i, : len(e)] = e
            mask[i, : len(e)] = 1
        return self.session.run(["scores"], {"input_ids": ids, "attention_mask": mask})[0].tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--onnx-dir", default="target/bench-onnx/serve")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    scorer = Scorer(a.bundle, a.threads)
    model_path = export_int8(scorer, a.onnx_dir)
    batching = BatchingScorer(scorer, model_path, a.threads, a.max_batch)
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", a.port), handler(batching))
    print(f"onnxruntime int8 baseline listening on http://127.0.0.1:{server.server_address[1]}",
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
