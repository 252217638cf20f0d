"""Two HuggingFace transformers compared layer by layer
=====================================================

Small BERT models built from a configuration (nothing is downloaded: the weights are
random, as at the start of training) are compared layer by layer with linear CKA on the
same sentences. First a model against a copy whose two upper layers were fine-tuned on
a toy task (the layers below them frozen); then against a model from another seed.

:func:`svcca.torch.hidden_states` runs each model once with ``output_hidden_states=True``
and averages each sentence's tokens (padding never counts); :func:`svcca.pairwise`
compares every layer of one model with every layer of the other.

Needs torch and transformers. Run:
``python examples/05_transformers_layer_by_layer.py [--quick] [--out DIR]``.
"""

# %%
# A model, and a copy fine-tuned in its upper layers
# --------------------------------------------------
# Four layers of width 64; sentences of 4 to 12 tokens, padded on the right. The copy's
# two upper layers (and a linear head on the first token) are trained for a few dozen
# steps to tell whether most of a sentence's tokens have an id below 100.
from __future__ import annotations

import copy
import os

import numpy as np
import torch
from _common import parse
from transformers import BertConfig, BertModel

import svcca
import svcca.torch

args = parse(__doc__)
torch.set_num_threads(1)
config = BertConfig(
    hidden_size=64,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=128,
    vocab_size=200,
    max_position_embeddings=32,
)
torch.manual_seed(0)
model_a = BertModel(config).eval()

n, length = (120, 12) if args.quick else (400, 12)
gen = torch.Generator().manual_seed(2)
ids = torch.randint(1, config.vocab_size, (n, length), generator=gen)
mask = (torch.arange(length) < torch.randint(4, length + 1, (n, 1), generator=gen)).long()
ids = ids * mask
labels = (((ids > 0) & (ids < 100)).sum(1) * 2 > mask.sum(1)).long()
batches = [
    {"input_ids": ids[s : s + 40], "attention_mask": mask[s : s + 40]} for s in range(0, n, 40)
]

model_b = copy.deepcopy(model_a).train()
head = torch.nn.Linear(config.hidden_size, 2)
for p in model_b.parameters():
    p.requires_grad_(False)
tuned = [p for layer in model_b.encoder.layer[2:] for p in layer.parameters()]
for p in tuned:
    p.requires_grad_(True)
opt = torch.optim.Adam([*tuned, *head.parameters()], lr=3e-3)
torch.manual_seed(1)
for _ in range(60):
    idx = torch.randint(0, n, (32,))
    first = model_b(input_ids=ids[idx], attention_mask=mask[idx]).last_hidden_state[:, 0]
    loss = torch.nn.functional.cross_entropy(head(first), labels[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
model_b.eval()
print(f"fine-tuned the upper two layers for 60 steps: training loss {loss.item():.3f}")

# %%
# Every layer of one model against every layer of the other
# -----------------------------------------------------------
# ``hidden_states`` names the embeddings and each layer's output (``layer.1`` ...
# ``layer.4``); ``sequence="mean"`` averages the real tokens of each sentence, so each
# representation is ``(sentences, 64)``.
with torch.no_grad():
    acts_a = svcca.torch.hidden_states(model_a, batches, sequence="mean")
    acts_b = svcca.torch.hidden_states(model_b, batches, sequence="mean")
print("layers:", list(acts_a), "each", acts_a["layer.1"].shape)

res = svcca.pairwise(acts_a, acts_b, measure="cka_linear")
diagonal = np.diag(res.values)
for name, v in zip(res.rows, diagonal, strict=True):
    print(f"  {name:>10s}: linear CKA with the same layer of the copy {v:.4f}")
# The frozen layers compute the same function: CKA 1. The tuned ones moved away.
assert np.allclose(diagonal[:3], 1.0, atol=1e-6), diagonal
assert diagonal[3:].max() < 0.99, diagonal
res  # noqa: B018  (in a notebook, and on this page, the result shows as a table)

# %%
# The matrix as a heatmap (rows: model A's layers; columns: the copy's).
import svcca.plot as sp  # noqa: E402

fig = sp.heatmap(
    res,
    title="BERT vs its copy fine-tuned in layers 3 and 4",
    ylabel="model A",
    xlabel="copy",
    cbar_label="linear CKA",
)
if args.out:
    written = sp.save(fig, os.path.join(args.out, "05_copy"))
    print("wrote", ", ".join(os.path.basename(w) for w in written))

# %%
# A model from another seed
# -------------------------
# With different weights everywhere the token embeddings differ, and similarity is
# lower from the embeddings on. At initialisation the residual connections carry the
# embeddings through every layer, so each layer scores about what its embeddings do:
# what separates a network's layers from each other is training.
torch.manual_seed(3)
model_c = BertModel(config).eval()
with torch.no_grad():
    acts_c = svcca.torch.hidden_states(model_c, batches, sequence="mean")
other = svcca.pairwise(acts_a, acts_c, measure="cka_linear")
for name, v in zip(other.rows, np.diag(other.values), strict=True):
    print(f"  {name:>10s}: linear CKA with the same layer of another seed {v:.4f}")
assert np.all((other.values >= 0) & (other.values <= 1 + 1e-12))
fig = sp.heatmap(
    other,
    title="BERT vs BERT from another seed",
    ylabel="model A",
    xlabel="model C",
    cbar_label="linear CKA",
)
if args.out:
    written = sp.save(fig, os.path.join(args.out, "05_seed"))
    print("wrote", ", ".join(os.path.basename(w) for w in written))
