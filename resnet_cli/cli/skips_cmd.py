"""`resnet-cli skips` (being written)."""
