"""Multimodal group: LLaMA-Factory's image / video / audio processor keys and the MLLM freeze switches.
Images train with vision-language models (data/media.py: image_max_pixels / image_min_pixels resize them as LF does;
model/vision_parts.py: the freeze switches). Video and audio, and two families' image options, are refused when set
away from their default (a config that carries LF's defaults still runs)."""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.config.fields import opt
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)

NO_AUDIO = (
    "audio inputs are not supported yet: no audio-language model trains in this version",
    "remove the key",
)
# Video rows are refused where the data is read (data/stage_sets.py: transformers' video processors need
# torchvision, which does not load beside the CPU torch). These keys only shape video rows: accepted, so that
# LLaMA-Factory's image configs (qwen3vl_lora_sft.yaml sets video_max_pixels) run, with a warning (check_video_keys).
VIDEO_KEYS = ("video_max_pixels", "video_min_pixels", "video_fps", "video_maxlen")
OTHER_FAMILY = (
    "this image option belongs to a family TuneForge does not train yet (Qwen2-VL / 2.5-VL / 3-VL, LLaVA, Gemma 3)",
    "remove the key",
)


def media(default, help: str, refused=NO_AUDIO):
    return opt(default, help, refused=refused)


def check_video_keys(given, where) -> None:
    """A warning for each video key set (`given`: the keys the config wrote): no row here can use it."""
    for key in VIDEO_KEYS:
        if key in given:
            logger.warning("%s has no effect: video rows are not supported in this version", where(key))


@dataclass
class MultimodalArguments:
    # media_dir is a data key (config/data_args.py): the dataset readers resolve paths with it, as LF's DataArguments.
    image_max_pixels: int = opt(
        768 * 768, "Largest number of pixels of an image input: a larger one is scaled down to it (LF's rule)."
    )
    image_min_pixels: int = opt(
        32 * 32, "Smallest number of pixels of an image input: a smaller one is scaled up to it (LF's rule)."
    )
    image_do_pan_and_scan: bool = media(
        False,
        "Gemma 3: pan and scan over large images.",
        ("pan and scan changes Gemma 3's image tokens per picture; it is not supported yet", "remove the key"),
    )
    crop_to_patches: bool = media(False, "InternVL: crop the image to patches.", OTHER_FAMILY)
    video_max_pixels: int = opt(256 * 256, "Largest number of pixels of a video frame (video rows: not yet).")
    video_min_pixels: int = opt(16 * 16, "Smallest number of pixels of a video frame (video rows: not yet).")
    video_fps: float = opt(2.0, "Frames sampled per second of video (video rows: not yet).")
    video_maxlen: int = opt(128, "Most frames sampled from one video (video rows: not yet).")
    use_audio_in_video: bool = media(False, "Also use the audio track of video inputs.")
    audio_sampling_rate: int = media(16000, "Sampling rate of audio inputs.")
    freeze_vision_tower: bool = opt(
        True, "Vision-language model: keep the vision tower frozen (off: full / freeze train it, LoRA adapts it)."
    )
    freeze_multi_modal_projector: bool = opt(
        True, "Vision-language model: keep the projector from image features to the text frozen (off: train it)."
    )
    freeze_language_model: bool = opt(
        False, "Vision-language model: keep the language model frozen (train only the unfrozen vision parts)."
    )
