"""Joining the predictions of overlapping windows (processing.decoding.join_windows)."""

import torch

from modeling_shapca.heads import IGNORE_INDEX
from processing.decoding import join_windows


def test_each_word_comes_from_the_window_where_it_has_most_context():
    # One example of 6 words read in two windows of 4 words: [0, 4) and [2, 6).
    ids = torch.tensor([[10, 11, 12, 13], [22, 23, 24, 25]])
    scores = ids.float() / 100
    joined = join_windows({"ids": ids, "scores": scores}, torch.tensor([0, 0]), torch.tensor([0, 2]))
    # A window's positions 0..3 have margins 0, 1, 1, 0. Words 0, 1 only in window 0; words 4, 5 only in window 1; word 2: margin 1 in both (ties: the
    # earlier window); word 3: margin 0 in window 0, 1 in window 1.
    assert joined["ids"].tolist() == [[10, 11, 12, 23, 24, 25]]
    assert torch.allclose(joined["scores"], joined["ids"].float() / 100)


def test_examples_keep_their_order_and_short_ones_are_padded():
    ids = torch.tensor([[1, 2, IGNORE_INDEX], [3, 4, 5], [6, 7, 8]])
    joined = join_windows({"ids": ids, "scores": torch.ones(3, 3)}, torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]))
    # Example 1: windows [0, 3) and [1, 4); word 1 has margin 1 in the first, word 2 in the second.
    assert joined["ids"].tolist() == [[1, 2, IGNORE_INDEX, IGNORE_INDEX], [3, 4, 7, 8]]
    assert joined["scores"][0].tolist() == [1, 1, 0, 0]


def test_grid_cells_come_from_a_window_that_holds_both_words():
    # 5 words, windows [0, 3) and [2, 5); window labels are the window number + 1 on every cell.
    ids = torch.stack([torch.full((3, 3), 1), torch.full((3, 3), 2)])
    joined = join_windows({"ids": ids, "scores": torch.ones(2, 3, 3)}, torch.tensor([0, 0]), torch.tensor([0, 2]))
    grid = joined["ids"][0]
    assert grid.shape == (5, 5)
    assert grid[0, 1] == 1 and grid[3, 4] == 2  # only one window holds them
    assert grid[0, 4] == IGNORE_INDEX and grid[4, 0] == IGNORE_INDEX  # no window holds both words
    assert grid[2, 2] == 1  # the shared word: margin 0 in both windows, the earlier one
    assert grid[1, 2] == 1 and grid[2, 3] == 2


def test_a_given_pair_keeps_its_first_window():
    mass = torch.tensor([[0.1, 0.9, 1.0], [0.8, 0.2, 1.0], [0.5, 0.5, 0.0]])
    joined = join_windows({"relation_mass": mass}, torch.tensor([0, 0, 1]), torch.tensor([0, 3, 0]))
    assert joined["relation_mass"].tolist() == [mass[0].tolist(), mass[2].tolist()]
