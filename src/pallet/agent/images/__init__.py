"""Container images on an agent: pulled from registries with skopeo, each layer kept once
(compressed blob and unpacked snapshot), an overlayfs root per task, garbage collected
under a size limit.

Pure: ``config`` (manifests and image configs read into ``Image``).
I/O: ``pull`` (drives skopeo), ``layers`` (unpacks a layer, whiteouts converted for
overlayfs), ``store`` (the agent's image store: pull once, use, collect), ``overlay``
(mounts a task's root filesystem).
"""

from pallet.agent.images.config import Image, ImageConfig, ImageError, Layer
from pallet.agent.images.store import ImageStore

__all__ = ["Image", "ImageConfig", "ImageError", "ImageStore", "Layer"]
