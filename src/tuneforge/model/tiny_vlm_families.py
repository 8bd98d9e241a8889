"""Builders of the tiny vision-language models of the families beyond tiny_vlm.py's first five (LLaVA-NeXT, GLM-4.1V).
Each takes the family's tokenizer, the text tower's config keys (`text`) and the vision tower's shape (`vision`:
hidden_size, intermediate_size, num_hidden_layers, num_attention_heads) from tiny_vlm.py and gives (model,
processor); LLaVA-NeXT's processor saves in full, so plain `AutoProcessor.from_pretrained` loads the folder;
GLM-4.1V gives its image processor, as tiny_vlm.py's Qwen families do.

Pixtral (LLaVA with a Pixtral tower) is not here: transformers 5.25's PixtralProcessor module imports the torchvision
image processor, so its processor cannot be built without torchvision (nor checked against)."""

from __future__ import annotations

# LLaVA-NeXT's "anyres": a 28x28 base picture, tiled into 28x28 crops at the best of these (height, width)
# resolutions (the official ones are these at 336 pixels a unit).
LLAVA_NEXT_PINPOINTS = [[28, 56], [56, 28], [56, 56]]


# What a LLaVA / LLaVA-NeXT processor needs to count a picture's tokens: 14-pixel patches, the CLS token dropped.
LLAVA_PROCESSOR = {"patch_size": 14, "vision_feature_select_strategy": "default", "num_additional_image_tokens": 1}


def llava_next(tokenizer, text: dict, vision: dict):
    """(model, processor): a CLIP tower on 28x28 crops of 2x2 patches of 14; a picture takes its base crop's tokens
    plus its anyres crops' (unpadded, one newline token per row), as LlavaNextProcessor counts them."""
    import transformers
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    clip = transformers.CLIPVisionConfig(**vision, image_size=28, patch_size=14, projection_dim=vision["hidden_size"])
    config = transformers.LlavaNextConfig(
        vision_config=clip,
        text_config=transformers.LlamaConfig(**text),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=LLAVA_NEXT_PINPOINTS,
        image_seq_length=4,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}, image_grid_pinpoints=LLAVA_NEXT_PINPOINTS
    )
    processor = transformers.LlavaNextProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template, **LLAVA_PROCESSOR
    )
    return transformers.LlavaNextForConditionalGeneration(config), processor


def glm4v(tokenizer, text: dict, vision: dict):
    """(model, image processor): GLM-4.1V, Qwen2-VL's patch grid (14-pixel patches, 2x2 merged per token) with its
    own tower (learned positions, a conv downsample) and M-RoPE over a partial rotary head. As for the Qwen
    families, the processor object itself needs torchvision (its video slot): model.vlm_processor loads it
    image-only."""
    import transformers
    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil

    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in GLM4V_IDS.items()}
    rope = {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5, "mrope_section": [1, 1, 2]}
    tower = {
        "depth": vision["num_hidden_layers"],
        "hidden_size": vision["hidden_size"],
        "intermediate_size": vision["intermediate_size"],
        "num_heads": vision["num_attention_heads"],
        "out_hidden_size": text["hidden_size"],
        "image_size": 28,  # 2x2 learned positions, interpolated to each picture's patch grid
        "patch_size": 14,
    }
    config = transformers.Glm4vConfig(text_config={**text, "rope_parameters": rope}, vision_config=tower, **ids)
    # a picture takes 1..64 merged tokens (the size counts the 2 temporal copies of a still picture)
    size = {"shortest_edge": 28 * 28 * 2, "longest_edge": 28 * 28 * 64 * 2}
    image_processor = Glm4vImageProcessorPil(size=size, patch_size=14, merge_size=2, temporal_patch_size=2)
    return transformers.Glm4vForConditionalGeneration(config), image_processor


# GLM-4.1V's special tokens, in the order of their official ids (151330 [MASK] ... 151344 <|video|>; 151329
# <|endoftext|> is in our base tokenizer already)
GLM4V_TOKENS = (
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "<|begin_of_video|>",
    "<|end_of_video|>",
    "<|image|>",
    "<|video|>",
    # then the reasoning tags (the glm4v template stops at </answer>: without it, training would add it and resize)
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
)
GLM4V_IDS = {  # Glm4vConfig's token id keys
    "image_token_id": "<|image|>",
    "video_token_id": "<|video|>",
    "image_start_token_id": "<|begin_of_image|>",
    "image_end_token_id": "<|end_of_image|>",
    "video_start_token_id": "<|begin_of_video|>",
    "video_end_token_id": "<|end_of_video|>",
}
BUILDERS = {"llava_next": llava_next, "glm4v": glm4v}
