/* Static explorers of the course website (see camlib/_static_explorer.py).
   Each .camlib-static-explorer holds range inputs (one per gridded control), an <img>, a readout and
   its frames as JSON; moving a slider (mouse or keyboard) shows the frame of the slider positions. */
(function () {
  "use strict";

  function setUp(root) {
    var script = root.querySelector("script.camlib-static-frames");
    if (!script) { return; }
    var data = JSON.parse(script.textContent);
    var sliders = Array.prototype.slice.call(root.querySelectorAll("input.camlib-static-slider"));
    var outputs = root.querySelectorAll("output.camlib-static-value");
    var image = root.querySelector("img.camlib-static-image");
    var readout = root.querySelector(".camlib-static-readout");

    function show() {
      var index = 0;
      sliders.forEach(function (slider, k) {
        var axis = data.axes[k];
        var i = Number(slider.value);
        index = index * axis.labels.length + i;
        outputs[k].textContent = axis.labels[i];
        slider.setAttribute("aria-valuetext", axis.labels[i]);
      });
      var frame = data.frames[index];
      if (frame.png) {
        image.src = "data:image/png;base64," + frame.png;
      }
      image.classList.toggle("camlib-static-stale", !frame.png);
      readout.textContent = frame.text;
      readout.classList.toggle("camlib-error", Boolean(frame.error));
    }

    sliders.forEach(function (slider) { slider.addEventListener("input", show); });
    root.classList.add("camlib-static-ready");
  }

  function setUpAll() {
    document.querySelectorAll(".camlib-static-explorer").forEach(setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpAll);
  } else {
    setUpAll();
  }
})();
