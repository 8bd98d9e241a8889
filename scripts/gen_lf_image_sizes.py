"""Write tests/fixtures/lf_image_sizes.json: the size and mode LLaMA-Factory 0.9.5's own `_preprocess_image` gives
images of many sizes and modes, for several image_max_pixels / image_min_pixels, with its base plugin and with
Qwen2VLPlugin (which adds its own rules); and which of LF's plugins subclass Qwen2VLPlugin.
tests/unit/test_media_load.py compares data/media.py's `load_image` with it.

Needs LF's source unpacked at /tmp/lf/llamafactory-0.9.5 (made importable by /tmp/lfimport.py); not run by the suite:
    .venv/bin/python scripts/gen_lf_image_sizes.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "lf_image_sizes.json"
# (width, height): LF's demo photo, tiny, thin, square at the limit, huge, and extreme aspect ratios
SIZES = [
    (300, 168),
    (1, 1),
    (10, 10),
    (27, 500),
    (500, 27),
    (768, 768),
    (769, 768),
    (33, 31),
    (2, 1000),
    (1, 300),
    (300, 1),
    (5000, 20),
    (20, 5000),
    (640, 480),
    (1920, 1080),
    (3000, 2000),
]
LIMITS = [(768 * 768, 32 * 32), (256 * 256, 16 * 16), (50_000, 40_000), (200 * 200, 300 * 300), (1024, 0)]
MODES = ["RGB", "L", "RGBA", "P"]
PLUGINS = ["base", "qwen2_vl"]


def main() -> None:
    exec(Path("/tmp/lfimport.py").read_text(), {})  # makes llamafactory importable (stubs torchaudio)
    from llamafactory.data import mm_plugin
    from PIL import Image

    cases = []
    for plugin_name in PLUGINS:
        plugin = mm_plugin.PLUGINS[plugin_name](image_token=None, video_token=None, audio_token=None)
        for max_pixels, min_pixels in LIMITS:
            for width, height in SIZES:
                for mode in MODES:
                    image = Image.new(mode, (width, height))
                    out = plugin._preprocess_image(image, image_max_pixels=max_pixels, image_min_pixels=min_pixels)
                    cases.append([plugin_name, max_pixels, min_pixels, width, height, mode, *out.size, out.mode])
    qwen = sorted(n for n, cls in mm_plugin.PLUGINS.items() if issubclass(cls, mm_plugin.Qwen2VLPlugin))
    data = {
        "columns": ["plugin", "max_pixels", "min_pixels", "width", "height", "mode", "out_width", "out_height", "out"],
        "cases": cases,
        "qwen_vl_plugins": qwen,
    }
    OUT.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
