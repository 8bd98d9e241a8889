"""Multimodal group: LLaMA-Factory's image / video / audio processor keys, `media_dir` and the MLLM freeze switches.
TuneForge trains text models today, so each is refused when set away from its default (a text config that carries
LF's defaults still runs)."""

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
    media_dir: str | None = media(None, "Folder holding the images, videos or audios (LF default: dataset_dir).")
    image_max_pixels: int = media(768 * 768, "Largest number of pixels of an image input.")
    image_min_pixels: int = media(32 * 32, "Smallest number of pixels of an image input.")
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
