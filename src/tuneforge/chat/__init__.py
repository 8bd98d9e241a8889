"""Chat with a base model and its adapters: engines and the terminal REPL."""
