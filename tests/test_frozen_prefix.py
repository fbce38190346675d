"""Frozen lower layers computed once and replayed: the same vectors, the same training, less work."""

from __future__ import annotations

import pytest
import torch

from rewardroute.backbone import Backbone, BackboneConfig, transformer_layers
from rewardroute.frozen_prefix import PrefixCache, frozen_prefix, top_layers_only
from rewardroute.router.model import ExpertRouter
from rewardroute.router.router_config import RouterConfig, RouterTrainingConfig
from rewardroute.router.router_trainer import cached_probs, fit_router

TEXTS = ["What is 12 times 7?", "Write a haiku about the first snow of winter.", "Solve 3x = 12.",
         "Draft a short birthday poem for my grandmother, who loves gardens and old films.",
         "hi", "Compute 45 divided by 9, then add 3."]


@pytest.fixture(scope="module")
def minilm():
    return Backbone.load(BackboneConfig(max_length=32, freeze_layers=4))


def _no_dropout(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def test_frozen_prefix_counts_the_frozen_layers_above_frozen_embeddings(minilm):
    assert frozen_prefix(minilm.model) == 4
    trainable = Backbone.load(BackboneConfig(max_length=32))
    assert frozen_prefix(trainable.model) == 0  # embeddings train: nothing is fixed
    trainable.model.embeddings.requires_grad_(False)
    transformer_layers(trainable.model)[1].requires_grad_(False)  # a frozen layer above a training one
    assert frozen_prefix(trainable.model) == 0


def test_replayed_vectors_equal_the_full_forward_and_the_model_is_restored(minilm):
    layers, embeddings = transformer_layers(minilm.model), minilm.model.embeddings
    cache = PrefixCache(minilm, TEXTS, 4, batch_size=4)
    minilm.eval()
    enc = minilm.pairs.pad(minilm.pairs.encode_texts(TEXTS))
    with torch.no_grad():
        full = minilm(**enc)
        order = [5, 0, 3]
        assert torch.allclose(cache.pooled(order), full[order], atol=1e-5)
    assert transformer_layers(minilm.model) is layers and minilm.model.embeddings is embeddings
    with pytest.raises(RuntimeError, match="boom"), top_layers_only(minilm.model, 4):
        raise RuntimeError("boom")
    assert transformer_layers(minilm.model) is layers and minilm.model.embeddings is embeddings


def test_only_the_layers_above_the_prefix_get_gradients(minilm):
    minilm.train()
    cache = PrefixCache(minilm, TEXTS, 4)
    cache.pooled(range(len(TEXTS))).pow(2).sum().backward()
    got = {n for n, p in minilm.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    minilm.zero_grad(set_to_none=True)
    assert got and all(".layer.4." in n or ".layer.5." in n for n in got), got
    assert any(".layer.4." in n for n in got)


def test_a_decoder_replays_too():
    from transformers import LlamaConfig, LlamaModel

    tok = Backbone.load(BackboneConfig(max_length=32)).tokenizer
    torch.manual_seed(0)
    model = LlamaModel(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                   num_attention_heads=4, num_key_value_heads=2, pad_token_id=tok.pad_token_id))
    model.config.is_decoder = True
    decoder = Backbone(BackboneConfig(max_length=32), model, tok)
    assert decoder.is_decoder and decoder.pooling == "last"
    decoder.eval()
    enc = decoder.pairs.pad(decoder.pairs.encode_texts(TEXTS))
    with torch.no_grad():
        full = decoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        assert torch.allclose(PrefixCache(decoder, TEXTS, 2).pooled(range(len(TEXTS))), full, atol=1e-5)


def _trained_router(backbone_cfg: BackboneConfig, cache: bool) -> tuple[ExpertRouter, float]:
    backbone = Backbone.load(backbone_cfg)
    _no_dropout(backbone)  # the one difference between the two paths is dropout in frozen layers
    torch.manual_seed(0)  # the same head to start from
    router = ExpertRouter.build(RouterConfig(experts=["calc", "poet"], backbone=backbone_cfg, finetune=True,
                                             dropout=0.0), backbone)
    targets = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    args = RouterTrainingConfig(epochs=2, batch_size=3, lr=1e-3, head_lr=1e-2, resume=False, seed=3,
                                cache_frozen_layers=cache)
    result = fit_router(router, TEXTS[:4] + TEXTS[5:], targets[[0, 1, 2, 3, 5]], args,
                        valid_texts=TEXTS[:2], valid_targets=targets[:2])
    return router, result.best_metric


def test_training_through_the_cache_matches_training_through_every_layer():
    cfg = BackboneConfig(max_length=32, freeze_layers=4)
    cached, cached_metric = _trained_router(cfg, cache=True)
    plain, plain_metric = _trained_router(cfg, cache=False)
    assert cached_metric == plain_metric
    probs = cached.probs(TEXTS)
    assert torch.allclose(probs, plain.probs(TEXTS), atol=1e-4)
    start = Backbone.load(cfg)
    moved = [n for n, p in cached.backbone.named_parameters() if not torch.equal(p, dict(start.named_parameters())[n])]
    assert moved and all(".layer.4." in n or ".layer.5." in n for n in moved)
    cache = PrefixCache(cached.backbone, TEXTS, 4)
    assert torch.allclose(cached_probs(cached, cache, batch_size=4), probs, atol=1e-5)
