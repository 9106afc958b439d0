"""camlib: explanation methods for convolutional networks, exact and tested.

The methods (CAM family and pixel attributions), their result types and the explicit
post-processing live at the top level; data, faces, models, metrics, axioms, plotting and
weight_rules (the CAM family's channel-weight rules) are submodules. ``camlib.widgets``, ``camlib.exercises`` and ``camlib.figures`` serve the
notebooks and are imported on demand.
"""

from . import axioms, data, faces, metrics, models, plotting, weight_rules
from .cam_family import *  # noqa: F401,F403
from .cam_family import __all__ as _cam_all
from .pixel import *  # noqa: F401,F403
from .pixel import __all__ as _pixel_all
from .postprocess import *  # noqa: F401,F403
from .postprocess import __all__ as _post_all
from .guided import *  # noqa: F401,F403
from .guided import __all__ as _guided_all
from .gradient_free import *  # noqa: F401,F403
from .gradient_free import __all__ as _gradient_free_all
from .smoothgrad import smooth_grad
from .results import Attribution, CamResult

__version__ = "0.1.0"

__all__ = [
    "CamResult",
    "Attribution",
    *_cam_all,
    *_pixel_all,
    *_post_all,
    *_guided_all,
    *_gradient_free_all,
    "smooth_grad",
    "axioms",
    "data",
    "faces",
    "metrics",
    "models",
    "plotting",
    "weight_rules",
]
