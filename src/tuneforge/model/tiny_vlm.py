"""Offline tiny vision-language models: our trained tokenizer + the family's special tokens and official chat
template, the family's PIL image processor, a random model with a tiny vision tower. A few MB, deterministic.

Families: qwen2_vl, qwen2_5_vl, qwen3_vl, llava, gemma3, llava_next and glm4v (the last two in tiny_vlm_families.py).
llava, gemma3 and llava_next save a full processor, so plain `AutoProcessor.from_pretrained` loads them. The three Qwen
families and glm4v save the same files their official repos ship (preprocessor_config.json, tokenizer, chat template),
but transformers 5.25 without torchvision cannot build their processor: `Qwen2VLProcessor` (and `Glm4vProcessor`) always
has a `video_processor` slot, and `AutoProcessor` loads a `Qwen2VLVideoProcessor`, which requires torchvision.
`model.vlm_processor.load_processor` loads them image-only.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from importlib import resources

from tuneforge.errors import UserError
from tuneforge.model.tiny import build_tokenizer
from tuneforge.model.tiny_vlm_families import BUILDERS, GLM4V_TOKENS, LLAVA_PROCESSOR

VLM_ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "gemma3", "llava_next", "glm4v")
QWEN_VL_ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")

# Text tower shape, the same for every family: small enough for a CPU step in milliseconds.
HIDDEN, HEADS, KV_HEADS, LAYERS, INTERMEDIATE = 64, 4, 2, 2, 128
HEAD_DIM = HIDDEN // HEADS
# Wider than the usual 0.02 (as tiny.py's models): a random tiny model has some structure to adapt, and a picture
# changes the text's logits visibly.
INIT_STD = HIDDEN**-0.5
# Final RMSNorm weight of the Qwen families, so that the logits can reach a trained model's range: at 1, a random
# 64-wide head caps them near 8 against ~4k others and LoRA on the demo set stalls at a loss of ~1.9; at 2 it reaches
# 0.3-0.45 in 1000-1500 steps (measured).
QWEN_FINAL_NORM = 2.0
# Std of the projector's output layer: its image features come out with the text embeddings' norm (~1; transformers'
# 0.02 default gives ~0.2, too faint beside the text for LoRA to learn to read the pictures).
PROJECTOR_OUT_STD = 0.015
MROPE_SECTION = [2, 3, 3]  # temporal / height / width rotary halves of a Qwen head: sums to HEAD_DIM // 2
# Vision tower shape.
VISION_HIDDEN, VISION_HEADS, VISION_LAYERS, VISION_INTERMEDIATE = 32, 2, 2, 64

# The Qwen families' special tokens, in the order of their official ids (151643 <|endoftext|> ... 151656).
QWEN_VL_TOKENS = (
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
QWEN_VL_NAMED = {  # named tokens the Qwen processors read from the tokenizer
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_start_token": "<|vision_start|>",
    "vision_end_token": "<|vision_end|>",
}
GEMMA3_NAMED = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}


@dataclass(frozen=True)
class VlmSpec:
    """How one family's tiny model is put together (see the builders below)."""

    arch: str
    template: str  # file in vlm_templates/
    extra_tokens: tuple[str, ...]  # appended to the tokenizer, after the trained vocabulary
    named_tokens: dict  # tokenizer attributes the family's processor reads (image_token, ...)
    bos: str | None
    eos: str


SPECS = {
    "qwen2_vl": VlmSpec("qwen2_vl", "qwen2_vl.jinja", QWEN_VL_TOKENS, QWEN_VL_NAMED, None, "<|im_end|>"),
    # Qwen2.5-VL ships Qwen2-VL's chat template unchanged.
    "qwen2_5_vl": VlmSpec("qwen2_5_vl", "qwen2_vl.jinja", QWEN_VL_TOKENS, QWEN_VL_NAMED, None, "<|im_end|>"),
    # Qwen3-VL-*-Thinking's template (its generation prompt opens <think>).
    "qwen3_vl": VlmSpec("qwen3_vl", "qwen3_vl.jinja", QWEN_VL_TOKENS, QWEN_VL_NAMED, None, "<|im_end|>"),
    # llava-hf/llava-1.5's template; LLaMA-2 vocabulary markers <s> </s> are already in our tokenizer.
    "llava": VlmSpec("llava", "llava.jinja", ("<image>",), {"image_token": "<image>"}, "<s>", "</s>"),
    "gemma3": VlmSpec(
        "gemma3", "gemma3.jinja", ("<bos>", "<eos>", *GEMMA3_NAMED.values()), GEMMA3_NAMED, "<bos>", "<eos>"
    ),
    # llava-hf/llava-v1.6-vicuna's template is llava-1.5's (USER: / ASSISTANT:).
    "llava_next": VlmSpec("llava_next", "llava.jinja", ("<image>",), {"image_token": "<image>"}, "<s>", "</s>"),
    # GLM-4.1V-9B-Thinking's template; its eos (and pad) is <|endoftext|>, already in our vocabulary
    "glm4v": VlmSpec(
        "glm4v",
        "glm4v.jinja",
        GLM4V_TOKENS,
        {"image_token": "<|image|>", "video_token": "<|video|>"},
        None,
        "<|endoftext|>",
    ),
}


def official_chat_template(arch: str) -> str:
    return (resources.files("tuneforge.model") / "vlm_templates" / SPECS[arch].template).read_text(encoding="utf-8")


def build_vlm_tokenizer(arch: str, vocab_size: int = 4096):
    """Our trained tokenizer (build_tokenizer) with the family's special tokens appended (ids vocab_size, +1, ...),
    its named tokens as attributes (tokenizer.image_token, ...), and the family's official chat template."""
    from transformers import PreTrainedTokenizerFast

    spec = SPECS[arch]
    base = build_tokenizer(vocab_size)
    backend = base.backend_tokenizer
    backend.add_special_tokens(list(spec.extra_tokens))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=spec.bos,
        eos_token=spec.eos,
        pad_token=base.pad_token,
        unk_token=base.unk_token,
        extra_special_tokens=[
            t for t in (*base.extra_special_tokens, *spec.extra_tokens) if t not in (spec.bos, spec.eos)
        ],
        chat_template=official_chat_template(arch),
        clean_up_tokenization_spaces=False,
        padding_side="right",
        model_max_length=4096,
        **spec.named_tokens,
    )


def _text_kwargs(tokenizer) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 4096,
        "bos_token_id": tokenizer.bos_token_id if tokenizer.bos_token else tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "initializer_range": INIT_STD,
    }


def _qwen_image_processor(arch: str, patch: int):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    unit = patch * 2  # a merged token covers 2x2 patches
    norm = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3} if arch == "qwen3_vl" else {}
    # 64x64 pictures stay 2x2..8x8 merged tokens: 4..64 image tokens each.
    size = {"shortest_edge": unit * unit * 4, "longest_edge": unit * unit * 64}
    return Qwen2VLImageProcessorPil(patch_size=patch, merge_size=2, temporal_patch_size=2, size=size, **norm)


def _qwen_vl(arch: str, tokenizer):
    """(model, image processor): the processor object itself cannot be built without torchvision (vlm_processor)."""
    import transformers

    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in QWEN_VL_NAMED.items()}
    token_ids = {
        "image_token_id": ids["image_token"],
        "video_token_id": ids["video_token"],
        "vision_start_token_id": ids["vision_start_token"],
        "vision_end_token_id": ids["vision_end_token"],
    }
    text = _text_kwargs(tokenizer)
    if arch == "qwen2_vl":
        rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": MROPE_SECTION}
        vision = {"depth": VISION_LAYERS, "embed_dim": VISION_HIDDEN, "num_heads": VISION_HEADS, "mlp_ratio": 2}
        config = transformers.Qwen2VLConfig(
            text_config={**text, "rope_parameters": rope},
            vision_config={**vision, "hidden_size": HIDDEN, "patch_size": 14},
            **token_ids,
        )
        return transformers.Qwen2VLForConditionalGeneration(config), _qwen_image_processor(arch, 14)
    vision = {
        "depth": VISION_LAYERS,
        "hidden_size": VISION_HIDDEN,
        "intermediate_size": VISION_INTERMEDIATE,
        "num_heads": VISION_HEADS,
        "out_hidden_size": HIDDEN,
    }
    if arch == "qwen2_5_vl":
        rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": MROPE_SECTION}
        config = transformers.Qwen2_5_VLConfig(
            text_config={**text, "rope_parameters": rope},
            vision_config={**vision, "patch_size": 14, "fullatt_block_indexes": [VISION_LAYERS - 1]},
            **token_ids,
        )
        return transformers.Qwen2_5_VLForConditionalGeneration(config), _qwen_image_processor(arch, 14)
    rope = {"rope_type": "default", "rope_theta": 5e6, "mrope_section": MROPE_SECTION, "mrope_interleaved": True}
    config = transformers.Qwen3VLConfig(
        text_config={**text, "head_dim": HEAD_DIM, "rope_parameters": rope},
        # 16 learned positions = a 4x4 grid, interpolated to each picture's patch grid
        vision_config={**vision, "patch_size": 16, "num_position_embeddings": 16, "deepstack_visual_indexes": [0]},
        **token_ids,
    )
    return transformers.Qwen3VLForConditionalGeneration(config), _qwen_image_processor(arch, 16)


def _trained_like_qwen(model) -> None:
    """A final norm and projectors scaled as in a trained Qwen-VL (QWEN_FINAL_NORM, PROJECTOR_OUT_STD), so that a
    minute of LoRA training on the demo set learns to read the pictures (tests/integration/test_vision_learning.py)."""
    import torch

    model.model.language_model.norm.weight.data.fill_(QWEN_FINAL_NORM)
    visual = model.model.visual
    mergers = [visual.merger, *getattr(visual, "deepstack_merger_list", [])]
    for merger in mergers:
        first, last = [m for m in merger.modules() if isinstance(m, torch.nn.Linear)]
        # LeCun init: the normalised patches keep unit scale (and their differences) through the hidden layer.
        torch.nn.init.normal_(first.weight, std=first.in_features**-0.5)
        torch.nn.init.normal_(last.weight, std=PROJECTOR_OUT_STD)
        torch.nn.init.zeros_(first.bias)
        torch.nn.init.zeros_(last.bias)


def _llava(tokenizer):
    """(model, processor): a CLIP tower on 28x28 pictures, 2x2 patches of 14 -> 4 image tokens (CLS dropped)."""
    import transformers
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image_id = tokenizer.convert_tokens_to_ids("<image>")
    vision = transformers.CLIPVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=VISION_INTERMEDIATE,
        num_hidden_layers=VISION_LAYERS,
        num_attention_heads=VISION_HEADS,
        image_size=28,
        patch_size=14,
        projection_dim=VISION_HIDDEN,
    )
    config = transformers.LlavaConfig(
        vision_config=vision,
        text_config=transformers.LlamaConfig(**_text_kwargs(tokenizer)),
        image_token_index=image_id,
        image_seq_length=4,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = transformers.LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template, **LLAVA_PROCESSOR
    )
    return transformers.LlavaForConditionalGeneration(config), processor


def _gemma3(tokenizer):
    """(model, processor): a SigLIP tower on 56x56 pictures, 4x4 patches pooled to 2x2 = 4 image tokens."""
    import torch
    import transformers
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    vision = transformers.SiglipVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=VISION_INTERMEDIATE,
        num_hidden_layers=VISION_LAYERS,
        num_attention_heads=VISION_HEADS,
        image_size=56,
        patch_size=14,
    )
    text = transformers.Gemma3TextConfig(
        **_text_kwargs(tokenizer), head_dim=HEAD_DIM, query_pre_attn_scalar=HEAD_DIM, sliding_window=512
    )
    config = transformers.Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=4,
        boi_token_index=tokenizer.convert_tokens_to_ids(GEMMA3_NAMED["boi_token"]),
        eoi_token_index=tokenizer.convert_tokens_to_ids(GEMMA3_NAMED["eoi_token"]),
        image_token_index=tokenizer.convert_tokens_to_ids(GEMMA3_NAMED["image_token"]),
        initializer_range=INIT_STD,
    )
    image_processor = Gemma3ImageProcessorPil(size={"height": 56, "width": 56})
    processor = transformers.Gemma3Processor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template, image_seq_length=4
    )
    model = transformers.Gemma3ForConditionalGeneration(config)
    # Gemma3 starts its projector at zero (pictures would change nothing): draw it like the other weights.
    torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=INIT_STD)
    return model, processor


def create_tiny_vlm(out_dir, arch: str = "qwen2_vl", seed: int = 0, vocab_size: int = 4096) -> pathlib.Path:
    """Builds a tiny random vision-language model of `arch` with its tokenizer, image processor and chat template,
    save_pretrained (safetensors, float32) into out_dir, returns out_dir. Same arguments, byte-identical files."""
    import torch
    from transformers import GenerationConfig

    if arch not in SPECS:
        raise UserError(
            f"unknown vision-language arch {arch!r}", where="arch", fix=f"choose one of: {', '.join(VLM_ARCHS)}"
        )
    tokenizer = build_vlm_tokenizer(arch, vocab_size)
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG state
        torch.manual_seed(seed)
        if arch in QWEN_VL_ARCHS:
            model, image_processor = _qwen_vl(arch, tokenizer)
            _trained_like_qwen(model)
            processor = None
        elif arch in BUILDERS:
            vision = {
                "hidden_size": VISION_HIDDEN,
                "intermediate_size": VISION_INTERMEDIATE,
                "num_hidden_layers": VISION_LAYERS,
                "num_attention_heads": VISION_HEADS,
            }
            model, processor = BUILDERS[arch](tokenizer, _text_kwargs(tokenizer), vision)
            if not hasattr(processor, "tokenizer"):  # an image processor only (GLM-4.1V: see vlm_processor)
                processor, image_processor = None, processor
        else:
            model, processor = _llava(tokenizer) if arch == "llava" else _gemma3(tokenizer)
    model = model.to(torch.float32)
    eos = [tokenizer.eos_token_id]
    if arch == "gemma3":  # Gemma's chat turns end with <end_of_turn>
        eos.append(tokenizer.convert_tokens_to_ids("<end_of_turn>"))
    if arch == "glm4v":  # GLM-4.1V's generation_config stops at the next turn's tag too
        eos += tokenizer.convert_tokens_to_ids(["<|user|>", "<|observation|>"])
    model.generation_config = GenerationConfig(
        bos_token_id=model.config.get_text_config().bos_token_id,
        eos_token_id=eos if len(eos) > 1 else eos[0],
        pad_token_id=tokenizer.pad_token_id,
    )
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    if processor is not None:
        processor.save_pretrained(out)
    else:
        tokenizer.save_pretrained(out)
        image_processor.save_pretrained(out)
    return out
