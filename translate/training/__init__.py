"""Training: the loop (`loop.Trainer`), its log, validation, sampler, weight averaging, run page and charts."""
