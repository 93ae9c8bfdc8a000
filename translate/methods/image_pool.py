"""Image history buffer (Shrivastava et al. 2017): discriminators also see past fakes."""
from __future__ import annotations

import torch
from torch import Tensor


class ImagePool:
    """Holds up to `size` past fakes. `query` returns, per image, the new image while the pool fills;
    afterwards with probability 0.5 a stored image (which the new one replaces), else the new one.
    size 0 passes images through. Contents and random state are checkpointed for exact resume."""

    def __init__(self, size: int, *, seed: int = 0) -> None:
        self.size = size
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: Tensor) -> Tensor:
        """images: (N, C, H, W), detached fakes. Returns a tensor of the same shape."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                i = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def state_dict(self) -> dict:
        stored = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stored, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict, *, device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        images = state["images"]
        self.images = [img.unsqueeze(0).to(device) for img in images] if images.numel() else []
        self.generator.set_state(state["rng"])
