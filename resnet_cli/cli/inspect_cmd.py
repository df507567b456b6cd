"""`resnet-cli inspect` (being written)."""
