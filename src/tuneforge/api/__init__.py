"""OpenAI-compatible HTTP API: `tuneforge api cfg.yaml` serves /v1/models, /v1/chat/completions and /v1/score."""
