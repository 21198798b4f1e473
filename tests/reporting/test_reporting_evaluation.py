import numpy as np

from imgclf.reporting.evaluation import channel_bars, channel_maps


def test_pooled_activations_show_the_largest_channels_first():
    values = np.array([0.5, 3.0, 0.0, 2.0, 1.0])
    (ax,) = channel_bars(values, title="pooled", channels=3).axes
    assert [label.get_text() for label in ax.get_xticklabels()] == ["#1", "#3", "#4"]
    assert [bar.get_height() for bar in ax.patches] == [3.0, 2.0, 1.0]
    assert "5 channels, the 3 largest" in ax.get_title()


def test_activation_maps_show_the_most_active_channels_each_with_its_mean():
    maps = np.zeros((4, 4, 3))
    maps[:, :, 2] = 5.0
    maps[:, :, 0] = 1.0
    figure = channel_maps(maps, title="conv", channels=2)
    shown = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert shown == ["#2 mean 5", "#0 mean 1"]
    assert "4x4, 3 channels" in figure.texts[0].get_text()
