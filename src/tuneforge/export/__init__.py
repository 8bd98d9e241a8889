"""Export a trained model: merge LoRA adapters, re-save as safetensors, or write GGUF + an Ollama Modelfile."""
