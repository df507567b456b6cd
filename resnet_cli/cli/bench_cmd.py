"""`resnet-cli bench` (being written)."""
