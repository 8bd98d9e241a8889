"""The Web UI's parts: the top bar and one module per tab, each with `build(ui)`."""
