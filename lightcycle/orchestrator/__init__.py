"""The runtime: Trainer, its loops, and the lifecycle driver they (and custom loops) share."""
