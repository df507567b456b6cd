"""`resnet-cli summary` (being written)."""
