"""Provider adapters: one module per upstream API family behind `UpstreamPool`."""
