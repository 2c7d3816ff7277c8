"""Draw Kontor's app icons (PNG) from the design of static/img/favicon.svg.

The favicon is a 32x32 teal rounded square with a white "K" drawn as three
round-capped strokes. Pillow has no SVG renderer, so the same geometry is
drawn here, four times larger than needed and scaled down for smooth edges.

Run once after changing the design and commit the PNGs::

    .venv/bin/python scripts/make_icons.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

IMG_DIR = Path(__file__).resolve().parent.parent / "static" / "img"
TEAL = (15, 118, 110, 255)  # #0f766e, the favicon's fill
WHITE = (255, 255, 255, 255)
SUPERSAMPLE = 4

# The favicon's strokes in its 32-unit viewBox: M10 8v16, M10 16.5 20.5 8, M13.5 14l8 10.
STROKES: list[tuple[tuple[float, float], tuple[float, float]]] = [
    ((10, 8), (10, 24)),
    ((10, 16.5), (20.5, 8)),
    ((13.5, 14), (21.5, 24)),
]
STROKE_WIDTH = 3.0
VIEWBOX = 32.0
GLYPH_CENTRE = (VIEWBOX / 2, VIEWBOX / 2)


def _draw_glyph(draw: ImageDraw.ImageDraw, size: int, glyph_scale: float) -> None:
    """The "K": ``glyph_scale`` is the glyph's size relative to the favicon's."""
    unit = size / VIEWBOX * glyph_scale
    offset = size / 2 - GLYPH_CENTRE[0] * unit, size / 2 - GLYPH_CENTRE[1] * unit
    width = STROKE_WIDTH * unit
    for start, end in STROKES:
        points = [(offset[0] + x * unit, offset[1] + y * unit) for x, y in (start, end)]
        draw.line(points, fill=WHITE, width=round(width))
        for x, y in points:  # round caps and joins
            r = width / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=WHITE)


def make_icon(size: int, *, full_bleed: bool, glyph_scale: float = 1.0) -> Image.Image:
    """One icon: the favicon's rounded square, or a full square for maskable/Apple icons."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0) if not full_bleed else TEAL)
    draw = ImageDraw.Draw(image)
    if not full_bleed:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 8 / VIEWBOX, fill=TEAL)
    _draw_glyph(draw, big, glyph_scale)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    icons = {
        # Launchers that show the icon as it is: the favicon's rounded square.
        "icon-192.png": make_icon(192, full_bleed=False),
        "icon-512.png": make_icon(512, full_bleed=False),
        # Maskable: the platform cuts its own shape; keep the K inside the 80 % safe circle.
        "icon-maskable-512.png": make_icon(512, full_bleed=True, glyph_scale=0.8),
        # iOS rounds the corners itself and shows transparency as black: a full square.
        "apple-touch-icon.png": make_icon(180, full_bleed=True, glyph_scale=0.9),
    }
    for name, image in icons.items():
        if name.startswith(("icon-maskable", "apple")):
            image = image.convert("RGB")
        image.save(IMG_DIR / name, optimize=True)
        print(f"wrote {IMG_DIR / name} ({image.width}x{image.height})")


if __name__ == "__main__":
    main()
