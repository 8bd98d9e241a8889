"""Multimodal group: LLaMA-Factory's image / video / audio processor keys and the MLLM freeze switches.
Images in the data are read and loaded (data/media.py: image_max_pixels / image_min_pixels resize them as LF does);
training on them is refused where a stage encodes a row with images. The other keys are refused when set away from
their default (a text config that carries LF's defaults still runs)."""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.config.fields import opt

TEXT_ONLY = (
    "TuneForge trains text models only in this version: images, video and audio in the data are not supported yet",
    "remove the key and train on text data",
)


def media(default, help: str):
    return opt(default, help, refused=TEXT_ONLY)


@dataclass
class MultimodalArguments:
    # media_dir is a data key (config/data_args.py): the dataset readers resolve paths with it, as LF's DataArguments.
    image_max_pixels: int = opt(
        768 * 768, "Largest number of pixels of an image input: a larger one is scaled down to it (LF's rule)."
    )
    image_min_pixels: int = opt(
        32 * 32, "Smallest number of pixels of an image input: a smaller one is scaled up to it (LF's rule)."
    )
    image_do_pan_and_scan: bool = media(False, "Gemma 3: pan and scan over large images.")
    crop_to_patches: bool = media(False, "InternVL: crop the image to patches.")
    video_max_pixels: int = media(256 * 256, "Largest number of pixels of a video frame.")
    video_min_pixels: int = media(16 * 16, "Smallest number of pixels of a video frame.")
    video_fps: float = media(2.0, "Frames sampled per second of video.")
    video_maxlen: int = media(128, "Most frames sampled from one video.")
    use_audio_in_video: bool = media(False, "Also use the audio track of video inputs.")
    audio_sampling_rate: int = media(16000, "Sampling rate of audio inputs.")
    freeze_vision_tower: bool = media(True, "MLLM: keep the vision tower frozen.")
    freeze_multi_modal_projector: bool = media(True, "MLLM: keep the multi-modal projector frozen.")
    freeze_language_model: bool = media(False, "MLLM: keep the language model frozen.")
