"""The decoder and the block-scan driver."""
