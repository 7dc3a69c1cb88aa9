"""Monitor: how the data a model sees moves away from the data it learned from."""
