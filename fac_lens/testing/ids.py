"""The tiny models' shared vocabulary: its size and the special token ids every config uses."""

VOCAB = 320
PAD, BOS, EOS = 0, 1, 2
QWEN_IMAGE, QWEN_VIDEO, QWEN_VISION_START, QWEN_VISION_END = 300, 301, 302, 303
LLAVA_IMAGE = 310  # the image token of every non-Qwen architecture
BOI, EOI = 311, 312  # Gemma3 begin/end of image

QWEN_IDS = dict(
    image_token_id=QWEN_IMAGE,
    video_token_id=QWEN_VIDEO,
    vision_start_token_id=QWEN_VISION_START,
    vision_end_token_id=QWEN_VISION_END,
)
