"""Key figures of the course, one module per notebook, plus the README's overview.

Each module has ``key_figure() -> matplotlib.figure.Figure``; the notebook shows the same
figure, and ``python -m camlib.figures`` (``python3 course.py figures``) writes them all to
``figures/``.
"""

#: output name (the notebook's file stem) -> module in this package
FIGURES: dict[str, str] = {
    "overview": "overview",
    "00_what_a_cnn_learns": "nb00",
    "01_linear_regression_gradients": "nb01",
    "02_occlusion_sensitivity": "nb02",
    "03_class_activation_maps": "nb03",
    "04_grad_cam": "nb04",
    "05_grad_cam_plus_plus": "nb05",
    "06_axioms": "nb06",
    "07_beyond_grad_cam": "nb07",
    "08_evaluating_explanations": "nb08",
    "09_a_real_network": "nb09",
}

__all__ = ["FIGURES"]
