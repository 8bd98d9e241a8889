"""The Web UI (`tuneforge webui`, `tuneforge webchat`): a Gradio face over the config schema and the job queue."""
