"""Model blocks: loading, quantization, adapters, and the offline tiny-model builder."""
