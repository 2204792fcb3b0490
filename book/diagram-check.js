// Marks each generated diagram once the browser has decoded it, so the CI browser check
// (book/check.sh) can tell a diagram that rendered from an <img> that points at nothing.
(function () {
  function mark(img) {
    if (img.complete && img.naturalWidth > 0) {
      img.setAttribute("data-rendered", img.naturalWidth + "x" + img.naturalHeight);
    } else if (img.complete) {
      img.setAttribute("data-rendered", "broken");
    }
  }
  document.querySelectorAll("img.mmsim-diagram").forEach(function (img) {
    mark(img);
    img.addEventListener("load", function () { mark(img); });
    img.addEventListener("error", function () { img.setAttribute("data-rendered", "broken"); });
  });
})();
