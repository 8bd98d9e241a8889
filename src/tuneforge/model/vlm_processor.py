"""Load a vision-language model's processor, also where transformers would need torchvision for a video processor
that an image-only run never uses.

transformers 5.25 without torchvision: `AutoProcessor.from_pretrained` on a Qwen2-VL / Qwen2.5-VL / Qwen3-VL folder
raises "Qwen2VLVideoProcessor requires the Torchvision library" (AutoProcessor builds every slot of the processor,
video included), and `Qwen2VLProcessor(image_processor, tokenizer)` fails too (its `video_processor` slot is checked
against `VideoProcessorMixin`, which transformers does not export without torchvision). The image-only subclass
below has no video slot, so it loads from the same files and processes text + images exactly as the full one does.
"""

from __future__ import annotations

# model_type -> the processor class its official repos name (the Qwen ones share Qwen2-VL's image processor)
VIDEO_SLOT_PROCESSORS = {
    "qwen2_vl": "Qwen2VLProcessor",
    "qwen2_5_vl": "Qwen2_5_VLProcessor",
    "qwen3_vl": "Qwen3VLProcessor",
    "glm4v": "Glm4vProcessor",  # GLM-4.1V: Qwen2-VL's image processing, its own video processor
}


def image_only_processor_class(model_type: str):
    """The family's processor class without its video slot (videos are refused: there is no video processor)."""
    import transformers

    base = getattr(transformers, VIDEO_SLOT_PROCESSORS[model_type])

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # The base passes (image_processor, tokenizer, None) on; ProcessorMixin pairs them with this class's two
        # slots, read from this signature, so the empty video slot is never checked.
        base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)
        self.video_processor = None

    return type(base.__name__, (base,), {"__init__": __init__, "__module__": base.__module__})


def load_processor(model_dir, **kwargs):
    """`AutoProcessor.from_pretrained(model_dir)`, or the image-only processor where that needs torchvision."""
    from transformers import AutoConfig, AutoProcessor
    from transformers.utils import is_torchvision_available

    model_type = getattr(AutoConfig.from_pretrained(model_dir), "model_type", None)
    if model_type in VIDEO_SLOT_PROCESSORS and not is_torchvision_available():
        return image_only_processor_class(model_type).from_pretrained(model_dir, **kwargs)
    return AutoProcessor.from_pretrained(model_dir, **kwargs)
