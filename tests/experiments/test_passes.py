"""Generated-token counts and per-pass head counts on hand-made tensors, counted by hand."""

import torch

import fac_lens as fl
from fac_lens.experiments.harness import run_stats
from fac_lens.experiments.passes import generated_lengths, pass_head_counts

EOS, PAD = 2, 0


def test_generated_lengths_stop_at_the_first_eos_and_skip_the_padding_after_it():
    new_tokens = torch.tensor(
        [
            [5, 6, EOS, PAD, PAD],  # 3 generated, then padding
            [5, 6, 7, 8, 9],  # no EOS: all 5
            [EOS, PAD, PAD, PAD, PAD],  # EOS first: 1
            [5, 9, 9, EOS, EOS],  # pad == EOS in many models: the first one ends it
        ]
    )
    assert generated_lengths(new_tokens, [EOS]) == [3, 5, 1, 4]
    assert generated_lengths(new_tokens, [EOS, 9]) == [3, 5, 1, 2]  # a list of EOS ids
    assert generated_lengths(new_tokens, []) == [5, 5, 5, 5]


def test_pass_head_counts_by_hand():
    config = fl.FacConfig(l_perc=1, l_reas=2, tau_perc=0.5, tau_reas=0.1)
    # 3 passes, 2 samples, 4 layers, 2 heads
    pass_0 = torch.tensor(
        [
            [
                [0.5, 0.4],
                [0.9, 0.6],
                [0.05, 0.2],
                [0.1, 0.0],
            ],  # perc: 0.5, 0.9, 0.6 -> 3; reas: 0.05, 0.1, 0.0 -> 3
            [[0.1, 0.1], [0.1, 0.1], [0.9, 0.9], [0.9, 0.9]],  # 0 and 0
        ]
    )
    pass_1 = torch.tensor(
        [
            [[0.6, 0.1], [0.1, 0.1], [0.5, 0.5], [0.5, 0.05]],  # 1 and 1
            [[0.7, 0.7], [0.7, 0.7], [0.0, 0.0], [0.0, 0.0]],  # 4 and 4 (layer 2 heads 0.0 <= 0.1)
        ]
    )
    pass_2 = torch.full((2, 4, 2), 0.3)  # nothing: 0.3 < 0.5 and 0.3 > 0.1
    counts = pass_head_counts([pass_0, pass_1, pass_2], config, lengths=[3, 2])
    assert counts == [
        {"perception": [3, 1, 0], "reasoning": [3, 1, 0]},
        {"perception": [0, 4], "reasoning": [0, 4]},  # its third pass came after its EOS
    ]
    assert pass_head_counts([], config, [1, 1]) == [{"perception": [], "reasoning": []}] * 2


def test_run_stats_by_hand():
    records = [
        {
            "seconds": 1.0,
            "generated_tokens": 4,
            "head_counts": {"perception": [3, 1, 0], "reasoning": [3, 1, 0]},
        },
        {"seconds": 1.0, "generated_tokens": 6, "head_counts": {"perception": [0, 4], "reasoning": [0, 4]}},
    ]
    stats = run_stats(records)
    assert stats["seconds_per_token"] == 2.0 / 10
    # perception counts 3, 1, 0, 0, 4: mean 8/5, variance (1.4^2 + 0.6^2 + 1.6^2 + 1.6^2 + 2.4^2) / 5
    assert abs(stats["heads_perception_mean"] - 1.6) < 1e-12
    assert abs(stats["heads_perception_std"] ** 2 - (1.96 + 0.36 + 2.56 + 2.56 + 5.76) / 5) < 1e-12
    vanilla = run_stats([{"seconds": 1.0, "generated_tokens": None, "head_counts": None}])
    assert all(v != v for v in vanilla.values())  # NaN: no tokens recorded, no per-pass counts
